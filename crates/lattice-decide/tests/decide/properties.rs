//! Random catalogs, customers and moments: no ranked action ever breaks consent, caps,
//! cooldowns, validity or suppression; rankings are deterministic, sorted, within the limit.

use chrono::{DateTime, Datelike, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use lattice_catalog::actions::{Action, ActionCatalog, Policy};
use lattice_decide::{
    Catalog, Channel, Contact, Context, Customer, ExclusionRule, HOURS_PER_WEEK, Kind, Learned,
    PerChannel, RankOptions, Scores, Screening, SendTimeProfile, SendTimeSource, rank, rank_with,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use crate::common::{CATEGORIES, VARIABLES, categories, settings, variables};

const EXPRESSIONS: &[&str] = &[
    "recency_days > 30.0",
    "churn_probability > 0.5",
    "has(context.category) && context.category == action.category",
    "tier == 'gold'",
    "context.page == 'home'",
    "affinity_outerwear > 0.1 || orders_90d == 0",
    "size(action.id) > 1 && clv >= 100.0",
];

/// Payloads of actions, some with keys the built-in kinds personalise with (the catalog wins).
const PAYLOADS: &[&str] = &[
    "subject = \"Hi \\\"there\\\" \\u00e9\\n\"",
    "category = \"override\"\nn = 3\nx = 1.5",
    "tier = \"vip\"\na = [1, \"b\"]\nzz = { k = \"v\" }",
    "amount_to_go = -1\nbig = 1e300\nreward = \"\"",
];

const ZONES: &[Tz] = &[
    chrono_tz::UTC,
    chrono_tz::America::New_York,
    chrono_tz::Europe::Berlin,
    chrono_tz::Asia::Kolkata,
    chrono_tz::Australia::Sydney,
];

#[derive(Debug, Clone)]
struct ActionSpec {
    kind: usize,
    channels: u8,
    category: Option<usize>,
    value: f64,
    cost: f64,
    weight: f64,
    cooldown: Option<u32>,
    validity: Option<(i64, i64)>,
    promotional: Option<bool>,
    eligible: Option<usize>,
    payload: Option<usize>,
}

prop_compose! {
    fn action_spec()(
        // Half custom: most built-in kinds rarely apply to random customers.
        kind in prop_oneof![Just(Kind::ALL.len() - 1), 0usize..Kind::ALL.len()],
        channels in 1u8..8,
        category in option::of(0usize..CATEGORIES.len()),
        value in 0.0f64..100.0,
        cost in 0.0f64..10.0,
        weight in 0.0f64..3.0,
        cooldown in option::of(0u32..20),
        validity in option::weighted(0.25, (-10i64..10, 0i64..20)),
        promotional in option::of(any::<bool>()),
        eligible in option::weighted(0.3, 0usize..EXPRESSIONS.len()),
        payload in option::of(0usize..PAYLOADS.len()),
    ) -> ActionSpec {
        ActionSpec { kind, channels, category, value, cost, weight, cooldown, validity, promotional, eligible, payload }
    }
}

#[derive(Debug, Clone)]
struct World {
    actions: Vec<ActionSpec>,
    caps: [Option<u32>; 3],
    quiet: (u8, u8),
    suppression_days: u32,
    values: Vec<f64>,
    affinity: Vec<f64>,
    scores: (f64, f64, f64),
    tier: Option<usize>,
    money: (f64, f64),
    zone: usize,
    consent: [bool; 3],
    birth_signup: (Option<i64>, Option<i64>),
    negative_purchase: (Option<i64>, Option<i64>),
    contacts: Vec<(usize, usize, i64)>,
    profile: Option<Vec<f64>>,
    now_minutes: i64,
    context: (Option<usize>, Option<usize>, bool),
    options: (usize, Option<usize>, bool),
}

fn world() -> impl Strategy<Value = World> {
    let catalog = (
        vec(action_spec(), 1..12),
        [
            option::of(0u32..5),
            option::of(0u32..5),
            option::of(0u32..5),
        ],
        (0u8..24, 0u8..24),
        0u32..30,
    );
    let customer = (
        vec(0.0f64..100.0, VARIABLES.len()),
        vec(0.0f64..1.0, CATEGORIES.len()),
        (0.0f64..1.0, 0.0f64..1.0, 0.0f64..1000.0),
        option::of(0usize..4),
        (0.0f64..3000.0, 0.0f64..2000.0),
        0usize..ZONES.len(),
        [
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.85),
        ],
        (option::of(0i64..365), option::of(0i64..3000)),
        (option::of(0i64..40 * 24), option::of(0i64..200 * 24)),
        vec((0usize..12, 0usize..3, -24i64..20 * 24), 0..12),
        option::of(vec(0.0f64..1.0, HOURS_PER_WEEK)),
    );
    let moment = (
        0i64..365 * 24 * 60,
        (
            option::of(0usize..3),
            option::of(0usize..CATEGORIES.len()),
            any::<bool>(),
        ),
        (0usize..10, option::weighted(0.2, 0usize..3), any::<bool>()),
    );
    (catalog, customer, moment).prop_map(|(c, u, m)| World {
        actions: c.0,
        caps: c.1,
        quiet: c.2,
        suppression_days: c.3,
        values: u.0,
        affinity: u.1,
        scores: u.2,
        tier: u.3,
        money: u.4,
        zone: u.5,
        consent: u.6,
        birth_signup: u.7,
        negative_purchase: u.8,
        contacts: u.9,
        profile: u.10,
        now_minutes: m.0,
        context: m.1,
        options: m.2,
    })
}

const TIERS: &[&str] = &["bronze", "silver", "gold", "platinum"];

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

impl World {
    fn now(&self) -> DateTime<Utc> {
        start() + TimeDelta::minutes(self.now_minutes)
    }

    fn catalog(&self) -> ActionCatalog {
        let today = self.now().date_naive();
        let mut max = std::collections::HashMap::new();
        for (ch, cap) in Channel::ALL.iter().zip(self.caps) {
            if let Some(cap) = cap {
                max.insert(ch.as_str().to_owned(), cap);
            }
        }
        ActionCatalog {
            policy: Policy {
                max_contacts_per_7d: max,
                quiet_hours_start: self.quiet.0,
                quiet_hours_end: self.quiet.1,
                suppression_days: self.suppression_days,
                ..Policy::default()
            },
            actions: self
                .actions
                .iter()
                .enumerate()
                .map(|(i, s)| Action {
                    id: format!("a{i}"),
                    name: format!("action {i}"),
                    kind: Kind::ALL[s.kind].as_str().to_owned(),
                    channels: Channel::ALL
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| s.channels & (1 << b) != 0)
                        .map(|(_, c)| c.as_str().to_owned())
                        .collect(),
                    category: s.category.map(|c| CATEGORIES[c].to_owned()),
                    value: s.value,
                    cost: s.cost,
                    eligible: s.eligible.map(|e| EXPRESSIONS[e].to_owned()),
                    cooldown_days: s.cooldown,
                    valid_from: s.validity.map(|(from, _)| today + TimeDelta::days(from)),
                    valid_to: s
                        .validity
                        .map(|(from, len)| today + TimeDelta::days(from + len)),
                    weight: s.weight,
                    promotional: s.promotional,
                    payload: s.payload.map(|p| toml::from_str(PAYLOADS[p]).unwrap()),
                    response: None,
                    holdout: 0.0,
                })
                .collect(),
        }
    }

    fn contacts(&self) -> Vec<(String, Channel, DateTime<Utc>)> {
        self.contacts
            .iter()
            .map(|&(a, ch, hours_ago)| {
                (
                    format!("a{a}"),
                    Channel::ALL[ch],
                    self.now() - TimeDelta::hours(hours_ago),
                )
            })
            .collect()
    }
}

/// Send-time profiles on demand: `profile` on email and push, none on SMS.
#[derive(Debug)]
struct Source<'a>(Option<&'a SendTimeProfile>);

impl SendTimeSource for Source<'_> {
    fn profile(&self, channel: Channel, out: &mut SendTimeProfile) -> bool {
        match (channel, self.0) {
            (Channel::Email | Channel::Push, Some(p)) => {
                *out = *p;
                true
            }
            _ => false,
        }
    }
}

fn check(w: &World) -> Result<(), TestCaseError> {
    let spec = w.catalog();
    let catalog = Catalog::compile(&spec, &settings(), &variables(), &categories())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let now = w.now();
    let owned_contacts = w.contacts();
    let contacts: Vec<Contact<'_>> = owned_contacts
        .iter()
        .map(|(id, channel, at)| Contact {
            action_id: id,
            channel: *channel,
            at: *at,
        })
        .collect();
    let profile: Option<Box<SendTimeProfile>> = w.profile.as_ref().map(|p| {
        let mut a = Box::new([0.0; HOURS_PER_WEEK]);
        a.copy_from_slice(p);
        a
    });
    let tz = ZONES[w.zone];
    let customer = Customer {
        id: "c\"1\\é",
        values: &w.values,
        scores: Scores {
            churn_probability: w.scores.0,
            p_alive: w.scores.1,
            expected_purchases: 1.0,
            clv: w.scores.2,
            affinity: &w.affinity,
        },
        tier: w.tier.map(|t| TIERS[t]),
        spend_365d: w.money.0,
        points_balance: w.money.1,
        tz,
        consent: PerChannel {
            email: w.consent[0],
            sms: w.consent[1],
            push: w.consent[2],
        },
        birth_date: w
            .birth_signup
            .0
            .map(|d| chrono::NaiveDate::from_ymd_opt(1980, 1, 1).unwrap() + TimeDelta::days(d)),
        signup_date: w
            .birth_signup
            .1
            .map(|d| now.date_naive() - TimeDelta::days(d)),
        last_negative_at: w.negative_purchase.0.map(|h| now - TimeDelta::hours(h)),
        last_purchase_at: w.negative_purchase.1.map(|h| now - TimeDelta::hours(h)),
        contacts: &contacts,
        send_time: PerChannel {
            email: profile.as_deref(),
            sms: None,
            push: profile.as_deref(),
        },
        send_time_source: None,
    };
    let context = Context {
        now,
        channel: w.context.0.map(|c| Channel::ALL[c]),
        category: w.context.1.map(|c| CATEGORIES[c]),
        page: w.context.2.then_some("home"),
        store: None,
    };
    let options = RankOptions {
        limit: w.options.0,
        channel: w.options.1.map(|c| Channel::ALL[c]),
        explain: w.options.2,
    };
    let d = rank(&catalog, &customer, &context, &options);

    // Deterministic, and explaining changes nothing about the ranking.
    prop_assert_eq!(&rank(&catalog, &customer, &context, &options), &d);
    let flipped = RankOptions {
        explain: !options.explain,
        ..options
    };
    prop_assert_eq!(
        &rank(&catalog, &customer, &context, &flipped).actions,
        &d.actions
    );

    // The same profiles from a source, computed on demand: the same decision.
    let source = Source(profile.as_deref());
    let lazy = Customer {
        send_time: PerChannel::default(),
        send_time_source: Some(&source),
        ..customer
    };
    prop_assert_eq!(&rank(&catalog, &lazy, &context, &options), &d);

    // The JSON writer writes what serialising the decision writes, byte for byte.
    let mut json = b"[".to_vec();
    catalog.rank_json(&customer, &context, &options, &mut json);
    prop_assert_eq!(
        String::from_utf8(json).unwrap(),
        format!("[{}", serde_json::to_string(&d).unwrap())
    );

    prop_assert!(d.actions.len() <= options.limit);
    for pair in d.actions.windows(2) {
        prop_assert!(
            pair[0].score > pair[1].score
                || (pair[0].score == pair[1].score && pair[0].id < pair[1].id),
            "not sorted: {:?} then {:?}",
            (&pair[0].id, pair[0].score),
            (&pair[1].id, pair[1].score)
        );
    }

    let today = now.with_timezone(&tz).date_naive();
    let quiet = |hour: u32| {
        let (s, e) = (u32::from(w.quiet.0), u32::from(w.quiet.1));
        if s <= e {
            s <= hour && hour < e
        } else {
            hour >= s || hour < e
        }
    };
    let mut used: PerChannel<u32> = PerChannel::default();
    for a in &d.actions {
        let def = spec.actions.iter().find(|x| x.id == a.id).unwrap();
        let ch = a.channel;
        prop_assert!(
            def.channels.iter().any(|c| c == ch.as_str()),
            "{} not on {ch}",
            a.id
        );
        prop_assert!(
            *customer.consent.get(ch),
            "{} sent without consent on {ch}",
            a.id
        );
        prop_assert!(options.channel.is_none_or(|f| f == ch));
        if let Some(cap) = spec.policy.max_contacts_per_7d.get(ch.as_str()) {
            let recent = contacts
                .iter()
                .filter(|c| c.channel == ch && c.at > now - TimeDelta::days(7))
                .count() as u32;
            prop_assert!(recent + used.get(ch) < *cap, "{} breaks the {ch} cap", a.id);
        }
        *used.get_mut(ch) += 1;
        if let Some(days) = def.cooldown_days {
            let cooling = contacts
                .iter()
                .any(|c| c.action_id == a.id && c.at > now - TimeDelta::days(i64::from(days)));
            prop_assert!(!cooling, "{} inside its cooldown", a.id);
        }
        prop_assert!(
            def.valid_from.is_none_or(|d| today >= d),
            "{} before valid_from",
            a.id
        );
        prop_assert!(
            def.valid_to.is_none_or(|d| today <= d),
            "{} after valid_to",
            a.id
        );
        let kind = Kind::parse(&def.kind).unwrap();
        let promotional = def.promotional.unwrap_or(kind.promotional_by_default());
        if let Some(neg) = customer.last_negative_at {
            let days = (now - neg).num_seconds() as f64 / 86_400.0;
            if days < f64::from(spec.policy.suppression_days) {
                prop_assert!(
                    !promotional,
                    "{} is promotional right after a negative moment",
                    a.id
                );
                prop_assert!(
                    kind != Kind::WinBack,
                    "a win-back right after a negative moment"
                );
            }
        }
        if kind == Kind::CartReminder {
            prop_assert!(
                context.channel != Some(ch),
                "a cart reminder on the current channel"
            );
        }
        prop_assert!(
            a.send_at >= now - TimeDelta::seconds(1),
            "send_at in the past"
        );
        let local = a.send_at.with_timezone(&tz);
        prop_assert!(
            !quiet(local.hour()),
            "{} sent at {local} in quiet hours",
            a.id
        );
        prop_assert!(a.score.is_finite() && (0.0..=1.0).contains(&a.propensity));
        let _ = local.weekday();
    }

    check_learned(w, &spec, &catalog, &customer, &context, &options)?;

    if let Some(excluded) = &d.excluded {
        let mut seen: Vec<&str> = excluded.iter().map(|e| e.id.as_str()).collect();
        seen.extend(d.actions.iter().map(|a| a.id.as_str()));
        let total = seen.len();
        seen.sort();
        seen.dedup();
        prop_assert_eq!(seen.len(), total, "an action both ranked and excluded");
        if options.limit >= spec.actions.len() {
            prop_assert_eq!(
                total,
                spec.actions.len(),
                "an action neither ranked nor excluded"
            );
        }
    }
    Ok(())
}

/// Control groups and learned propensities: a customer held out of a promotional action never
/// receives it, is told why, and a ranked action carries the learned propensity.
fn check_learned(
    w: &World,
    spec: &ActionCatalog,
    catalog: &Catalog,
    customer: &Customer<'_>,
    context: &Context<'_>,
    options: &RankOptions,
) -> Result<(), TestCaseError> {
    let n = spec.actions.len();
    // Varied per case, from bits the world already drew.
    let bits = w.now_minutes as u64 ^ (w.values[0].to_bits() >> 7);
    let control: Vec<bool> = (0..n).map(|i| (bits >> i) & 1 == 1).collect();
    let propensities: Vec<Option<f64>> = (0..n)
        .map(|i| (i % 3 != 0).then(|| ((bits >> (i + 3)) % 101) as f64 / 100.0))
        .collect();
    let learned = Learned {
        propensities: &propensities,
        control: &control,
        observed: &[],
    };
    let explain = RankOptions {
        explain: true,
        ..*options
    };
    let d = rank_with(catalog, customer, context, &explain, &learned);
    let promotional = |i: usize| {
        let def = &spec.actions[i];
        def.promotional
            .unwrap_or(Kind::parse(&def.kind).unwrap().promotional_by_default())
    };
    let index = |id: &str| spec.actions.iter().position(|a| a.id == id).unwrap();
    for a in &d.actions {
        let i = index(&a.id);
        prop_assert!(
            !(control[i] && promotional(i)),
            "{} went to its control group",
            a.id
        );
        if let Some(p) = propensities[i] {
            prop_assert_eq!(a.propensity, p);
        }
    }
    for e in d.excluded.iter().flatten() {
        if e.rule == ExclusionRule::ControlGroup {
            let i = index(&e.id);
            prop_assert!(control[i] && promotional(i), "{} held out wrongly", e.id);
        }
    }
    // One screening serves the chooser and the ranking: its eligible actions are those
    // `assess` passes, with the same propensities, and finishing it is `rank_with`.
    let screening = Screening::new(catalog, customer, context, &explain);
    let eligible: Vec<(usize, f64)> = screening.eligible().collect();
    let assessed: Vec<(usize, f64)> = (0..n)
        .filter_map(|i| {
            catalog
                .assess(i, customer, context, options.channel)
                .ok()
                .map(|p| (i, p))
        })
        .collect();
    prop_assert_eq!(eligible, assessed);
    prop_assert_eq!(screening.rank(&learned), d);
    // Without learning, rank_with is rank.
    prop_assert_eq!(
        rank_with(catalog, customer, context, options, &Learned::default()),
        rank(catalog, customer, context, options)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ranked_actions_respect_every_rule(w in world()) {
        check(&w)?;
    }
}
