//! A decision written straight as JSON: the bytes `serde_json` writes for a [`Decision`]
//! (compact, fields in declaration order, payload keys sorted), without building one. What is
//! constant per action (id, name, kind, the catalog's payload) was written once when the
//! catalog was compiled; the rest is written from borrowed values.
//!
//! [`Decision`]: crate::Decision

use serde_json::ser::{CompactFormatter, Formatter};

use crate::catalog::CompiledAction;
use crate::kinds::{self, PValue, Personal, Reasons, Subject};
use crate::output::{Exclusion, Rfc3339};
use crate::pick::{Pick, action_reason_codes};

// Writing to a `Vec<u8>` cannot fail: the `io::Result`s below are always `Ok`.

/// A JSON string literal. Ids, names, categories and reason codes seldom need escaping (serde_json
/// escapes only control characters, `"` and `\`): those are copied as they are.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(out, s);
    }
}

/// A JSON number as `serde_json` writes an `f64`: `null` when not finite.
fn float(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let _ = CompactFormatter.write_f64(out, x);
    } else {
        out.extend_from_slice(b"null");
    }
}

pub(crate) fn write_decision(
    out: &mut Vec<u8>,
    s: &Subject<'_>,
    picks: &[Pick],
    excluded: Option<&[Exclusion]>,
) {
    out.extend_from_slice(b"{\"customer_id\":");
    string(out, s.customer.id);
    out.extend_from_slice(b",\"actions\":[");
    let mut reasons = Reasons::default();
    // Actions on one channel mostly share a send time: formatted once.
    let mut last_send_at: Option<(&chrono::DateTime<chrono_tz::Tz>, Option<Rfc3339>)> = None;
    for (k, p) in picks.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        let action = &s.catalog.actions[p.index];
        // `{"id":…,"name":…,"kind":"…","channel":"`
        out.extend_from_slice(action.json_head.as_bytes());
        out.extend_from_slice(p.channel.as_str().as_bytes());
        out.extend_from_slice(b"\",\"propensity\":");
        float(out, p.propensity);
        out.extend_from_slice(b",\"expected_value\":");
        float(out, p.propensity * action.value);
        out.extend_from_slice(b",\"score\":");
        float(out, p.score);
        out.extend_from_slice(b",\"payload\":");
        let mut personal = kinds::personalise(action, s);
        personal.sort();
        payload(out, action, &personal);
        out.extend_from_slice(b",\"send_at\":");
        let formatted = match &last_send_at {
            Some((t, r)) if **t == p.send_at => r,
            _ => {
                &last_send_at
                    .insert((&p.send_at, Rfc3339::new(&p.send_at.fixed_offset())))
                    .1
            }
        };
        match formatted {
            Some(r) => {
                out.push(b'"');
                out.extend_from_slice(r.as_str().as_bytes());
                out.push(b'"');
            }
            None => {
                let _ = serde_json::to_writer(&mut *out, &p.send_at.fixed_offset());
            }
        }
        out.extend_from_slice(b",\"reasons\":[");
        action_reason_codes(action, p, s, &mut reasons);
        for (j, r) in reasons.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            string(out, r);
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if let Some(excluded) = excluded {
        out.extend_from_slice(b",\"excluded\":");
        let _ = serde_json::to_writer(&mut *out, excluded);
    }
    out.push(b'}');
}

/// The personalisation (sorted) merged with the action's own payload (which wins on a shared
/// key), keys sorted: both lists are sorted, so one merge pass.
fn payload(out: &mut Vec<u8>, action: &CompiledAction, personal: &Personal<'_>) {
    out.push(b'{');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    let mut own = action.payload_json.iter().peekable();
    for (key, value) in personal.iter() {
        while let Some((_, entry)) = own.next_if(|(k, _)| k.as_str() < key) {
            sep(out);
            out.extend_from_slice(entry.as_bytes());
        }
        if own.peek().is_some_and(|(k, _)| k == key) {
            // The catalog's value, written when the merge reaches it.
            continue;
        }
        sep(out);
        string(out, key);
        out.push(b':');
        match value {
            PValue::Str(v) => string(out, v),
            PValue::Float(x) => float(out, *x),
            PValue::Int(i) => {
                let _ = CompactFormatter.write_i64(out, *i);
            }
            PValue::Names(names) => {
                out.push(b'[');
                for (j, n) in names.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    string(out, n);
                }
                out.push(b']');
            }
        }
    }
    for (_, entry) in own {
        sep(out);
        out.extend_from_slice(entry.as_bytes());
    }
    out.push(b'}');
}
