//! Checking an eligibility expression against what it may use: every identifier must be a
//! variable of the model (features and scores), `tier`, `context` or `action` (or a
//! comprehension's own variable), every `context.x` / `action.x` a known field, every function a
//! CEL builtin. Errors point at the offending spot in the expression.

use std::sync::Arc;

use cel::common::ast::{EntryExpr, Expr};
use cel::{Env, IdedExpr, Program};

use super::names::{ActionField, Binding, ContextField, Names};
use crate::error::{CatalogErrorKind, Position};

pub(crate) type CheckError = (CatalogErrorKind, String, Option<Position>);

/// Checks `program` (compiled from `source`) and returns the names it uses, bound.
pub(crate) fn check(
    env: &Arc<Env>,
    names: &Names,
    program: &Program,
    source: &str,
) -> Result<Vec<(String, Binding)>, CheckError> {
    let mut checker = Checker {
        env,
        names,
        program,
        source,
        scope: Vec::new(),
        bindings: Vec::new(),
    };
    checker.walk(program.expression())?;
    Ok(checker.bindings)
}

struct Checker<'c> {
    env: &'c Arc<Env>,
    names: &'c Names,
    program: &'c Program,
    source: &'c str,
    /// Variables introduced by enclosing comprehensions (`x` in `list.exists(x, ...)`).
    scope: Vec<String>,
    bindings: Vec<(String, Binding)>,
}

impl Checker<'_> {
    fn position(&self, e: &IdedExpr, skip: usize) -> Option<Position> {
        let (start, _) = self.program.source_info().offset_for(e.id)?;
        Some(Position::of_offset(self.source, start as usize + skip))
    }

    /// A call is positioned at its `(`: point at the function's name before it instead.
    fn call_position(&self, e: &IdedExpr, name: &str) -> Option<Position> {
        let (start, _) = self.program.source_info().offset_for(e.id)?;
        let byte = self
            .source
            .char_indices()
            .nth(start as usize)
            .map_or(self.source.len(), |(b, _)| b);
        let offset = match self.source[..byte].rfind(name) {
            Some(b) => self.source[..b].chars().count(),
            None => start as usize,
        };
        Some(Position::of_offset(self.source, offset))
    }

    fn bind(&mut self, name: String, b: Binding) {
        if !self.bindings.iter().any(|(n, _)| *n == name) {
            self.bindings.push((name, b));
        }
    }

    fn in_scope(&self, name: &str) -> bool {
        self.scope.iter().any(|s| s == name)
    }

    fn walk(&mut self, e: &IdedExpr) -> Result<(), CheckError> {
        match &e.expr {
            Expr::Ident(name) => self.ident(e, name),
            Expr::Select(sel) => {
                if let Expr::Ident(root) = &sel.operand.expr
                    && !self.in_scope(root)
                    && (root == "context" || root == "action")
                {
                    return self.record_field(e, root, &sel.field);
                }
                self.walk(&sel.operand)
            }
            Expr::Call(call) => {
                self.function(e, &call.func_name, call.target.as_deref())?;
                if let Some(t) = &call.target
                    && !self.is_namespace(t, &call.func_name)
                {
                    self.walk(t)?;
                }
                call.args.iter().try_for_each(|a| self.walk(a))
            }
            Expr::Comprehension(c) => {
                self.walk(&c.iter_range)?;
                self.walk(&c.accu_init)?;
                let pushed = 2 + usize::from(c.iter_var2.is_some());
                self.scope.push(c.iter_var.clone());
                self.scope.push(c.accu_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.scope.push(v.clone());
                }
                let r = [&c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|x| self.walk(x));
                self.scope.truncate(self.scope.len() - pushed);
                r
            }
            Expr::List(l) => l.elements.iter().try_for_each(|x| self.walk(x)),
            Expr::Map(m) => m.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => {
                    self.walk(&me.key)?;
                    self.walk(&me.value)
                }
                EntryExpr::StructField(f) => self.walk(&f.value),
            }),
            Expr::Struct(s) => Err((
                CatalogErrorKind::UnknownIdentifier,
                format!("message literal `{}` is not supported", s.type_name),
                self.position(e, 0),
            )),
            Expr::Literal(_) => Ok(()),
            // The interpreter panics on it: never let one through.
            Expr::Unspecified => Err((
                CatalogErrorKind::InvalidCel,
                "incomplete expression".into(),
                self.position(e, 0),
            )),
        }
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Result<(), CheckError> {
        if self.in_scope(name) {
            return Ok(());
        }
        match name {
            "context" => self.bind(name.into(), Binding::Context(None)),
            "action" => self.bind(name.into(), Binding::Action(None)),
            _ => match self.names.get(name) {
                Some(b) => self.bind(name.into(), b),
                None => {
                    let hint = match self.names.closest(name) {
                        Some(k) => format!(" (did you mean `{k}`?)"),
                        None => String::new(),
                    };
                    return Err((
                        CatalogErrorKind::UnknownIdentifier,
                        format!(
                            "unknown identifier `{name}`: not a feature or score of this model, \
                             `tier`, `context` or `action`{hint}"
                        ),
                        self.position(e, 0),
                    ));
                }
            },
        }
        Ok(())
    }

    fn record_field(&mut self, e: &IdedExpr, root: &str, field: &str) -> Result<(), CheckError> {
        let (known, binding): (Vec<&str>, Option<Binding>) = if root == "context" {
            (
                ContextField::ALL.iter().map(|(n, _)| *n).collect(),
                ContextField::ALL
                    .iter()
                    .find(|(n, _)| *n == field)
                    .map(|(_, f)| Binding::Context(Some(*f))),
            )
        } else {
            (
                ActionField::ALL.iter().map(|(n, _)| *n).collect(),
                ActionField::ALL
                    .iter()
                    .find(|(n, _)| *n == field)
                    .map(|(_, f)| Binding::Action(Some(*f))),
            )
        };
        let Some(binding) = binding else {
            return Err((
                CatalogErrorKind::UnknownField,
                format!(
                    "unknown field `{root}.{field}` (expected one of {})",
                    known.join(", ")
                ),
                // The select's position is its dot; point at the field after it.
                self.position(e, 1),
            ));
        };
        // An absent field falls back to the whole record, where `has()` and errors live.
        self.bind(format!("{root}.{field}"), binding);
        let whole = if root == "context" {
            Binding::Context(None)
        } else {
            Binding::Action(None)
        };
        self.bind(root.to_owned(), whole);
        Ok(())
    }

    /// `optional.of(x)`: a call whose target names a function namespace, not a value.
    fn is_namespace(&self, target: &IdedExpr, func: &str) -> bool {
        match &target.expr {
            Expr::Ident(ns) => {
                !self.in_scope(ns)
                    && self.names.get(ns).is_none()
                    && ns != "context"
                    && ns != "action"
                    && is_declared(self.env, &format!("{ns}.{func}"))
            }
            _ => false,
        }
    }

    fn function(
        &self,
        e: &IdedExpr,
        name: &str,
        target: Option<&IdedExpr>,
    ) -> Result<(), CheckError> {
        // Operators are spelled `_+_`, `!_`, `-_`, `@in`: the interpreter implements them.
        if name.starts_with('_') || name.starts_with('@') || name == "!_" || name == "-_" {
            return Ok(());
        }
        if is_declared(self.env, name) || target.is_some_and(|t| self.is_namespace(t, name)) {
            return Ok(());
        }
        Err((
            CatalogErrorKind::UnknownFunction,
            format!("unknown function `{name}`"),
            self.call_position(e, name),
        ))
    }
}

/// Whether the CEL environment declares a function (global or member) named `name`. `cel`
/// has no public query for it; a context refuses to shadow a declared overload, which is one.
fn is_declared(env: &Arc<Env>, name: &str) -> bool {
    cel::Context::with_env(Arc::clone(env))
        .add_function(name, |a: i64| a)
        .is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::env::Rule;
    use crate::error::CatalogError;

    fn names() -> Names {
        Names::new(
            &["recency_days".into(), "orders_90d".into()],
            &["outerwear".into()],
        )
    }

    fn compile(src: &str) -> Result<Rule, CatalogError> {
        Rule::compile(&Arc::new(Env::stdlib()), &names(), "a1", src)
    }

    #[test]
    fn binds_only_the_names_used() {
        let env = Arc::new(Env::stdlib());
        let src = "recency_days > 30 && affinity_outerwear > 0.1 && has(context.page)";
        let program = env.compile(src).unwrap();
        let bindings = check(&env, &names(), &program, src).unwrap();
        let names: Vec<&str> = bindings.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "recency_days",
                "affinity_outerwear",
                "context.page",
                "context"
            ]
        );
    }

    #[test]
    fn comprehension_variables_are_in_scope() {
        compile("[1, 2, 3].exists(x, x > recency_days)").unwrap();
        compile("['a'].all(c, c == action.category)").unwrap();
        let e = compile("[1].exists(x, y > 1)").unwrap_err();
        assert_eq!(e.kind, CatalogErrorKind::UnknownIdentifier);
    }

    #[test]
    fn unknown_function_and_field() {
        let e = compile("recency_days > 1 && frobnicate(recency_days)").unwrap_err();
        assert_eq!(e.kind, CatalogErrorKind::UnknownFunction);
        assert_eq!(
            e.position,
            Some(Position {
                line: 1,
                column: 21
            })
        );
        let e = compile("context.weather == 'rain'").unwrap_err();
        assert_eq!(e.kind, CatalogErrorKind::UnknownField);
        assert_eq!(e.position, Some(Position { line: 1, column: 9 }));
        assert!(e.message.contains("channel, category, page, store"), "{e}");
        compile("size(action.id) > 0 && context.page.startsWith('/sale')").unwrap();
        compile("optional.of(1).hasValue()").unwrap();
    }

    #[test]
    fn suggests_the_closest_name() {
        let e = compile("recency_day > 30").unwrap_err();
        assert!(e.message.contains("did you mean `recency_days`"), "{e}");
    }
}
