//! The domain crate depends on no Lambda runtime, no AWS SDK and no database, directly or not.

use std::collections::BTreeSet;

use pipeline_tests::repo_root;

fn forbidden(name: &str) -> bool {
    const EXACT: [&str; 14] = [
        "lambda_runtime",
        "lambda_http",
        "lambda-extension",
        "aws-config",
        "aws-smithy-runtime",
        "rusqlite",
        "libsqlite3-sys",
        "sqlx",
        "diesel",
        "postgres",
        "tokio-postgres",
        "mysql",
        "redb",
        "sled",
    ];
    EXACT.contains(&name)
        || name.starts_with("aws-sdk-")
        || name.starts_with("rocksdb")
        || name == "tokio"
}

#[test]
fn the_domain_manifest_names_no_forbidden_dependency() {
    let manifest: toml::Table =
        std::fs::read_to_string(repo_root().join("shared/domain/Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let dependencies = manifest["dependencies"]
        .as_table()
        .expect("a [dependencies] table");
    assert!(!dependencies.is_empty());
    let bad: Vec<&String> = dependencies.keys().filter(|name| forbidden(name)).collect();
    assert!(
        bad.is_empty(),
        "the domain crate must not depend on {bad:?}"
    );
}

#[test]
fn nothing_the_domain_pulls_in_is_forbidden() {
    // `cargo tree` resolves the normal (non-dev) dependency graph from the lock file.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .current_dir(repo_root())
        .args([
            "tree",
            "--offline",
            "-p",
            "pipeline-domain",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(
        seen.contains("jsonschema"),
        "the walk reaches the domain's dependencies: {seen:?}"
    );
    let bad: Vec<&String> = seen.iter().filter(|name| forbidden(name)).collect();
    assert!(bad.is_empty(), "the domain crate pulls in {bad:?}");
}
