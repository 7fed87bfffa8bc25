//! The data contract: column names, accepted input types and the canonical Arrow schemas that
//! every reader normalises to. `docs/data-contract.md` is the prose version of this file.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Event types Lattice knows. Unknown types are kept and counted, with a warning.
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "purchase",
    "return",
    "view",
    "cart",
    "email_open",
    "email_click",
    "sms_click",
    "push_open",
    "app_open",
    "support",
    "review",
    "contact",
    "redemption",
    "unsubscribe",
];

pub fn is_known_event_type(t: &str) -> bool {
    KNOWN_EVENT_TYPES.contains(&t)
}

/// The logical kind of a contract column: what input types it accepts and what it becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// utf8 (any string encoding) or an integer type; normalised to utf8.
    Id,
    /// utf8 (any string encoding); normalised to utf8.
    Text,
    /// timestamp of any unit (with or without time zone, treated as UTC), date32, date64, or
    /// RFC 3339 / `YYYY-MM-DD[ HH:MM:SS]` strings; normalised to timestamp(µs, UTC).
    Timestamp,
    /// date32, date64, timestamp or `YYYY-MM-DD` strings; normalised to date32.
    Date,
    /// any integer, float or decimal type; normalised to float64.
    Number,
    /// boolean.
    Bool,
}

impl ColumnKind {
    pub fn expected(self) -> &'static str {
        match self {
            ColumnKind::Id => "utf8 or an integer type",
            ColumnKind::Text => "utf8",
            ColumnKind::Timestamp => {
                "timestamp (any unit, with or without time zone), date32, date64 or RFC 3339 strings"
            }
            ColumnKind::Date => "date32, date64, timestamp or YYYY-MM-DD strings",
            ColumnKind::Number => "a numeric type (integer, float or decimal)",
            ColumnKind::Bool => "boolean",
        }
    }

    pub fn canonical(self) -> DataType {
        match self {
            ColumnKind::Id | ColumnKind::Text => DataType::Utf8,
            ColumnKind::Timestamp => ts_type(),
            ColumnKind::Date => DataType::Date32,
            ColumnKind::Number => DataType::Float64,
            ColumnKind::Bool => DataType::Boolean,
        }
    }
}

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// One column of a contract table.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub kind: ColumnKind,
    pub required: bool,
}

const fn col(name: &'static str, kind: ColumnKind, required: bool) -> ColumnSpec {
    ColumnSpec {
        name,
        kind,
        required,
    }
}

/// Columns of the `events` table, in canonical order.
pub const EVENT_COLUMNS: &[ColumnSpec] = &[
    col("customer_id", ColumnKind::Id, true),
    col("ts", ColumnKind::Timestamp, true),
    col("event_type", ColumnKind::Text, true),
    col("channel", ColumnKind::Text, false),
    col("category", ColumnKind::Text, false),
    col("amount", ColumnKind::Number, false),
    col("quantity", ColumnKind::Number, false),
    col("order_id", ColumnKind::Id, false),
    col("sentiment", ColumnKind::Number, false),
    col("action_id", ColumnKind::Text, false),
    col("event_id", ColumnKind::Id, false),
];

/// Columns of the optional `customers` table, in canonical order.
pub const CUSTOMER_COLUMNS: &[ColumnSpec] = &[
    col("customer_id", ColumnKind::Id, true),
    col("signup_ts", ColumnKind::Timestamp, false),
    col("birth_date", ColumnKind::Date, false),
    col("tier", ColumnKind::Text, false),
    col("points_balance", ColumnKind::Number, false),
    col("timezone", ColumnKind::Text, false),
    col("consent_email", ColumnKind::Bool, false),
    col("consent_sms", ColumnKind::Bool, false),
    col("consent_push", ColumnKind::Bool, false),
];

/// Every canonical field is nullable: a bad row must survive normalisation so validation can
/// report it with its row; the strict readers guarantee required columns hold no nulls.
fn canonical_schema(cols: &[ColumnSpec]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(c.name, c.kind.canonical(), true))
            .collect::<Vec<_>>(),
    ))
}

static EVENTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| canonical_schema(EVENT_COLUMNS));
static CUSTOMERS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| canonical_schema(CUSTOMER_COLUMNS));

/// The canonical events schema every reader produces (and every writer writes).
pub fn events_schema() -> SchemaRef {
    EVENTS_SCHEMA.clone()
}

/// The canonical customers schema every reader produces (and every writer writes).
pub fn customers_schema() -> SchemaRef {
    CUSTOMERS_SCHEMA.clone()
}

/// Column indices in the canonical events schema.
pub mod ev {
    pub const CUSTOMER_ID: usize = 0;
    pub const TS: usize = 1;
    pub const EVENT_TYPE: usize = 2;
    pub const CHANNEL: usize = 3;
    pub const CATEGORY: usize = 4;
    pub const AMOUNT: usize = 5;
    pub const QUANTITY: usize = 6;
    pub const ORDER_ID: usize = 7;
    pub const SENTIMENT: usize = 8;
    pub const ACTION_ID: usize = 9;
    pub const EVENT_ID: usize = 10;
}

/// Column indices in the canonical customers schema.
pub mod cu {
    pub const CUSTOMER_ID: usize = 0;
    pub const SIGNUP_TS: usize = 1;
    pub const BIRTH_DATE: usize = 2;
    pub const TIER: usize = 3;
    pub const POINTS_BALANCE: usize = 4;
    pub const TIMEZONE: usize = 5;
    pub const CONSENT_EMAIL: usize = 6;
    pub const CONSENT_SMS: usize = 7;
    pub const CONSENT_PUSH: usize = 8;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_constants_match_schemas() {
        let e = events_schema();
        assert_eq!(e.field(ev::CUSTOMER_ID).name(), "customer_id");
        assert_eq!(e.field(ev::TS).name(), "ts");
        assert_eq!(e.field(ev::EVENT_TYPE).name(), "event_type");
        assert_eq!(e.field(ev::CHANNEL).name(), "channel");
        assert_eq!(e.field(ev::CATEGORY).name(), "category");
        assert_eq!(e.field(ev::AMOUNT).name(), "amount");
        assert_eq!(e.field(ev::QUANTITY).name(), "quantity");
        assert_eq!(e.field(ev::ORDER_ID).name(), "order_id");
        assert_eq!(e.field(ev::SENTIMENT).name(), "sentiment");
        assert_eq!(e.field(ev::ACTION_ID).name(), "action_id");
        assert_eq!(e.field(ev::EVENT_ID).name(), "event_id");
        let c = customers_schema();
        assert_eq!(c.field(cu::CUSTOMER_ID).name(), "customer_id");
        assert_eq!(c.field(cu::SIGNUP_TS).name(), "signup_ts");
        assert_eq!(c.field(cu::BIRTH_DATE).name(), "birth_date");
        assert_eq!(c.field(cu::TIER).name(), "tier");
        assert_eq!(c.field(cu::POINTS_BALANCE).name(), "points_balance");
        assert_eq!(c.field(cu::TIMEZONE).name(), "timezone");
        assert_eq!(c.field(cu::CONSENT_EMAIL).name(), "consent_email");
        assert_eq!(c.field(cu::CONSENT_SMS).name(), "consent_sms");
        assert_eq!(c.field(cu::CONSENT_PUSH).name(), "consent_push");
    }
}
