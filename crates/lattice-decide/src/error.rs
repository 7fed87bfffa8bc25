//! Why a catalog does not compile: which action, which field, where in the expression.

use std::fmt;

use serde::Serialize;

/// A 1-based line and column inside an `eligible` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    /// The position of a 0-based character offset in `source`.
    pub(crate) fn of_offset(source: &str, offset: usize) -> Position {
        let mut line = 1;
        let mut column = 1;
        for c in source.chars().take(offset) {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogErrorKind {
    /// The expression does not parse.
    InvalidCel,
    /// A name that is not a variable of the model, `tier`, `context` or `action`.
    UnknownIdentifier,
    /// A function CEL does not have.
    UnknownFunction,
    /// `context.x` or `action.x` with a field that does not exist.
    UnknownField,
    /// The expression is not a boolean, or applies an operator to the wrong types.
    TypeError,
    UnknownChannel,
    UnknownCategory,
    UnknownKind,
    DuplicateId,
    /// The kind's built-in rule needs a feature the model does not provide.
    MissingFeature,
    /// Any other bad value (empty id, negative cost, bad quiet hours, ...).
    InvalidValue,
}

/// A catalog that does not compile. `Display` reads like
/// `action "vip_drop": eligible, line 1, column 22: unknown identifier `churn_prob` ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct CatalogError {
    /// The action's id (`None` for the `[policy]` table).
    pub action: Option<String>,
    /// The field at fault: `eligible`, `channels`, `category`, `id`, `kind`, `policy`, ...
    pub field: &'static str,
    /// Where in the `eligible` expression, when the error is in one.
    pub position: Option<Position>,
    pub kind: CatalogErrorKind,
    pub message: String,
}

impl CatalogError {
    pub(crate) fn new(
        action: Option<&str>,
        field: &'static str,
        kind: CatalogErrorKind,
        message: impl Into<String>,
    ) -> Self {
        CatalogError {
            action: action.map(str::to_owned),
            field,
            position: None,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Some(id) => write!(f, "action {id:?}: {}", self.field)?,
            None => write!(f, "[{}]", self.field)?,
        }
        if let Some(p) = self.position {
            write!(f, ", {p}")?;
        }
        write!(f, ": {}", self.message)
    }
}
