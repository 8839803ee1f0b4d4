//! Property tests for the expression language.
#![allow(clippy::unwrap_used)]

use domain::narrative::expr::{
    BinOp, EvalError, Expr, MapEnv, Path, Type, Value, check, eval, parse,
};
use proptest::prelude::*;

fn env(seed: u64) -> MapEnv {
    let mut m = MapEnv::default();
    m.values.insert("var.a".into(), Value::Int(7));
    m.values.insert("var.b".into(), Value::Int(-3));
    m.values.insert("var.f".into(), Value::Bool(true));
    m.values.insert("var.s".into(), Value::Str("mara".into()));
    m.values.insert(
        "var.l".into(),
        Value::List(vec![Value::Int(1), Value::Int(7)]),
    );
    m.rng.0 = seed;
    m
}

fn var(n: &str) -> Expr {
    Expr::Path(Path::Var(n.into()))
}

fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
    Expr::Bin(op, Box::new(a), Box::new(b))
}

fn arb_int(depth: u32, random: bool) -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| Expr::Lit(Value::Int(i))),
        (-5i64..5).prop_map(|i| Expr::Lit(Value::Int(i))),
        Just(var("a")),
        Just(var("b")),
    ]
    .boxed();
    if depth == 0 {
        return leaf;
    }
    let sub = arb_int(depth - 1, random);
    let ops = prop_oneof![
        Just(BinOp::Add),
        Just(BinOp::Sub),
        Just(BinOp::Mul),
        Just(BinOp::Div),
        Just(BinOp::Rem)
    ];
    let mut choices = vec![
        leaf,
        (ops, sub.clone(), sub.clone())
            .prop_map(|(o, a, b)| bin(o, a, b))
            .boxed(),
        sub.clone().prop_map(|a| Expr::Neg(Box::new(a))).boxed(),
    ];
    if random {
        choices.push(
            (sub.clone(), sub)
                .prop_map(|(a, b)| Expr::Random(Box::new(a), Box::new(b)))
                .boxed(),
        );
    }
    proptest::strategy::Union::new(choices).boxed()
}

fn arb_bool(depth: u32, random: bool) -> BoxedStrategy<Expr> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(|b| Expr::Lit(Value::Bool(b))),
        Just(var("f"))
    ]
    .boxed();
    if depth == 0 {
        return leaf;
    }
    let sub = arb_bool(depth - 1, random);
    let ints = arb_int(depth - 1, random);
    let cmp = prop_oneof![
        Just(BinOp::Eq),
        Just(BinOp::Ne),
        Just(BinOp::Lt),
        Just(BinOp::Le),
        Just(BinOp::Gt),
        Just(BinOp::Ge)
    ];
    prop_oneof![
        leaf,
        (
            prop_oneof![Just(BinOp::And), Just(BinOp::Or)],
            sub.clone(),
            sub.clone()
        )
            .prop_map(|(o, a, b)| bin(o, a, b)),
        sub.prop_map(|a| Expr::Not(Box::new(a))),
        (cmp, ints.clone(), ints.clone()).prop_map(|(o, a, b)| bin(o, a, b)),
        (ints.clone(), prop::collection::vec(ints.clone(), 1..4)).prop_map(|(a, l)| bin(
            BinOp::In,
            a,
            Expr::List(l)
        )),
        ints.prop_map(|a| bin(BinOp::NotIn, a, var("l"))),
        "[a-z ]{0,6}".prop_map(|s| bin(BinOp::In, Expr::Lit(Value::Str(s)), var("s"))),
    ]
    .boxed()
}

fn only_arith(r: &Result<Value, EvalError>) -> bool {
    matches!(
        r,
        Ok(_) | Err(EvalError::Overflow(_) | EvalError::DivByZero(_) | EvalError::EmptyRange(..))
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_parse_roundtrip(e in arb_bool(4, true)) {
        let text = e.to_string();
        prop_assert_eq!(parse(&text).unwrap(), e);
    }

    #[test]
    fn int_roundtrip(e in arb_int(4, true)) {
        prop_assert_eq!(parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn well_typed_never_type_errors(e in arb_bool(4, true), seed in any::<u64>()) {
        let mut m = env(seed);
        prop_assert_eq!(check(&e, &m).unwrap(), Type::Bool);
        let r = eval(&e, &mut m);
        prop_assert!(only_arith(&r), "{e}: {r:?}");
        if let Ok(v) = r { prop_assert!(matches!(v, Value::Bool(_))); }
    }

    #[test]
    fn deterministic_for_a_seed(e in arb_bool(4, true), seed in any::<u64>()) {
        let a = eval(&e, &mut env(seed));
        let b = eval(&e, &mut env(seed));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn boolean_laws(a in arb_bool(3, false), b in arb_bool(3, false)) {
        let ev = |e: &Expr| eval(e, &mut env(1));
        let (va, vb) = (ev(&a), ev(&b));
        prop_assume!(va.is_ok() && vb.is_ok());
        // double negation
        prop_assert_eq!(ev(&Expr::Not(Box::new(Expr::Not(Box::new(a.clone()))))), va.clone());
        // De Morgan
        let lhs = Expr::Not(Box::new(bin(BinOp::And, a.clone(), b.clone())));
        let rhs = bin(BinOp::Or, Expr::Not(Box::new(a.clone())), Expr::Not(Box::new(b.clone())));
        prop_assert_eq!(ev(&lhs), ev(&rhs));
        // commutativity (no side effects without random)
        prop_assert_eq!(ev(&bin(BinOp::Or, a.clone(), b.clone())), ev(&bin(BinOp::Or, b, a)));
    }

    #[test]
    fn arithmetic_matches_i64(x in any::<i64>(), y in any::<i64>()) {
        let ev = |op: BinOp| eval(&bin(op, Expr::Lit(Value::Int(x)), Expr::Lit(Value::Int(y))), &mut env(0)).ok();
        prop_assert_eq!(ev(BinOp::Add), x.checked_add(y).map(Value::Int));
        prop_assert_eq!(ev(BinOp::Sub), x.checked_sub(y).map(Value::Int));
        prop_assert_eq!(ev(BinOp::Mul), x.checked_mul(y).map(Value::Int));
        prop_assert_eq!(ev(BinOp::Div), x.checked_div(y).map(Value::Int));
        prop_assert_eq!(ev(BinOp::Lt), Some(Value::Bool(x < y)));
        prop_assert_eq!(ev(BinOp::Eq), Some(Value::Bool(x == y)));
    }

    #[test]
    fn random_stays_in_range(lo in -1000i64..1000, span in 0i64..1000, seed in any::<u64>()) {
        let e = Expr::Random(Box::new(Expr::Lit(Value::Int(lo))), Box::new(Expr::Lit(Value::Int(lo + span))));
        let v = eval(&e, &mut env(seed)).unwrap();
        prop_assert!(matches!(v, Value::Int(i) if (lo..=lo + span).contains(&i)));
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,40}") {
        let _ = parse(&s);
    }

    #[test]
    fn parser_never_panics_on_tokens(toks in prop::collection::vec(prop_oneof![
        Just("var.a"), Just("and"), Just("or"), Just("not"), Just("in"), Just("("), Just(")"),
        Just("["), Just("]"), Just(","), Just("=="), Just("<"), Just("-"), Just("+"), Just("1"),
        Just("'x'"), Just("random"), Just("true"), Just("."),
    ], 0..20)) {
        let src = toks.join(" ");
        if let Ok(e) = parse(&src) {
            // Anything that parses re-parses to the same tree from its canonical form.
            prop_assert_eq!(parse(&e.to_string()).unwrap(), e);
        }
    }

    #[test]
    fn ill_typed_is_rejected(a in arb_int(2, false), b in arb_bool(2, false)) {
        let m = env(0);
        prop_assert!(check(&bin(BinOp::And, a.clone(), b.clone()), &m).is_err());
        prop_assert!(check(&bin(BinOp::Add, b.clone(), a.clone()), &m).is_err());
        prop_assert!(check(&bin(BinOp::Eq, a, b), &m).is_err());
    }
}
