//! CEL eligibility expressions: compiled once (checked by [`check`](super::check), planned by
//! [`plan`](super::plan)), evaluated per customer. The names an expression uses are bound to
//! where their values live (an index into the customer's value row, a score, a context field),
//! so evaluation resolves only those, without building a map of all variables per customer.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::types::{CelDouble, CelNull, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Env, ExecutionError, IdedExpr, Program, Value};

use super::check::check;
use super::names::{ActionField, Binding, ContextField, Names, ScoreName};
use super::plan::{Plan, Slots, plan};
use crate::error::{CatalogError, CatalogErrorKind, Position};
use crate::input::{Context, Customer};

/// A compiled `eligible` expression.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) source: String,
    program: Program,
    /// What runs: native where the expression allows, the interpreter elsewhere.
    plan: Plan,
    /// Every name the evaluation may ask for, dotted forms (`context.category`) included.
    bindings: Vec<(String, Binding)>,
}

impl Rule {
    /// Parses and checks `source`; errors carry the action id and the position.
    pub(crate) fn compile(
        env: &Arc<Env>,
        names: &Names,
        action: &str,
        source: &str,
    ) -> Result<Rule, CatalogError> {
        let err = |kind, msg: String| CatalogError::new(Some(action), "eligible", kind, msg);
        let program = env.compile(source).map_err(|e| {
            let first = e.errors.first();
            let position = first.map(|p| Position {
                line: u32::try_from(p.pos.0.max(1)).unwrap_or(1),
                column: u32::try_from(p.pos.1.max(1)).unwrap_or(1),
            });
            let msg = first.map_or_else(|| e.to_string(), |p| p.msg.clone());
            err(CatalogErrorKind::InvalidCel, msg).at(position)
        })?;
        let bindings = check(env, names, &program, source)
            .map_err(|(kind, msg, pos)| err(kind, msg).at(pos))?;
        let slot = |name: &str| {
            bindings
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| (i, bindings[i].1))
        };
        let plan = plan(program.expression(), &slot);
        Ok(Rule {
            source: source.to_owned(),
            program,
            plan,
            bindings,
        })
    }

    /// Evaluates the rule: `Ok(true)` eligible, `Ok(false)` not, `Err` the expression failed
    /// (a type error, an absent `context` field read without `has()`).
    pub(crate) fn eval(&self, env: &Arc<Env>, scope: &Scope<'_>) -> Result<bool, String> {
        self.plan.eval(&Bound {
            rule: self,
            env,
            scope,
        })
    }

    #[cfg(test)]
    pub(crate) fn plan(&self) -> &Plan {
        &self.plan
    }

    #[cfg(test)]
    pub(crate) fn has_interpreted_parts(&self) -> bool {
        fn any(p: &Plan) -> bool {
            match p {
                Plan::Cel(_) => true,
                Plan::Not(a) => any(a),
                Plan::And(a, b) | Plan::Or(a, b) => any(a) || any(b),
                _ => false,
            }
        }
        any(&self.plan)
    }

    /// The whole expression through the interpreter (the reference the plan must match).
    #[cfg(test)]
    pub(crate) fn interpret(&self, env: &Arc<Env>, scope: &Scope<'_>) -> Result<bool, String> {
        Bound {
            rule: self,
            env,
            scope,
        }
        .interpret(self.program.expression())
    }

    /// Names of the model variables and scores the rule reads, in order of first use.
    pub(crate) fn numeric_names(&self) -> impl Iterator<Item = (&str, Binding)> {
        self.bindings
            .iter()
            .filter(|(_, b)| matches!(b, Binding::Value(_) | Binding::Score(_)))
            .map(|(n, b)| (n.as_str(), *b))
    }

    /// Evaluates once against neutral values to catch type errors (`recency_days > 'x'`) and
    /// non-boolean results at compile rather than on every request.
    pub(crate) fn trial(
        &self,
        env: &Arc<Env>,
        scope: &Scope<'_>,
        action: &str,
    ) -> Result<(), CatalogError> {
        let resolver = Resolver::new(&self.bindings, scope);
        let mut ctx = cel::Context::with_env(Arc::clone(env));
        ctx.set_variable_resolver(&resolver);
        let message = match self.program.execute(&ctx) {
            Ok(Value::Bool(_)) => return Ok(()),
            Ok(other) => format!(
                "the expression evaluates to {}, expected a bool",
                value_type(&other)
            ),
            Err(
                e @ (ExecutionError::NoSuchOverload(_)
                | ExecutionError::UnsupportedBinaryOperator(..)
                | ExecutionError::UnexpectedType { .. }
                | ExecutionError::InvalidArgumentCount { .. }
                | ExecutionError::NotSupportedAsMethod { .. }
                | ExecutionError::UndeclaredReference(_)),
            ) => format!("type error: {e}"),
            // Anything else depends on the values (a missing key, a division by zero).
            Err(_) => return Ok(()),
        };
        Err(CatalogError::new(
            Some(action),
            "eligible",
            CatalogErrorKind::TypeError,
            message,
        ))
    }
}

fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Int(_) => "an int",
        Value::UInt(_) => "a uint",
        Value::Float(_) => "a double",
        Value::String(_) => "a string",
        Value::Null => "null",
        Value::List(_) => "a list",
        Value::Map(_) => "a map",
        _ => "a non-boolean value",
    }
}

/// The values of one action's `action.*` fields, built at compile.
#[derive(Debug, Clone)]
pub(crate) struct ActionRecord {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) category: Option<String>,
    pub(crate) value: f64,
    pub(crate) cost: f64,
    pub(crate) weight: f64,
}

/// Everything an expression can read for one customer, moment and action.
pub(crate) struct Scope<'s> {
    pub(crate) customer: &'s Customer<'s>,
    pub(crate) context: &'s Context<'s>,
    pub(crate) tier: Option<&'s str>,
    pub(crate) action: &'s ActionRecord,
}

/// Numeric values resolved up front and lent to the interpreter, so that reading a variable
/// allocates nothing; an expression naming more of them than this boxes the rest.
const LENT: usize = 8;

struct Resolver<'r> {
    bindings: &'r [(String, Binding)],
    scope: &'r Scope<'r>,
    numbers: [CelDouble; LENT],
}

/// The value of a numeric binding: a feature, a score (NaN when the row is short), or an
/// action's value, cost or weight.
pub(crate) fn number(binding: Binding, scope: &Scope<'_>) -> Option<f64> {
    let sc = &scope.customer.scores;
    let a = scope.action;
    Some(match binding {
        Binding::Value(i) => scope.customer.values.get(i).copied().unwrap_or(f64::NAN),
        Binding::Score(ScoreName::ChurnProbability) => sc.churn_probability,
        Binding::Score(ScoreName::PAlive) => sc.p_alive,
        Binding::Score(ScoreName::ExpectedPurchases) => sc.expected_purchases,
        Binding::Score(ScoreName::Clv) => sc.clv,
        Binding::Score(ScoreName::Affinity(i)) => sc.affinity.get(i).copied().unwrap_or(f64::NAN),
        Binding::Action(Some(ActionField::Value)) => a.value,
        Binding::Action(Some(ActionField::Cost)) => a.cost,
        Binding::Action(Some(ActionField::Weight)) => a.weight,
        Binding::Tier | Binding::Context(_) | Binding::Action(_) => return None,
    })
}

/// A rule's bindings over one scope: what its plan reads.
struct Bound<'b> {
    rule: &'b Rule,
    env: &'b Arc<Env>,
    scope: &'b Scope<'b>,
}

impl Bound<'_> {
    fn binding(&self, slot: usize) -> Option<Binding> {
        self.rule.bindings.get(slot).map(|(_, b)| *b)
    }
}

impl Slots for Bound<'_> {
    fn number(&self, slot: usize) -> Option<f64> {
        number(self.binding(slot)?, self.scope)
    }

    fn text(&self, slot: usize) -> Result<Option<&str>, String> {
        let absent = || {
            let name = &self.rule.bindings[slot].0;
            format!("{name} is absent (test it with has({name}))")
        };
        match self.binding(slot) {
            Some(Binding::Tier) => Ok(self.scope.tier),
            Some(Binding::Context(Some(f))) => context_field(self.scope.context, f)
                .map(Some)
                .ok_or_else(absent),
            Some(Binding::Action(Some(f))) => action_text(self.scope.action, f)
                .map(Some)
                .ok_or_else(absent),
            _ => Err(absent()),
        }
    }

    fn present(&self, slot: usize) -> bool {
        match self.binding(slot) {
            Some(Binding::Context(Some(f))) => context_field(self.scope.context, f).is_some(),
            Some(Binding::Action(Some(ActionField::Category))) => {
                self.scope.action.category.is_some()
            }
            Some(Binding::Action(Some(_))) => true,
            _ => false,
        }
    }

    fn interpret(&self, expr: &IdedExpr) -> Result<bool, String> {
        let resolver = Resolver::new(&self.rule.bindings, self.scope);
        let mut ctx = cel::Context::with_env(Arc::clone(self.env));
        ctx.set_variable_resolver(&resolver);
        match Value::resolve(expr, &ctx) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!(
                "evaluates to {}, expected a bool",
                value_type(&other)
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

fn context_field<'c>(c: &Context<'c>, f: ContextField) -> Option<&'c str> {
    match f {
        ContextField::Channel => c.channel.map(|ch| ch.as_str()),
        ContextField::Category => c.category,
        ContextField::Page => c.page,
        ContextField::Store => c.store,
    }
}

/// A string field of the action; `None` for an absent category (and the numeric fields).
fn action_text(a: &ActionRecord, f: ActionField) -> Option<&str> {
    match f {
        ActionField::Id => Some(&a.id),
        ActionField::Name => Some(&a.name),
        ActionField::Kind => Some(a.kind),
        ActionField::Category => a.category.as_deref(),
        ActionField::Value | ActionField::Cost | ActionField::Weight => None,
    }
}

fn double<'b>(x: f64) -> Option<CowVal<'b, 'b>> {
    Some(CowVal::owned(CelDouble::from(x)))
}

fn string<'b>(s: &'b str) -> Option<CowVal<'b, 'b>> {
    Some(CowVal::owned(CelString::from(s)))
}

impl<'r> Resolver<'r> {
    fn new(bindings: &'r [(String, Binding)], scope: &'r Scope<'r>) -> Self {
        let mut numbers = [CelDouble::default(); LENT];
        for (slot, (_, b)) in numbers.iter_mut().zip(bindings) {
            if let Some(x) = number(*b, scope) {
                *slot = CelDouble::from(x);
            }
        }
        Resolver {
            bindings,
            scope,
            numbers,
        }
    }

    /// The whole record as a CEL map holding only the present fields (the slow path, for
    /// `has()` and indexing).
    fn record<'b>(entries: impl Iterator<Item = (&'static str, Value)>) -> Option<CowVal<'b, 'b>> {
        let map: HashMap<&str, Value> = entries.collect();
        let value: Box<dyn Val> = Value::from(map).try_into().ok()?;
        Some(CowVal::from(value))
    }
}

impl VariableResolver for Resolver<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let (slot, (_, binding)) = self
            .bindings
            .iter()
            .enumerate()
            .find(|(_, (n, _))| n == name)?;
        let s = self.scope;
        match *binding {
            Binding::Value(_) | Binding::Score(_) => match self.numbers.get(slot) {
                Some(x) => Some(CowVal::Borrowed(x)),
                None => double(number(*binding, s).unwrap_or(f64::NAN)),
            },
            Binding::Tier => match s.tier {
                Some(t) => string(t),
                None => Some(CowVal::owned(CelNull)),
            },
            Binding::Context(Some(f)) => string(context_field(s.context, f)?),
            Binding::Context(None) => {
                Self::record(ContextField::ALL.iter().filter_map(|(n, f)| {
                    context_field(s.context, *f).map(|v| (*n, Value::from(v)))
                }))
            }
            Binding::Action(Some(f)) => match action_text(s.action, f) {
                Some(text) => string(text),
                None => double(number(Binding::Action(Some(f)), s)?),
            },
            Binding::Action(None) => {
                let a = s.action;
                let fields = [
                    ("id", Some(Value::from(a.id.as_str()))),
                    ("name", Some(Value::from(a.name.as_str()))),
                    ("kind", Some(Value::from(a.kind))),
                    ("category", a.category.as_deref().map(Value::from)),
                    ("value", Some(Value::Float(a.value))),
                    ("cost", Some(Value::Float(a.cost))),
                    ("weight", Some(Value::Float(a.weight))),
                ];
                Self::record(fields.into_iter().filter_map(|(n, v)| Some((n, v?))))
            }
        }
    }
}
