//! A ranked action (a [`Pick`]) and the reason codes it carries: what both answers are made
//! from, the [`Decision`](crate::Decision) that [`rank`](crate::rank) builds and the JSON that
//! [`rank_json`](crate::rank_json) writes. [`reason_codes`] also serves
//! [`Catalog::action_reasons`](crate::Catalog::action_reasons), for one action outside a ranking.

use chrono::DateTime;
use chrono_tz::Tz;

use crate::catalog::CompiledAction;
use crate::cel::{Scope, number};
use crate::channel::Channel;
use crate::kinds::{self, Num, Reasons, Subject};

/// A ranked action: which, how it scored, where and when it goes.
pub(crate) struct Pick {
    pub(crate) index: usize,
    pub(crate) propensity: f64,
    pub(crate) score: f64,
    pub(crate) channel: Channel,
    /// The customer is on `channel` now.
    pub(crate) on_now: bool,
    pub(crate) send_at: DateTime<Tz>,
    /// (decisions, responses) behind a learned propensity.
    pub(crate) observed: Option<(u64, u64)>,
}

/// A ranked action's reason codes, in `reasons` (cleared first).
pub(crate) fn action_reason_codes(
    action: &CompiledAction,
    p: &Pick,
    s: &Subject<'_>,
    reasons: &mut Reasons,
) {
    reasons.clear();
    reason_codes(action, s, reasons);
    if p.on_now {
        reasons.push(format_args!("on_channel_now"));
    }
    if let Some((n, r)) = p.observed {
        reasons.push(format_args!("observed {r} of {n}"));
    }
}

/// The kind's reason codes, then `name=value` for each number the `eligible` expression read.
pub(crate) fn reason_codes(action: &CompiledAction, s: &Subject<'_>, reasons: &mut Reasons) {
    kinds::reasons(action, s, reasons);
    if let Some(rule) = &action.rule {
        let scope = Scope {
            customer: s.customer,
            context: s.context,
            tier: s.facts.tier,
            action: &action.record,
        };
        for (name, binding) in rule.numeric_names() {
            let stated = reasons
                .iter()
                .any(|r| r.strip_prefix(name).is_some_and(|v| v.starts_with('=')));
            if !stated {
                reasons.push(format_args!(
                    "{name}={}",
                    Num(number(binding, &scope).unwrap_or(f64::NAN))
                ));
            }
        }
    }
}
