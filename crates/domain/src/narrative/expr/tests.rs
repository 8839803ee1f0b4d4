//! Parser, checker and evaluator round trips.
#![allow(clippy::unwrap_used)]

use super::*;

fn env() -> MapEnv {
    let mut m = MapEnv::default();
    m.values.insert("var.gold".into(), Value::Int(5));
    m.values.insert("var.met".into(), Value::Bool(true));
    m.values
        .insert("var.name".into(), Value::Str("mara".into()));
    m.values.insert(
        "inventory".into(),
        Value::List(vec![Value::Str("key".into())]),
    );
    m
}

fn run(src: &str) -> Result<Value, String> {
    let e = parse(src).map_err(|e| e.to_string())?;
    let mut env = env();
    check(&e, &env).map_err(|e| e.to_string())?;
    eval(&e, &mut env).map_err(|e| e.to_string())
}

#[test]
fn basics() {
    assert_eq!(run("var.gold + 2 * 3 == 11").unwrap(), Value::Bool(true));
    assert_eq!(
        run("not var.met or var.gold > 4").unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        run("'key' in inventory and 'rope' not in inventory").unwrap(),
        Value::Bool(true)
    );
    assert_eq!(run("var.name == \"mara\"").unwrap(), Value::Bool(true));
    assert_eq!(run("-3 - -2").unwrap(), Value::Int(-1));
    assert_eq!(run("var.gold in [1, 5, 9]").unwrap(), Value::Bool(true));
    assert_eq!(run("(var.gold >= 5) && !false").unwrap(), Value::Bool(true));
}

#[test]
fn errors() {
    assert_eq!(
        run("var.gold + true").unwrap_err(),
        "'+' cannot combine int and bool"
    );
    assert_eq!(
        run("var.gold and true").unwrap_err(),
        "'and' expects bool operands, got int and bool"
    );
    assert_eq!(
        run("var.nope").unwrap_err(),
        "undefined reference 'var.nope'"
    );
    assert_eq!(
        run("var.gold / 0").unwrap_err(),
        "division by zero in '(var.gold / 0)'"
    );
    assert_eq!(
        run("var.gold +").unwrap_err(),
        "syntax error at column 11: unexpected end of expression"
    );
    assert_eq!(
        run("foo.bar").unwrap_err().split(" (").next().unwrap(),
        "syntax error at column 1: unknown reference 'foo.bar'"
    );
    assert_eq!(
        run("1 2").unwrap_err(),
        "syntax error at column 3: unexpected 2 after expression"
    );
}
