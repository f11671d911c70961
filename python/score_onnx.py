#!/usr/bin/env python3
"""Score feature rows with onnxruntime: the reference side of the Rust parity test.

Reads a JSON array of rows (each a list of floats, in the model card's feature order) from
the file given, scores them in one call, and prints the JSON array of probabilities that
the event is risky (column 1 of the model's `probabilities` output), as float32 values.

    .venv/bin/python python/score_onnx.py models/risk.onnx rows.json
"""

import json
import sys

import numpy as np
import onnxruntime


def main() -> int:
    model_path, rows_path = sys.argv[1], sys.argv[2]
    with open(rows_path) as handle:
        rows = np.asarray(json.load(handle), dtype=np.float32)
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    outputs = session.run(["probabilities"], {"features": rows})
    scores = outputs[0][:, 1]
    json.dump([float(score) for score in scores], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
