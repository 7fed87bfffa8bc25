//! A native plan for the common shape of eligibility expressions.
//!
//! Most rules are comparisons of features and scores with numbers, string equality on `tier` or
//! a context field, `has(context.x)`, joined by `&&`, `||` and `!`. The interpreter spends more
//! on allocation than on logic for those (every comparison builds its would-be error), so at
//! compile they become this tree, evaluated without allocating. Anything else (function calls,
//! comprehensions, arithmetic, ternaries) stays a subtree for the interpreter. The semantics are
//! CEL's, errors included: `&&` and `||` absorb an error when the other side decides, ordering a
//! NaN or reading an absent field is an error; a unit test checks the plan against the
//! interpreter on random expressions.

use cel::IdedExpr;
use cel::common::ast::{Expr, LiteralValue};

use super::names::Binding;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Cmp {
    fn parse(func: &str) -> Option<Cmp> {
        Some(match func {
            "_<_" => Cmp::Lt,
            "_<=_" => Cmp::Le,
            "_>_" => Cmp::Gt,
            "_>=_" => Cmp::Ge,
            "_==_" => Cmp::Eq,
            "_!=_" => Cmp::Ne,
            _ => return None,
        })
    }
}

/// A number: a bound name (its index in the rule's bindings) or a literal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Slot(usize),
    Lit(f64),
}

/// A string or null: a bound name, a literal, `null`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Text {
    Slot(usize),
    Lit(String),
    Null,
}

#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Const(bool),
    Not(Box<Plan>),
    And(Box<Plan>, Box<Plan>),
    Or(Box<Plan>, Box<Plan>),
    Num(Num, Cmp, Num),
    /// `==` (true) or `!=` (false) on strings and null.
    Text(Text, bool, Text),
    /// `has(context.x)` / `has(action.x)`: the slot of `context.x`.
    Has(usize),
    /// Left to the interpreter.
    Cel(IdedExpr),
}

/// What the plan reads: the value of a bound slot.
pub(crate) trait Slots {
    fn number(&self, slot: usize) -> Option<f64>;
    /// `Ok(None)` is null (no tier); `Err` an absent field.
    fn text(&self, slot: usize) -> Result<Option<&str>, String>;
    fn present(&self, slot: usize) -> bool;
    fn interpret(&self, expr: &IdedExpr) -> Result<bool, String>;
}

/// Builds the plan of `e`; `slot` finds a name among the rule's bindings.
pub(crate) fn plan(e: &IdedExpr, slot: &dyn Fn(&str) -> Option<(usize, Binding)>) -> Plan {
    let interpreted = || Plan::Cel(e.clone());
    match &e.expr {
        Expr::Literal(LiteralValue::Boolean(b)) => Plan::Const(**b),
        Expr::Call(call) if call.target.is_none() => {
            let args = &call.args;
            match (call.func_name.as_str(), args.len()) {
                ("!_", 1) => Plan::Not(Box::new(plan(&args[0], slot))),
                ("_&&_", 2) => Plan::And(
                    Box::new(plan(&args[0], slot)),
                    Box::new(plan(&args[1], slot)),
                ),
                ("_||_", 2) => Plan::Or(
                    Box::new(plan(&args[0], slot)),
                    Box::new(plan(&args[1], slot)),
                ),
                (f, 2) => {
                    let Some(op) = Cmp::parse(f) else {
                        return interpreted();
                    };
                    if let (Some(a), Some(b)) = (num(&args[0], slot), num(&args[1], slot))
                        && !(matches!(a, Num::Lit(_)) && matches!(b, Num::Lit(_)))
                    {
                        return Plan::Num(a, op, b);
                    }
                    if matches!(op, Cmp::Eq | Cmp::Ne)
                        && let (Some(a), Some(b)) = (text(&args[0], slot), text(&args[1], slot))
                    {
                        return Plan::Text(a, op == Cmp::Eq, b);
                    }
                    interpreted()
                }
                _ => interpreted(),
            }
        }
        Expr::Select(sel) if sel.test => match record_slot(&sel.operand, &sel.field, slot) {
            Some(i) => Plan::Has(i),
            None => interpreted(),
        },
        _ => interpreted(),
    }
}

/// The slot of `context.<field>` / `action.<field>`.
fn record_slot(
    operand: &IdedExpr,
    field: &str,
    slot: &dyn Fn(&str) -> Option<(usize, Binding)>,
) -> Option<usize> {
    match &operand.expr {
        Expr::Ident(root) if root == "context" || root == "action" => {
            slot(&format!("{root}.{field}")).map(|(i, _)| i)
        }
        _ => None,
    }
}

/// `context.<field>` / `action.<field>` spelled by a select on the bare record.
fn record_field_name(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Select(sel) if !sel.test => match &sel.operand.expr {
            Expr::Ident(root) if root == "context" || root == "action" => {
                Some(format!("{root}.{}", sel.field))
            }
            _ => None,
        },
        _ => None,
    }
}

fn num(e: &IdedExpr, slot: &dyn Fn(&str) -> Option<(usize, Binding)>) -> Option<Num> {
    use super::names::ActionField as A;
    let numeric = |(i, b): (usize, Binding)| match b {
        Binding::Value(_)
        | Binding::Score(_)
        | Binding::Action(Some(A::Value | A::Cost | A::Weight)) => Some(Num::Slot(i)),
        _ => None,
    };
    match &e.expr {
        Expr::Literal(LiteralValue::Double(d)) => Some(Num::Lit(**d)),
        // Integers compare with doubles as doubles (exact below 2^53).
        Expr::Literal(LiteralValue::Int(i)) => Some(Num::Lit(**i as f64)),
        Expr::Literal(LiteralValue::UInt(u)) => Some(Num::Lit(**u as f64)),
        Expr::Ident(name) => slot(name).and_then(numeric),
        _ => slot(&record_field_name(e)?).and_then(numeric),
    }
}

fn text(e: &IdedExpr, slot: &dyn Fn(&str) -> Option<(usize, Binding)>) -> Option<Text> {
    use super::names::ActionField as A;
    let textual = |(i, b): (usize, Binding)| match b {
        Binding::Tier
        | Binding::Context(Some(_))
        | Binding::Action(Some(A::Id | A::Name | A::Kind | A::Category)) => Some(Text::Slot(i)),
        _ => None,
    };
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(Text::Lit(s.inner().to_string())),
        Expr::Literal(LiteralValue::Null) => Some(Text::Null),
        Expr::Ident(name) => slot(name).and_then(textual),
        _ => slot(&record_field_name(e)?).and_then(textual),
    }
}

impl Plan {
    pub(crate) fn eval(&self, s: &dyn Slots) -> Result<bool, String> {
        match self {
            Plan::Const(b) => Ok(*b),
            Plan::Not(p) => p.eval(s).map(|b| !b),
            // CEL's logic is commutative over errors: the side that decides wins.
            Plan::And(a, b) => match a.eval(s) {
                Ok(false) => Ok(false),
                left => match (left, b.eval(s)) {
                    (_, Ok(false)) => Ok(false),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    _ => Ok(true),
                },
            },
            Plan::Or(a, b) => match a.eval(s) {
                Ok(true) => Ok(true),
                left => match (left, b.eval(s)) {
                    (_, Ok(true)) => Ok(true),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                    _ => Ok(false),
                },
            },
            Plan::Num(a, op, b) => {
                let value = |n: &Num| match n {
                    Num::Lit(x) => *x,
                    Num::Slot(i) => s.number(*i).unwrap_or(f64::NAN),
                };
                let (x, y) = (value(a), value(b));
                match op {
                    Cmp::Eq => Ok(x == y),
                    Cmp::Ne => Ok(x != y),
                    _ => {
                        let ord = x
                            .partial_cmp(&y)
                            .ok_or_else(|| format!("{x} can not be compared to {y}"))?;
                        Ok(match op {
                            Cmp::Lt => ord.is_lt(),
                            Cmp::Le => ord.is_le(),
                            Cmp::Gt => ord.is_gt(),
                            _ => ord.is_ge(),
                        })
                    }
                }
            }
            Plan::Text(a, eq, b) => {
                let x = text_value(a, s)?;
                let y = text_value(b, s)?;
                Ok((x == y) == *eq)
            }
            Plan::Has(i) => Ok(s.present(*i)),
            Plan::Cel(e) => s.interpret(e),
        }
    }
}

fn text_value<'a>(t: &'a Text, s: &'a dyn Slots) -> Result<Option<&'a str>, String> {
    Ok(match t {
        Text::Lit(l) => Some(l.as_str()),
        Text::Null => None,
        Text::Slot(i) => s.text(*i)?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cel::Env;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use crate::cel::env::{ActionRecord, Rule, Scope};
    use crate::cel::names::Names;
    use crate::input::{Context, Customer, Scores};

    use super::Plan;

    fn leaf() -> impl Strategy<Value = String> {
        let num_var = prop::sample::select(vec![
            "recency_days",
            "orders_90d",
            "churn_probability",
            "affinity_outerwear",
            "action.value",
        ]);
        let lit = prop::sample::select(vec!["30", "0.5", "2u", "-1.5", "0", "45.5"]);
        let op = prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]);
        let text_var = prop::sample::select(vec![
            "tier",
            "context.category",
            "context.page",
            "action.category",
            "action.id",
        ]);
        let text_lit = prop::sample::select(vec!["'gold'", "'outerwear'", "null", "'a1'"]);
        prop_oneof![
            (num_var.clone(), op.clone(), lit.clone()).prop_map(|(v, o, l)| format!("{v} {o} {l}")),
            (lit, op.clone(), num_var.clone()).prop_map(|(l, o, v)| format!("{l} {o} {v}")),
            (num_var.clone(), op, num_var).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            (text_var, any::<bool>(), text_lit)
                .prop_map(|(v, eq, l)| { format!("{v} {} {l}", if eq { "==" } else { "!=" }) }),
            prop::sample::select(vec![
                "has(context.category)",
                "has(context.page)",
                "has(action.category)",
                "true",
                "false",
                "size(action.id) > 1",
                "context.page.startsWith('/s')",
                "[1, 2].exists(x, x > recency_days)",
                "recency_days + 1.0 > 3.0",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn expression() -> impl Strategy<Value = String> {
        leaf().prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
                inner.prop_map(|a| format!("!({a})")),
            ]
        })
    }

    fn number() -> impl Strategy<Value = f64> {
        prop::sample::select(vec![f64::NAN, 0.0, 0.5, 30.0, 45.5, -1.5, 2.0])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn the_plan_agrees_with_the_interpreter(
            src in expression(),
            values in [number(), number()],
            scores in [number(), number()],
            tier in prop::option::of(prop::sample::select(vec!["gold", "silver"])),
            category in prop::option::of(prop::sample::select(vec!["outerwear", "home"])),
            page in prop::option::of(prop::sample::select(vec!["/sale", "/home"])),
            action_category in prop::option::of(Just("outerwear".to_owned())),
            value in number(),
        ) {
            let env = Arc::new(Env::stdlib());
            let names = Names::new(
                &["recency_days".into(), "orders_90d".into()],
                &["outerwear".into()],
            );
            let rule = Rule::compile(&env, &names, "a1", &src).unwrap();
            let affinity = [scores[1]];
            let customer = Customer {
                values: &values,
                scores: Scores { churn_probability: scores[0], affinity: &affinity, ..Scores::default() },
                ..Customer::default()
            };
            let context = Context {
                now: Utc.timestamp_opt(0, 0).unwrap(),
                channel: None,
                category,
                page,
                store: None,
            };
            let action = ActionRecord {
                id: "a1".into(),
                name: "A".into(),
                kind: "custom",
                category: action_category,
                value,
                cost: 0.0,
                weight: 1.0,
            };
            let scope = Scope { customer: &customer, context: &context, tier, action: &action };
            let planned = rule.eval(&env, &scope);
            let interpreted = rule.interpret(&env, &scope);
            prop_assert_eq!(
                planned.as_ref().ok(),
                interpreted.as_ref().ok(),
                "{}: plan {:?}, interpreter {:?}", src, planned, interpreted
            );
        }
    }

    #[test]
    fn common_rules_are_planned_natively() {
        let env = Arc::new(Env::stdlib());
        let names = Names::new(&["recency_days".into()], &["outerwear".into()]);
        for src in [
            "recency_days > 30 && churn_probability >= 0.5",
            "!(tier == 'gold') || has(context.category) && context.category == action.category",
            "affinity_outerwear > 0.2 || action.value > 10.0",
        ] {
            let rule = Rule::compile(&env, &names, "a", src).unwrap();
            assert!(!rule.has_interpreted_parts(), "{src}: {:?}", rule.plan());
        }
        let rule = Rule::compile(
            &env,
            &names,
            "a",
            "has(context.page) && context.page.startsWith('/s')",
        )
        .unwrap();
        assert!(
            matches!(rule.plan(), Plan::And(a, b) if matches!(**a, Plan::Has(_)) && matches!(**b, Plan::Cel(_)))
        );
    }
}
