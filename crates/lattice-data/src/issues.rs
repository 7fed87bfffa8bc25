//! Validation findings. Value-level checks push [`Issue`]s into an [`Issues`] collector so that
//! `lattice validate` can report every problem at once, while strict readers stop at the first.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// A contract rule. The code is stable: it appears in messages and docs/data-contract.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    MissingFile,
    NotParquet,
    MissingColumn,
    WrongType,
    NullCustomerId,
    BadTimestamp,
    TimestampAfterAsOf,
    NullEventType,
    UnknownEventType,
    SentimentRange,
    NegativeQuantity,
    NonFiniteNumber,
    DuplicateCustomer,
    UnknownTimezone,
    BadDate,
    CustomerWithoutRow,
    ExtraColumn,
    BadActions,
    DuplicateActionId,
    BadSettings,
    Unreadable,
}

impl Rule {
    pub fn code(self) -> &'static str {
        match self {
            Rule::MissingFile => "missing-file",
            Rule::NotParquet => "not-parquet",
            Rule::MissingColumn => "missing-column",
            Rule::WrongType => "wrong-type",
            Rule::NullCustomerId => "null-customer-id",
            Rule::BadTimestamp => "bad-timestamp",
            Rule::TimestampAfterAsOf => "timestamp-after-as-of",
            Rule::NullEventType => "null-event-type",
            Rule::UnknownEventType => "unknown-event-type",
            Rule::SentimentRange => "sentiment-range",
            Rule::NegativeQuantity => "negative-quantity",
            Rule::NonFiniteNumber => "non-finite-number",
            Rule::DuplicateCustomer => "duplicate-customer",
            Rule::UnknownTimezone => "unknown-timezone",
            Rule::BadDate => "bad-date",
            Rule::CustomerWithoutRow => "customer-without-row",
            Rule::ExtraColumn => "extra-column",
            Rule::BadActions => "bad-actions",
            Rule::DuplicateActionId => "duplicate-action-id",
            Rule::BadSettings => "bad-settings",
            Rule::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// One finding, located as precisely as the rule allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub severity: Severity,
    pub rule: Rule,
    pub file: PathBuf,
    pub column: Option<String>,
    /// 0-based row index within the file.
    pub row: Option<u64>,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        write!(f, "{sev}[{}] {}", self.rule.code(), self.file.display())?;
        if let Some(c) = &self.column {
            write!(f, ": column `{c}`")?;
        }
        if let Some(r) = self.row {
            write!(f, ", row {r}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Issue {
    pub fn error(rule: Rule, file: &Path, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Error,
            rule,
            file: file.to_path_buf(),
            column: None,
            row: None,
            message: message.into(),
        }
    }
    pub fn warning(rule: Rule, file: &Path, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(rule, file, message)
        }
    }
    pub fn note(rule: Rule, file: &Path, message: impl Into<String>) -> Self {
        Issue {
            severity: Severity::Note,
            ..Issue::error(rule, file, message)
        }
    }
    pub fn at(mut self, column: &str, row: Option<u64>) -> Self {
        self.column = Some(column.to_string());
        self.row = row;
        self
    }

    /// Classifies a hard reader error as a finding, so `validate` can report it and go on.
    pub fn from_error(err: &DataError) -> Self {
        let (rule, path, column) = match err {
            DataError::Missing { path, .. } => (Rule::MissingFile, path, None),
            DataError::NotParquet { path, .. } => (Rule::NotParquet, path, None),
            DataError::MissingColumn { path, column, .. } => {
                (Rule::MissingColumn, path, Some(column.clone()))
            }
            DataError::WrongType { path, column, .. } => {
                (Rule::WrongType, path, Some(column.clone()))
            }
            DataError::BadValue { path, column, .. } => {
                (Rule::Unreadable, path, Some(column.clone()))
            }
            DataError::Invalid { path, .. }
            | DataError::Io { path, .. }
            | DataError::Arrow { path, .. }
            | DataError::Parquet { path, .. } => (Rule::Unreadable, path, None),
        };
        // The error's own Display already carries the path; strip it from the message.
        let full = err.to_string();
        let prefix = format!("{}: ", path.display());
        let message = full.strip_prefix(&prefix).unwrap_or(&full).to_string();
        Issue {
            severity: Severity::Error,
            rule,
            file: path.clone(),
            column,
            row: None,
            message,
        }
    }

    pub fn into_error(self) -> DataError {
        match (self.column, self.row) {
            (Some(column), Some(row)) => DataError::BadValue {
                path: self.file,
                column,
                row,
                message: self.message,
            },
            (Some(column), None) => DataError::Invalid {
                path: self.file,
                message: format!("column `{column}`: {}", self.message),
            },
            _ => DataError::Invalid {
                path: self.file,
                message: self.message,
            },
        }
    }
}

/// Collects findings, keeping the first `max_per_rule` of each rule and counting the rest.
#[derive(Debug)]
pub struct Issues {
    kept: Vec<Issue>,
    counts: BTreeMap<(Severity, Rule), u64>,
    max_per_rule: usize,
}

impl Default for Issues {
    fn default() -> Self {
        Issues::new(10)
    }
}

impl Issues {
    pub fn new(max_per_rule: usize) -> Self {
        Issues {
            kept: Vec::new(),
            counts: BTreeMap::new(),
            max_per_rule,
        }
    }

    pub fn push(&mut self, issue: Issue) {
        let n = self.counts.entry((issue.severity, issue.rule)).or_insert(0);
        *n += 1;
        if (*n as usize) <= self.max_per_rule {
            self.kept.push(issue);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.counts.keys().any(|(s, _)| *s == Severity::Error)
    }

    pub fn error_count(&self) -> u64 {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> u64 {
        self.count(Severity::Warning)
    }

    fn count(&self, sev: Severity) -> u64 {
        self.counts
            .iter()
            .filter(|((s, _), _)| *s == sev)
            .map(|(_, n)| n)
            .sum()
    }

    /// Total occurrences of `rule`, including those not kept.
    pub fn rule_count(&self, rule: Rule) -> u64 {
        self.counts
            .iter()
            .filter(|((_, r), _)| *r == rule)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Issue> {
        self.kept.iter()
    }

    pub fn first_error(&self) -> Option<&Issue> {
        self.kept.iter().find(|i| i.severity == Severity::Error)
    }

    /// Occurrences beyond those kept, per rule, for "... and N more" lines.
    pub fn overflow(&self) -> impl Iterator<Item = (Severity, Rule, u64)> + '_ {
        self.counts.iter().filter_map(|(&(s, r), &n)| {
            (n as usize > self.max_per_rule).then_some((s, r, n - self.max_per_rule as u64))
        })
    }

    /// Fails with the first error found, if any.
    pub fn check(&self) -> crate::Result<()> {
        match self.first_error() {
            Some(i) => Err(i.clone().into_error()),
            None => Ok(()),
        }
    }
}
