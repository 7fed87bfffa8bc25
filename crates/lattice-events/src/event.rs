//! Events posted to the server: parsed from a JSON array or NDJSON and checked with the data
//! contract's rules (those of `lattice validate`), every problem located by event index and
//! field so a client can fix the batch.

use lattice_catalog::CHANNELS;
use lattice_data::normalize::parse_timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

/// One event in the data contract's shape, plus the optional decision it answers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub customer_id: String,
    /// Microseconds since the Unix epoch, UTC.
    pub ts_us: i64,
    pub event_type: String,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub amount: Option<f64>,
    pub quantity: Option<f64>,
    pub order_id: Option<String>,
    pub sentiment: Option<f64>,
    pub action_id: Option<String>,
    /// Makes a retried event a no-op: an id already stored is skipped.
    pub event_id: Option<String>,
    /// The `decision_id` of the next-best-actions answer this event follows up, if known.
    pub decision_id: Option<String>,
}

/// What is wrong with one field of one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// Position of the event in the batch (0-based; the line for NDJSON, counting from 0).
    pub index: usize,
    pub field: String,
    /// The `lattice validate` rule code.
    pub rule: &'static str,
    pub message: String,
}

/// Why a batch was refused: its body could not be read at all, or some events are invalid.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchError {
    /// Not JSON (or not an array/object stream); the message says where.
    Body(String),
    Empty,
    TooMany {
        got: usize,
        max: usize,
    },
    /// `events` in the batch, all refused; `errors` the first [`MAX_ERRORS`] problems found,
    /// `errors_total` all of them.
    Invalid {
        events: usize,
        errors: Vec<FieldError>,
        errors_total: usize,
    },
}

/// At most this many problems are listed in a refusal (the rest are counted): a 32 MiB batch
/// of bad events must not become a gigabyte of errors.
pub const MAX_ERRORS: usize = 100;

/// The ids `lattice export-events` writes for events posted without one; refused in posted
/// events so an exported id can never collide with a client's.
pub const RESERVED_ID_PREFIX: &str = "lattice-seq-";

/// Problems found in a batch: the first [`MAX_ERRORS`] kept, all counted.
#[derive(Default)]
struct Errors {
    list: Vec<FieldError>,
    total: usize,
}

impl Errors {
    fn push(&mut self, e: FieldError) {
        self.total += 1;
        if self.list.len() < MAX_ERRORS {
            self.list.push(e);
        }
    }
}

/// At most this many events in one batch.
pub const MAX_BATCH: usize = 10_000;

/// Events may be this far ahead of the server's clock (clients' clocks drift); later ones are
/// refused, as they would freeze a customer's recency in the future.
pub const MAX_CLOCK_SKEW_US: i64 = 24 * 3_600_000_000;

const FIELDS: [&str; 12] = [
    "customer_id",
    "ts",
    "event_type",
    "channel",
    "category",
    "amount",
    "quantity",
    "order_id",
    "sentiment",
    "action_id",
    "event_id",
    "decision_id",
];

/// Parses and checks a batch: a JSON array of event objects, or (`ndjson`) one object per
/// line. All or nothing: one bad event and the whole batch is refused, every problem listed.
/// `now_us` is the server's clock.
pub fn parse_batch(body: &[u8], ndjson: bool, now_us: i64) -> Result<Vec<Event>, BatchError> {
    let (objects, total) = if ndjson {
        read_ndjson(body)?
    } else {
        read_array(body)?
    };
    if total == 0 {
        return Err(BatchError::Empty);
    }
    if total > MAX_BATCH {
        return Err(BatchError::TooMany {
            got: total,
            max: MAX_BATCH,
        });
    }
    let n = objects.len();
    let mut errors = Errors::default();
    let mut events = Vec::with_capacity(n);
    for (i, v) in objects.into_iter().enumerate() {
        if let Some(e) = check(i, v, now_us, &mut errors) {
            events.push(e);
        }
    }
    if errors.total == 0 {
        Ok(events)
    } else {
        Err(BatchError::Invalid {
            events: n,
            errors: errors.list,
            errors_total: errors.total,
        })
    }
}

/// The top level of a JSON body: an array's first [`MAX_BATCH`] items and how many it has.
/// Items past the limit are checked as JSON and counted, never kept: a 32 MiB body of tiny
/// items (`[0,0,…]`) would otherwise be millions of values in memory before the count refused
/// it.
enum Top {
    Array(Vec<Value>, usize),
    Object,
    Scalar,
}

struct TopVisitor;

impl<'de> serde::de::Visitor<'de> for TopVisitor {
    type Value = Top;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        let mut kept = Vec::new();
        while kept.len() < MAX_BATCH {
            match seq.next_element::<Value>()? {
                Some(v) => kept.push(v),
                None => {
                    let n = kept.len();
                    return Ok(Top::Array(kept, n));
                }
            }
        }
        let mut n = kept.len();
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Top::Array(kept, n))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Top::Object)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Scalar)
    }
}

/// A JSON array body: its first [`MAX_BATCH`] items, and how many it has.
fn read_array(body: &[u8]) -> Result<(Vec<Value>, usize), BatchError> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    let top = de
        .deserialize_any(TopVisitor)
        .and_then(|top| de.end().map(|()| top))
        .map_err(|e| BatchError::Body(format!("body is not valid JSON: {e}")))?;
    match top {
        Top::Array(items, n) => Ok((items, n)),
        Top::Object => Err(BatchError::Body(
            "expected a JSON array of events (or NDJSON with content type application/x-ndjson), \
             found a single object"
                .into(),
        )),
        Top::Scalar => Err(BatchError::Body("expected a JSON array of events".into())),
    }
}

/// NDJSON: the first [`MAX_BATCH`] lines' values, and how many lines hold one (later lines
/// are checked as JSON and counted, as in [`read_array`]).
fn read_ndjson(body: &[u8]) -> Result<(Vec<Value>, usize), BatchError> {
    let mut out = Vec::new();
    let mut total = 0;
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad =
            |e: serde_json::Error| BatchError::Body(format!("line {}: not valid JSON: {e}", n + 1));
        if total < MAX_BATCH {
            out.push(serde_json::from_slice::<Value>(line).map_err(bad)?);
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(line).map_err(bad)?;
        }
        total += 1;
    }
    Ok((out, total))
}

/// Checks one event object; problems go to `errors`.
fn check(index: usize, v: Value, now_us: i64, errors: &mut Errors) -> Option<Event> {
    let before = errors.total;
    let mut push = |field: &str, rule: &'static str, message: String| {
        errors.push(FieldError {
            index,
            field: field.to_string(),
            rule,
            message,
        })
    };
    let Value::Object(mut o) = v else {
        push("", "bad-event", "expected a JSON object".into());
        return None;
    };
    let unknown: Vec<&String> = o.keys().filter(|k| !FIELDS.contains(&k.as_str())).collect();
    for k in unknown {
        push(
            k,
            "unknown-field",
            format!("unknown field (expected one of {})", FIELDS.join(", ")),
        );
    }

    let customer_id = match id(&mut o, "customer_id") {
        Ok(Some(s)) if !s.trim().is_empty() => s,
        Ok(_) => {
            push(
                "customer_id",
                "null-customer-id",
                "customer id is missing or empty (expected a non-empty string or integer)".into(),
            );
            String::new()
        }
        Err(m) => {
            push("customer_id", "null-customer-id", m);
            String::new()
        }
    };
    let ts_us = match o.remove("ts") {
        Some(Value::String(s)) => match parse_timestamp(&s) {
            Some(t) if t.timestamp_micros() > now_us + MAX_CLOCK_SKEW_US => {
                push(
                    "ts",
                    "bad-timestamp",
                    format!("{s:?} is more than 24 hours after the server's clock"),
                );
                0
            }
            Some(t) => t.timestamp_micros(),
            None => {
                push(
                    "ts",
                    "bad-timestamp",
                    format!(
                        "cannot parse {s:?} as a timestamp (expected RFC 3339, \
                         `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD`)"
                    ),
                );
                0
            }
        },
        None | Some(Value::Null) => {
            push(
                "ts",
                "bad-timestamp",
                "missing timestamp (expected RFC 3339, e.g. 2026-11-25T10:00:00Z)".into(),
            );
            0
        }
        Some(other) => {
            push(
                "ts",
                "bad-timestamp",
                format!("expected an RFC 3339 string, found {other}"),
            );
            0
        }
    };
    let mut text =
        |name: &str, push: &mut dyn FnMut(&str, &'static str, String)| match o.remove(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                push(
                    name,
                    "wrong-type",
                    format!("expected a string, found {other}"),
                );
                None
            }
        };
    let event_type = text("event_type", &mut push).unwrap_or_default();
    if event_type.trim().is_empty() {
        push(
            "event_type",
            "null-event-type",
            "event type is missing or empty (expected e.g. purchase, view, support)".into(),
        );
    }
    let channel = text("channel", &mut push);
    let category = text("category", &mut push);
    let action_id = text("action_id", &mut push);
    let decision_id = text("decision_id", &mut push);
    let mut ident =
        |name: &str, push: &mut dyn FnMut(&str, &'static str, String)| match id(&mut o, name) {
            Ok(v) => v,
            Err(m) => {
                push(name, "wrong-type", m);
                None
            }
        };
    let order_id = ident("order_id", &mut push);
    let event_id = ident("event_id", &mut push);
    let mut number =
        |name: &str, push: &mut dyn FnMut(&str, &'static str, String)| match o.remove(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                push(
                    name,
                    "non-finite-number",
                    format!("expected a number, found {other}"),
                );
                None
            }
        };
    let amount = number("amount", &mut push);
    let quantity = number("quantity", &mut push);
    let sentiment = number("sentiment", &mut push);
    if let Some(s) = sentiment
        && !(-1.0..=1.0).contains(&s)
    {
        push(
            "sentiment",
            "sentiment-range",
            format!("sentiment {s} is outside [-1, 1]"),
        );
    }
    if let Some(q) = quantity
        && event_type == "purchase"
        && q < 0.0
    {
        push(
            "quantity",
            "negative-quantity",
            format!(
                "negative quantity {q} on a purchase (record returns as event_type = \"return\" \
                 with a positive quantity)"
            ),
        );
    }
    // The online state needs to know which consent an unsubscribe withdraws.
    if event_type == "unsubscribe" && !channel.as_deref().is_some_and(|c| CHANNELS.contains(&c)) {
        push(
            "channel",
            "unsubscribe-channel",
            format!(
                "an unsubscribe needs the channel it withdraws consent for (one of {}), found {:?}",
                CHANNELS.join(", "),
                channel.as_deref().unwrap_or("nothing")
            ),
        );
    }
    if let Some(id) = &event_id
        && id.starts_with(RESERVED_ID_PREFIX)
    {
        push(
            "event_id",
            "reserved-event-id",
            format!(
                "event ids starting with `{RESERVED_ID_PREFIX}` are reserved for the ids \
                 `lattice export-events` gives events posted without one (expected any other id)"
            ),
        );
    }
    (errors.total == before).then_some(Event {
        customer_id,
        ts_us,
        event_type,
        channel,
        category,
        amount,
        quantity,
        order_id,
        sentiment,
        action_id,
        event_id,
        decision_id,
    })
}

/// An id field: a string or an integer (as the contract's id columns), `Ok(None)` if absent.
fn id(o: &mut Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match o.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(other) => Err(format!("expected a string or an integer, found {other}")),
    }
}
