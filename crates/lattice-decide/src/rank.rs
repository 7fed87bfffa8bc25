//! Ranking: screen every action through the rules (cheapest first), score the survivors, sort,
//! then hand out channels best-first so the returned list never exceeds a weekly cap.

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::catalog::{Catalog, CompiledAction};
use crate::cel::Scope;
use crate::channel::{Channel, PerChannel};
use crate::facts::{Facts, days_before, prob};
use crate::input::{Context, Customer, HOURS_PER_WEEK, Learned, RankOptions, SendTimeProfile};
use crate::json;
use crate::kind::Kind;
use crate::kinds::{self, Reasons, Subject};
use crate::output::{Decision, Exclusion, ExclusionRule, RankedAction};
use crate::pick::{Pick, action_reason_codes};
use crate::send_at::send_at;

/// Ranks the catalog's actions for one customer at one moment. Pure: same inputs, same answer.
pub fn rank(
    catalog: &Catalog,
    customer: &Customer<'_>,
    context: &Context<'_>,
    options: &RankOptions,
) -> Decision {
    rank_with(catalog, customer, context, options, &Learned::default())
}

/// [`rank`] with what outcomes taught: learned propensities replace the kinds' where given,
/// and promotional actions the customer is held out of are excluded as `control_group`.
pub fn rank_with(
    catalog: &Catalog,
    customer: &Customer<'_>,
    context: &Context<'_>,
    options: &RankOptions,
    learned: &Learned<'_>,
) -> Decision {
    Screening::new(catalog, customer, context, options).rank(learned)
}

/// [`rank`], with the [`Decision`] written straight to `out` as JSON: the bytes
/// `serde_json::to_writer(out, &rank(…))` writes (the payload's keys sorted), without
/// building the decision first. Ids, names and the catalog's payloads are written from their
/// JSON compiled once; the personalisation and reason codes from borrowed values.
pub fn rank_json(
    catalog: &Catalog,
    customer: &Customer<'_>,
    context: &Context<'_>,
    options: &RankOptions,
    out: &mut Vec<u8>,
) {
    rank_json_with(
        catalog,
        customer,
        context,
        options,
        &Learned::default(),
        out,
    )
}

/// [`rank_json`] with learned propensities and control groups, as [`rank_with`].
pub fn rank_json_with(
    catalog: &Catalog,
    customer: &Customer<'_>,
    context: &Context<'_>,
    options: &RankOptions,
    learned: &Learned<'_>,
    out: &mut Vec<u8>,
) {
    Screening::new(catalog, customer, context, options).rank_json(learned, out)
}

/// One customer's actions screened once through every rule but the control groups: the
/// first half of a ranking. A recorded decision's chooser reads the eligible actions from it
/// ([`Screening::eligible`]) and the ranking then finishes on the propensities it chose
/// ([`Screening::rank`]), so the rules run once per decision, not once for each.
pub struct Screening<'a> {
    catalog: &'a Catalog,
    customer: &'a Customer<'a>,
    context: &'a Context<'a>,
    options: RankOptions,
    facts: Facts<'a>,
    /// Actions that passed every rule, in catalog order.
    candidates: Vec<Candidate>,
    /// With `explain`: the actions that failed one, and why.
    misses: Option<Vec<(usize, Miss)>>,
}

impl<'a> Screening<'a> {
    /// Screens every action of `catalog` for `customer`, cheapest rule first.
    pub fn new(
        catalog: &'a Catalog,
        customer: &'a Customer<'a>,
        context: &'a Context<'a>,
        options: &RankOptions,
    ) -> Self {
        let facts = Facts::new(catalog, customer, context);
        let subject = Subject {
            catalog,
            customer,
            context,
            facts: &facts,
        };
        let last_sent = last_sent_per_action(catalog, customer, context.now);
        let mut candidates: Vec<Candidate> = Vec::with_capacity(catalog.actions.len());
        let mut misses = options.explain.then(Vec::new);
        for (i, action) in catalog.actions.iter().enumerate() {
            let last = last_sent.get(i).copied().flatten();
            match screen(i, action, &subject, last, options) {
                Ok(c) => candidates.push(c),
                Err(miss) => {
                    if let Some(list) = &mut misses {
                        list.push((i, miss));
                    }
                }
            }
        }
        Screening {
            catalog,
            customer,
            context,
            options: *options,
            facts,
            candidates,
            misses,
        }
    }

    /// The actions that passed every rule (control groups not yet applied), in catalog order:
    /// (catalog index, the propensity of its kind), what [`Catalog::assess`] answers for each.
    pub fn eligible(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.candidates.iter().map(|c| (c.index, c.propensity))
    }

    /// Finishes the ranking with what outcomes taught, as [`rank_with`].
    pub fn rank(self, learned: &Learned<'_>) -> Decision {
        let id = self.customer.id;
        self.finish(learned, |s, picks, excluded| {
            let mut reasons = Reasons::default();
            Decision {
                customer_id: id.to_owned(),
                actions: picks.iter().map(|p| present(p, s, &mut reasons)).collect(),
                excluded,
            }
        })
    }

    /// Finishes the ranking as [`rank_json_with`]: the decision appended to `out` as JSON.
    pub fn rank_json(self, learned: &Learned<'_>, out: &mut Vec<u8>) {
        self.finish(learned, |s, picks, excluded| {
            json::write_decision(out, s, picks, excluded.as_deref());
        })
    }

    /// Applies control groups and learned propensities, scores, sorts and hands out channels;
    /// `finish` turns the picks (best first) and, with `explain`, the exclusions (catalog
    /// order) into the answer.
    fn finish<R>(
        self,
        learned: &Learned<'_>,
        finish: impl FnOnce(&Subject<'_>, &[Pick], Option<Vec<Exclusion>>) -> R,
    ) -> R {
        let Screening {
            catalog,
            customer,
            context,
            options,
            facts,
            candidates,
            mut misses,
        } = self;
        let subject = Subject {
            catalog,
            customer,
            context,
            facts: &facts,
        };
        let mut candidates: Vec<Candidate> = candidates
            .into_iter()
            .filter_map(|c| {
                let index = c.index;
                learned
                    .apply(&catalog.actions[index], c)
                    .map_err(|miss| {
                        if let Some(list) = &mut misses {
                            list.push((index, miss));
                        }
                    })
                    .ok()
            })
            .collect();
        candidates.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then_with(|| {
                catalog.actions[a.index]
                    .id
                    .cmp(&catalog.actions[b.index].id)
            })
        });

        // Contacts left this week per channel; `None` is uncapped.
        let mut left = PerChannel::<Option<u32>>::default();
        for ch in Channel::ALL {
            *left.get_mut(ch) = catalog
                .policy
                .caps
                .get(ch)
                .map(|cap| cap.saturating_sub(*facts.sent_7d.get(ch)));
        }
        let mut picks = Vec::with_capacity(options.limit.min(candidates.len()));
        // One send time per channel and horizon: actions sharing them share the answer.
        let mut send_times = SendTimes::default();
        for c in &candidates {
            if picks.len() >= options.limit {
                break;
            }
            let action = &catalog.actions[c.index];
            match pick_channel(action, c.channels, &left, context) {
                Some(ch) => {
                    if let Some(n) = left.get_mut(ch) {
                        *n -= 1;
                    }
                    picks.push(pick(action, c, ch, &subject, &mut send_times));
                }
                None => {
                    if let Some(list) = &mut misses {
                        list.push((c.index, Miss::CapUsed));
                    }
                }
            }
        }
        let excluded = misses.map(|mut list| {
            list.sort_by_key(|(i, _)| *i);
            list.into_iter()
                .map(|(i, miss)| miss.explain(&catalog.actions[i], &subject, &options))
                .collect()
        });
        finish(&subject, &picks, excluded)
    }
}

/// An action that passed every rule.
pub(crate) struct Candidate {
    index: usize,
    pub(crate) propensity: f64,
    score: f64,
    /// Channels it may go out on (consented, under cap, allowed by the filter).
    channels: PerChannel<bool>,
    /// (decisions, responses) behind a learned propensity.
    observed: Option<(u64, u64)>,
}

/// Why an action was left out; turned into text only when explaining.
pub(crate) enum Miss {
    Validity,
    ChannelFiltered,
    NoConsent,
    FrequencyCap,
    Cooldown(DateTime<Utc>, u32),
    Suppressed,
    Kind(&'static str),
    Rule,
    RuleError(String),
    /// Eligible, but the caps were used up by higher-ranked actions.
    CapUsed,
    /// Eligible, but the customer is in the action's control group.
    Control,
}

impl Learned<'_> {
    /// Holds a promotional action back from its control group, else swaps in the learned
    /// propensity. Control comes after every other rule so that the held-out customers are
    /// exactly those who would have been eligible: the comparison lift needs.
    fn apply(&self, action: &CompiledAction, mut c: Candidate) -> Result<Candidate, Miss> {
        if action.promotional && self.control.get(c.index).copied().unwrap_or(false) {
            return Err(Miss::Control);
        }
        if let Some(p) = self.propensities.get(c.index).copied().flatten() {
            c.propensity = prob(p);
            c.score = c.propensity * action.value * action.weight - action.cost;
            c.observed = self
                .observed
                .get(c.index)
                .copied()
                .flatten()
                .filter(|&(n, _)| n > 0);
        }
        Ok(c)
    }
}

/// Latest contact per action, for cooldowns; empty when no action has one.
fn last_sent_per_action(
    catalog: &Catalog,
    customer: &Customer<'_>,
    now: DateTime<Utc>,
) -> Vec<Option<DateTime<Utc>>> {
    let Some(longest) = catalog.longest_cooldown_days else {
        return Vec::new();
    };
    let horizon = days_before(now, longest);
    let mut last = vec![None; catalog.actions.len()];
    for c in customer.contacts.iter().filter(|c| c.at > horizon) {
        if let Some(&i) = catalog.by_id.get(c.action_id) {
            let slot: &mut Option<DateTime<Utc>> = &mut last[i];
            if slot.is_none_or(|t| c.at > t) {
                *slot = Some(c.at);
            }
        }
    }
    last
}

/// The rules in order, cheapest first; the first failed one is the reason.
pub(crate) fn screen(
    index: usize,
    action: &CompiledAction,
    s: &Subject<'_>,
    last_sent: Option<DateTime<Utc>>,
    options: &RankOptions,
) -> Result<Candidate, Miss> {
    let f = s.facts;
    if action.valid_from.is_some_and(|d| f.today < d)
        || action.valid_to.is_some_and(|d| f.today > d)
    {
        return Err(Miss::Validity);
    }

    let mut channels = PerChannel::<bool>::default();
    let (mut offered, mut consented, mut usable) = (false, false, false);
    for &ch in &action.channels {
        if !channel_allowed(action, ch, s.context, options) {
            continue;
        }
        offered = true;
        if !*s.customer.consent.get(ch) {
            continue;
        }
        consented = true;
        if f.under_cap(s.catalog, ch) {
            *channels.get_mut(ch) = true;
            usable = true;
        }
    }
    match (offered, consented, usable) {
        (false, ..) => return Err(Miss::ChannelFiltered),
        (_, false, _) => return Err(Miss::NoConsent),
        (_, _, false) => return Err(Miss::FrequencyCap),
        _ => {}
    }

    if let (Some(days), Some(at)) = (action.cooldown_days, last_sent)
        && at > days_before(f.now, days)
    {
        return Err(Miss::Cooldown(at, days));
    }

    // A win-back right after a bad moment reads as tone-deaf whatever its flag says.
    if f.after_negative && (action.promotional || action.kind == Kind::WinBack) {
        return Err(Miss::Suppressed);
    }

    let propensity = prob(kinds::assess(action, s).map_err(Miss::Kind)?);

    if let Some(rule) = &action.rule {
        let scope = Scope {
            customer: s.customer,
            context: s.context,
            tier: f.tier,
            action: &action.record,
        };
        match rule.eval(&s.catalog.env, &scope) {
            Ok(true) => {}
            Ok(false) => return Err(Miss::Rule),
            Err(e) => return Err(Miss::RuleError(e)),
        }
    }

    let score = propensity * action.value * action.weight - action.cost;
    Ok(Candidate {
        index,
        propensity,
        score,
        channels,
        observed: None,
    })
}

/// The channel filter, and a cart reminder's follow-up on another channel than the current.
fn channel_allowed(
    action: &CompiledAction,
    ch: Channel,
    context: &Context<'_>,
    options: &RankOptions,
) -> bool {
    options.channel.is_none_or(|f| f == ch)
        && !(action.kind == Kind::CartReminder && context.channel == Some(ch))
}

/// The channel the customer is on now if possible, else the first in the action's order, among
/// the usable ones with contacts left this week.
fn pick_channel(
    action: &CompiledAction,
    usable: PerChannel<bool>,
    left: &PerChannel<Option<u32>>,
    context: &Context<'_>,
) -> Option<Channel> {
    let open = |ch: Channel| *usable.get(ch) && left.get(ch).is_none_or(|n| n > 0);
    context
        .channel
        .filter(|&ch| open(ch))
        .or_else(|| action.channels.iter().copied().find(|&ch| open(ch)))
}

/// Send times computed so far, per channel, for the week horizon and the urgent one, and the
/// profiles asked of the customer's [`SendTimeSource`](crate::SendTimeSource).
#[derive(Default)]
struct SendTimes {
    at: PerChannel<[Option<DateTime<Tz>>; 2]>,
    profiles: PerChannel<Lazy>,
}

/// A profile from the source: not asked yet, none, or the one it wrote.
// Large on purpose: it lives on the stack for one call, where a `Box` would be an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Default)]
enum Lazy {
    #[default]
    Unasked,
    Absent,
    Written(SendTimeProfile),
}

fn pick(
    action: &CompiledAction,
    c: &Candidate,
    ch: Channel,
    s: &Subject<'_>,
    send_times: &mut SendTimes,
) -> Pick {
    let on_now = s.context.channel == Some(ch);
    let urgent = action.kind.is_urgent();
    let SendTimes { at, profiles } = send_times;
    let slot = &mut at.get_mut(ch)[usize::from(urgent)];
    let when = *slot.get_or_insert_with(|| {
        let horizon = if urgent {
            s.catalog.tuning.urgent_horizon_hours
        } else {
            HOURS_PER_WEEK as u32
        };
        let quiet = s.catalog.policy.quiet;
        let local_now = s.facts.local_now;
        let profile = match (s.customer.send_time.get(ch), s.customer.send_time_source) {
            (Some(p), _) => Some(*p),
            // Sent now whatever the profile: not worth computing.
            (None, _) if on_now && !quiet.contains(local_now.hour()) => None,
            (None, None) => None,
            (None, Some(source)) => {
                let lazy = profiles.get_mut(ch);
                if let Lazy::Unasked = lazy {
                    // Written in place: a profile is 1.3 KB.
                    *lazy = Lazy::Written([0.0; HOURS_PER_WEEK]);
                    if let Lazy::Written(p) = lazy
                        && !source.profile(ch, p)
                    {
                        *lazy = Lazy::Absent;
                    }
                }
                match lazy {
                    Lazy::Written(p) => Some(&*p),
                    _ => None,
                }
            }
        };
        send_at(local_now, profile, quiet, on_now, horizon)
    });
    Pick {
        index: c.index,
        propensity: c.propensity,
        score: c.score,
        channel: ch,
        on_now,
        send_at: when,
        observed: c.observed,
    }
}

fn present(p: &Pick, s: &Subject<'_>, reasons: &mut Reasons) -> RankedAction {
    let action = &s.catalog.actions[p.index];
    action_reason_codes(action, p, s, reasons);
    RankedAction {
        id: action.id.clone(),
        name: action.name.clone(),
        kind: action.kind,
        channel: p.channel,
        propensity: p.propensity,
        expected_value: p.propensity * action.value,
        score: p.score,
        payload: serde_json::Value::Object(kinds::personalise(action, s).into_map(action)),
        send_at: p.send_at.fixed_offset(),
        reasons: reasons.to_vec(),
    }
}

fn list(channels: impl Iterator<Item = Channel>) -> String {
    channels.map(Channel::as_str).collect::<Vec<_>>().join(", ")
}

impl Miss {
    /// The rule this miss reports.
    pub(crate) fn rule(&self) -> ExclusionRule {
        match self {
            Miss::Validity => ExclusionRule::OutsideValidity,
            Miss::ChannelFiltered => ExclusionRule::ChannelFiltered,
            Miss::NoConsent => ExclusionRule::NoConsent,
            Miss::FrequencyCap | Miss::CapUsed => ExclusionRule::FrequencyCap,
            Miss::Cooldown(..) => ExclusionRule::Cooldown,
            Miss::Suppressed => ExclusionRule::SuppressedAfterNegative,
            Miss::Kind(_) | Miss::Rule => ExclusionRule::NotEligible,
            Miss::RuleError(_) => ExclusionRule::EligibilityError,
            Miss::Control => ExclusionRule::ControlGroup,
        }
    }

    fn explain(self, action: &CompiledAction, s: &Subject<'_>, options: &RankOptions) -> Exclusion {
        let f = s.facts;
        let offered = || {
            action
                .channels
                .iter()
                .copied()
                .filter(|&ch| channel_allowed(action, ch, s.context, options))
        };
        let (rule, detail) = match self {
            Miss::Validity => {
                let from = action.valid_from.map_or("…".to_owned(), |d| d.to_string());
                let to = action.valid_to.map_or("…".to_owned(), |d| d.to_string());
                (
                    ExclusionRule::OutsideValidity,
                    format!(
                        "valid {from} to {to}; the customer's local date is {}",
                        f.today
                    ),
                )
            }
            Miss::ChannelFiltered => {
                let detail = match (action.kind, s.context.channel) {
                    (Kind::CartReminder, Some(now)) if options.channel.is_none_or(|c| c == now) => {
                        format!(
                            "a cart reminder follows up on another channel than the customer's \
                             current one ({now})"
                        )
                    }
                    _ => format!(
                        "channels [{}] do not include the requested {}",
                        list(action.channels.iter().copied()),
                        options.channel.map_or("channel", Channel::as_str)
                    ),
                };
                (ExclusionRule::ChannelFiltered, detail)
            }
            Miss::NoConsent => (
                ExclusionRule::NoConsent,
                format!("no consent on {}", list(offered())),
            ),
            Miss::FrequencyCap => {
                let parts: Vec<String> = offered()
                    .filter(|&ch| *s.customer.consent.get(ch))
                    .map(|ch| {
                        format!(
                            "{ch}: {} of {} contacts in 7 days",
                            f.sent_7d.get(ch),
                            s.catalog.policy.caps.get(ch).unwrap_or(0)
                        )
                    })
                    .collect();
                (ExclusionRule::FrequencyCap, parts.join("; "))
            }
            Miss::CapUsed => (
                ExclusionRule::FrequencyCap,
                format!(
                    "this week's remaining contacts on {} went to higher-ranked actions",
                    list(offered().filter(|&ch| *s.customer.consent.get(ch)))
                ),
            ),
            Miss::Cooldown(at, days) => (
                ExclusionRule::Cooldown,
                format!("last sent {}, cooldown {days} days", at.to_rfc3339()),
            ),
            Miss::Suppressed => {
                let ago = f.days_since_negative.map_or(0.0, f64::floor);
                let days = s.catalog.policy.suppression_days;
                let detail = if action.kind == Kind::WinBack {
                    format!(
                        "a win-back never follows a negative moment ({ago} days ago, \
                         suppression {days} days)"
                    )
                } else {
                    format!(
                        "promotional, {ago} days after a negative moment (suppression {days} days)"
                    )
                };
                (ExclusionRule::SuppressedAfterNegative, detail)
            }
            Miss::Kind(why) => (
                ExclusionRule::NotEligible,
                format!("{} rule: {why}", action.kind),
            ),
            Miss::Rule => (
                ExclusionRule::NotEligible,
                format!(
                    "eligible `{}` is false",
                    action.rule.as_ref().map_or("", |r| r.source.as_str())
                ),
            ),
            Miss::RuleError(e) => (
                ExclusionRule::EligibilityError,
                format!(
                    "eligible `{}` failed: {e}",
                    action.rule.as_ref().map_or("", |r| r.source.as_str())
                ),
            ),
            Miss::Control => (
                ExclusionRule::ControlGroup,
                "the customer is in this promotional action's control group (held out to \
                 measure lift)"
                    .to_owned(),
            ),
        };
        Exclusion {
            id: action.id.clone(),
            rule,
            detail,
        }
    }
}
