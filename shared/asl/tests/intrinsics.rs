//! Intrinsic functions, each through a Pass state's `Parameters`: results, and
//! `States.IntrinsicFailure` for arguments they cannot take.

mod common;

use common::{FnHandler, failure_of, single};
use pipeline_asl::error_names;
use serde_json::{Value, json};

fn input() -> Value {
    json!({
        "name": "Arnav",
        "template": "Hello, my name is {}.",
        "escaped": "{\"foo\": \"bar\"}",
        "obj": {"foo": "bar"},
        "Id": 123456,
        "list": [1, 2, 3, 4, 5],
        "dups": [1, 2, 2, 3, 1, {"a": 1}, {"a": 1}],
        "a": {"x": 1, "n": {"p": 1}},
        "b": {"y": 2, "n": {"q": 2}},
        "n": 41,
        "arn": "arn:aws:lambda:eu-west-1:function",
        "s": "text",
        "long": "x".repeat(10_001)
    })
}

fn definition(expression: &str) -> Value {
    single(json!({"Type": "Pass", "Parameters": {"value.$": expression}, "End": true}))
}

async fn evaluate(expression: &str) -> Result<Value, (String, String)> {
    let execution = common::run(&definition(expression), input()).await;
    execution
        .result
        .map(|output| output["value"].clone())
        .map_err(|failure| (failure.error, failure.cause))
}

#[tokio::test]
async fn intrinsic_results() {
    let cases = [
        (
            "States.Format('Hello, my name is {}.', $.name)",
            json!("Hello, my name is Arnav."),
        ),
        (
            "States.Format($.template, $.name)",
            json!("Hello, my name is Arnav."),
        ),
        (
            "States.Format('{} {} {} {}', 1, true, null, 'x')",
            json!("1 true null x"),
        ),
        ("States.Format('\\{\\} {}', 'a')", json!("{} a")),
        (
            "States.Format('it\\'s a \\\\ backslash')",
            json!("it's a \\ backslash"),
        ),
        ("States.Format('{}', $$.Execution.Name)", json!("test")),
        ("States.StringToJson($.escaped)", json!({"foo": "bar"})),
        ("States.JsonToString($.obj)", json!("{\"foo\":\"bar\"}")),
        (
            "States.Array($.Id, 'x', 1.5, States.Array())",
            json!([123456, "x", 1.5, []]),
        ),
        (
            "States.ArrayPartition($.list, 2)",
            json!([[1, 2], [3, 4], [5]]),
        ),
        ("States.ArrayPartition($.list, 9)", json!([[1, 2, 3, 4, 5]])),
        ("States.ArrayContains($.list, 3)", json!(true)),
        ("States.ArrayContains($.dups, $.a)", json!(false)),
        ("States.ArrayRange(1, 9, 2)", json!([1, 3, 5, 7, 9])),
        ("States.ArrayRange(5, 1, -2)", json!([5, 3, 1])),
        ("States.ArrayRange(1, 0, 1)", json!([])),
        ("States.ArrayGetItem($.list, 1)", json!(2)),
        ("States.ArrayLength($.list)", json!(5)),
        ("States.ArrayUnique($.dups)", json!([1, 2, 3, {"a": 1}])),
        ("States.Base64Encode('hello')", json!("aGVsbG8=")),
        ("States.Base64Decode('aGVsbG8=')", json!("hello")),
        (
            "States.Hash('hello', 'MD5')",
            json!("5d41402abc4b2a76b9719d911017c592"),
        ),
        (
            "States.Hash('hello', 'SHA-1')",
            json!("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
        ),
        (
            "States.Hash('hello', 'SHA-256')",
            json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        ),
        (
            "States.Hash('hello', 'SHA-384')",
            json!(
                "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f"
            ),
        ),
        (
            "States.Hash('hello', 'SHA-512')",
            json!(
                "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
            ),
        ),
        (
            "States.JsonMerge($.a, $.b, false)",
            json!({"x": 1, "y": 2, "n": {"q": 2}}),
        ),
        ("States.MathAdd($.n, 1)", json!(42)),
        ("States.MathAdd(-5, 3)", json!(-2)),
        ("States.StringSplit('a,b,,c', ',')", json!(["a", "b", "c"])),
        (
            "States.StringSplit('This.is+a,test=string', '.+,=')",
            json!(["This", "is", "a", "test", "string"]),
        ),
        (
            "States.ArrayGetItem(States.StringSplit($.arn, ':'), 3)",
            json!("eu-west-1"),
        ),
        (
            "States.Format('{}-{}', States.ArrayLength(States.ArrayPartition($.list, 2)), States.ArrayGetItem($.list, 0))",
            json!("3-1"),
        ),
    ];
    for (expression, expected) in cases {
        assert_eq!(evaluate(expression).await, Ok(expected), "{expression}");
    }
}

#[tokio::test]
async fn intrinsic_failures() {
    let cases = [
        "States.ArrayGetItem($.list, 10)",
        "States.ArrayGetItem($.list, -1)",
        "States.ArrayPartition($.list, 0)",
        "States.ArrayRange(1, 2000, 1)",
        "States.ArrayRange(1, 5, 0)",
        "States.ArrayLength($.s)",
        "States.ArrayContains($.s, 1)",
        "States.StringToJson('not json')",
        "States.StringToJson($.list)",
        "States.Base64Decode('%%%')",
        "States.Base64Encode($.long)",
        "States.Hash($.long, 'MD5')",
        "States.Hash('x', 'SHA-3')",
        "States.JsonMerge($.a, $.b, true)",
        "States.JsonMerge($.a, $.list, false)",
        "States.MathAdd(1.5, 1)",
        "States.MathAdd(3000000000, 1)",
        "States.MathRandom(5, 5)",
        "States.Format('{} {}', 1)",
        "States.Format('{}', $.obj)",
        "States.Format($.list)",
        "States.StringSplit(1, ',')",
    ];
    for expression in cases {
        let outcome = evaluate(expression).await;
        match outcome {
            Err((error, cause)) => {
                assert_eq!(
                    error,
                    error_names::INTRINSIC_FAILURE,
                    "{expression}: {cause}"
                );
                assert!(cause.contains("States."), "{expression}: {cause}");
            }
            Ok(value) => panic!("{expression} should fail, it gave {value}"),
        }
    }
}

#[tokio::test]
async fn intrinsic_path_argument_that_matches_nothing_is_a_runtime_error() {
    let failure = failure_of(
        &definition("States.ArrayLength($.nothing)"),
        input(),
        &FnHandler::echo(),
    )
    .await;
    assert_eq!(failure.error, error_names::RUNTIME);
    assert!(failure.cause.contains("'value.$'"), "{}", failure.cause);
}

#[tokio::test]
async fn random_functions_follow_the_seed() {
    let definition = single(json!({"Type": "Pass", "Parameters": {
        "first.$": "States.UUID()", "second.$": "States.UUID()",
        "random.$": "States.MathRandom(1, 10)", "seeded.$": "States.MathRandom(1, 1000, 7)"}, "End": true}));
    let first = common::run(&definition, json!({}))
        .await
        .result
        .expect("runs");
    let again = common::run(&definition, json!({}))
        .await
        .result
        .expect("runs");
    assert_eq!(first, again, "the same seed gives the same values");
    let uuid = first["first"].as_str().unwrap_or_default();
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.chars().nth(14), Some('4'));
    assert!(uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    assert_ne!(first["first"], first["second"]);
    let random = first["random"].as_i64().unwrap_or_default();
    assert!((1..10).contains(&random), "{random}");

    let (mut options, _) = common::options();
    options.seed = 1234;
    let other = common::machine(&definition)
        .execute(json!({}), &FnHandler::echo(), &options)
        .await
        .result
        .expect("runs");
    assert_ne!(
        first["first"], other["first"],
        "another seed gives other UUIDs"
    );
    assert_eq!(
        first["seeded"], other["seeded"],
        "an explicit seed argument wins"
    );
}
