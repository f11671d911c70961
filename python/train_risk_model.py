#!/usr/bin/env python3
"""Train the pipeline's risk model and export it to ONNX with its model card.

The training rows come from the project's own generator (the `training_data` example of the
domain crate, `shared/domain/src/training.rs`), which
builds risky and normal purchase sessions and runs them through the same enrichment code as
the `enrich` function, so the model is trained on exactly the features it will score.

The model is a logistic regression behind a standard scaler: its probabilities are
calibrated, it is under a kilobyte, its coefficients can be read, and its ONNX graph (Sub,
Div, LinearClassifier) uses only operators that both Rust's tract and Python's onnxruntime
implement. Gradient-boosted trees were not chosen because skl2onnx writes a binary
TreeEnsembleClassifier with a single base value, where tract 0.23's implementation expects
one per class; trees would need a patched graph.

Usage (from the repository root; needs cargo, and the training requirements installed with
`.venv/bin/pip install -r python/requirements-train.txt`):

    .venv/bin/python python/train_risk_model.py

Everything is seeded: running it twice writes the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_score, recall_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent


def generate_rows(sessions: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Runs the domain crate's `training_data` example and reads its CSV."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "training.csv"
        subprocess.run(
            ["cargo", "run", "--release", "--quiet", "-p", "pipeline-domain", "--example", "training_data", "--",
             "--sessions", str(sessions), "--seed", str(seed), "--out", str(out)],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        with out.open() as handle:
            header = handle.readline().strip().split(",")
        table = np.loadtxt(out, delimiter=",", skiprows=1, dtype=np.float64)
    features = table[:, :-1].astype(np.float32)
    labels = table[:, -1].astype(np.int64)
    return header[:-1], features, labels


def best_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The threshold with the best F1 score on the training split, to two decimals."""
    best, best_f1 = 0.5, -1.0
    for threshold in np.arange(0.05, 0.96, 0.01):
        predicted = scores >= threshold
        true_positive = float(np.sum(predicted & (labels == 1)))
        precision = true_positive / max(float(np.sum(predicted)), 1.0)
        recall = true_positive / max(float(np.sum(labels == 1)), 1.0)
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        if f1 > best_f1:
            best, best_f1 = round(float(threshold), 2), f1
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "risk.onnx")
    args = parser.parse_args()

    names, features, labels = generate_rows(args.sessions, args.seed)
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.25, random_state=args.seed, stratify=labels
    )
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=1.0, max_iter=1_000, solver="lbfgs", random_state=args.seed)),
        ]
    )
    model.fit(train_x, train_y)
    threshold = best_threshold(train_y, model.predict_proba(train_x)[:, 1])
    test_scores = model.predict_proba(test_x)[:, 1]
    predicted = (test_scores >= threshold).astype(np.int64)
    metrics = {
        "rocAuc": round(float(roc_auc_score(test_y, test_scores)), 4),
        "precision": round(float(precision_score(test_y, predicted)), 4),
        "recall": round(float(recall_score(test_y, predicted)), 4),
        "heldOutRows": int(len(test_y)),
        "trainingRows": int(len(train_y)),
        "positiveShare": round(float(np.mean(labels)), 4),
    }

    exported = to_onnx(
        model,
        initial_types=[("features", FloatTensorType([None, len(names)]))],
        target_opset={"": 18, "ai.onnx.ml": 3},
        options={StandardScaler: {"div": "div"}, LogisticRegression: {"zipmap": False}},
    )
    # skl2onnx lists opset imports in set order, which varies between runs; sort them so the
    # same training writes the same bytes.
    imports = sorted((entry.domain, entry.version) for entry in exported.opset_import)
    del exported.opset_import[:]
    exported.opset_import.extend(onnx.helper.make_opsetid(domain, version) for domain, version in imports)
    exported.doc_string = "Pipeline risk model: standard scaler and logistic regression over the enrich stage's features."
    body = exported.SerializeToString()
    onnx.checker.check_model(exported)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(body)

    digest = hashlib.sha256(body).hexdigest()
    card = {
        "name": "risk",
        "version": f"risk-lr-{digest[:12]}",
        "model": "StandardScaler + LogisticRegression (scikit-learn), exported with skl2onnx, opset 18",
        "file": args.out.name,
        "sha256": digest,
        "input": {"name": "features", "shape": ["N", len(names)], "type": "float32"},
        "output": {"name": "probabilities", "column": 1, "meaning": "probability that the event is risky"},
        "featureNames": names,
        "threshold": threshold,
        "trainingData": {
            "generator": "cargo run --release -p pipeline-domain --example training_data",
            "sessions": args.sessions,
            "seed": args.seed,
            "testSplit": 0.25,
        },
        "metrics": metrics,
    }
    card_path = args.out.with_suffix(".card.json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")

    print(f"wrote {args.out} ({len(body)} bytes) and {card_path}")
    print(f"threshold {threshold}; held-out ROC AUC {metrics['rocAuc']}, "
          f"precision {metrics['precision']}, recall {metrics['recall']} at the threshold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
