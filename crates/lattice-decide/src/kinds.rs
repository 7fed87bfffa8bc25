//! The built-in micro-moment kinds: when each applies, how likely the customer is to respond,
//! what personalises the message, and the reason codes. The crate docs summarise the rules.

use chrono::{Datelike, NaiveDate};
use std::fmt;

use serde_json::{Map, Value};

use crate::catalog::{Catalog, CompiledAction};
use crate::facts::{Categories, Facts, amount};
use crate::input::{Context, Customer};
use crate::kind::Kind;

/// Everything a kind looks at for one customer and moment.
pub(crate) struct Subject<'s> {
    pub(crate) catalog: &'s Catalog,
    pub(crate) customer: &'s Customer<'s>,
    pub(crate) context: &'s Context<'s>,
    pub(crate) facts: &'s Facts<'s>,
}

impl<'s> Subject<'s> {
    fn feature(&self, index: Option<usize>) -> Option<f64> {
        let v = *self.customer.values.get(index?)?;
        v.is_finite().then_some(v)
    }

    fn categories(&self) -> Categories<'_> {
        Categories {
            affinity: self.customer.scores.affinity,
        }
    }

    fn n_categories(&self) -> usize {
        self.catalog.categories.len()
    }

    /// The customer's strongest category by affinity.
    fn strongest_category(&self) -> Option<usize> {
        let n = self.n_categories();
        (n > 0).then(|| self.categories().top(n, 1)[0])
    }

    /// The category an action is about: its own, else the customer's strongest.
    fn target_category(&self, action: &CompiledAction) -> Option<usize> {
        action.category.or_else(|| self.strongest_category())
    }

    /// The category the customer buys most (purchase shares), else their strongest affinity.
    fn favourite_category(&self) -> Option<&'s str> {
        let refs = &self.catalog.features;
        let by_share = refs
            .share
            .iter()
            .enumerate()
            .filter_map(|(c, i)| Some((c, self.feature(*i)?)))
            .filter(|(_, s)| *s > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(c, _)| c);
        let c = by_share.or_else(|| self.strongest_category())?;
        Some(self.catalog.categories[c].as_str())
    }

    /// Whether category `c` is one of the customer's: in their top N and above the minimum.
    fn is_theirs(&self, c: usize) -> Result<f64, &'static str> {
        let t = &self.catalog.tuning;
        let cats = self.categories();
        let a = cats.affinity(c);
        if cats.rank(c, self.n_categories()) >= t.top_categories {
            return Err("the category is not among the customer's top categories by affinity");
        }
        if a < t.min_affinity {
            return Err("the category's affinity is below the minimum");
        }
        Ok(a)
    }

    fn category_name(&self, c: usize) -> &'s str {
        &self.catalog.categories[c]
    }
}

/// The kind's rule: `Ok(propensity)` when it applies, else why not.
pub(crate) fn assess(action: &CompiledAction, s: &Subject<'_>) -> Result<f64, &'static str> {
    let f = s.facts;
    let t = &s.catalog.tuning;
    match action.kind {
        Kind::EarlyAccess => s.is_theirs(s.target_category(action).ok_or("no categories")?),
        Kind::InsiderPreview => {
            let n = s.catalog.tiers.len();
            if n > 0 {
                let i = f.tier_index.ok_or("the customer has no tier")?;
                if i < top_tier_start(n) {
                    return Err("insider previews are for the top tiers");
                }
            }
            s.is_theirs(s.target_category(action).ok_or("no categories")?)
        }
        Kind::Discovery => {
            let c = s.target_category(action).ok_or("no categories")?;
            let a = s.is_theirs(c)?;
            if action.category.is_some()
                && let Some(share) = s.feature(s.catalog.features.share[c])
                && share >= t.discovery_max_share
            {
                return Err("the customer already buys this category: nothing to discover");
            }
            Ok(a)
        }
        Kind::ProgressNudge => {
            let (_, to_go) = f.next_tier.ok_or("no next tier to reach")?;
            if f.tier_gap <= 0.0 || to_go > t.progress_share * f.tier_gap {
                return Err("not close to the next tier");
            }
            Ok(f.p_alive * (1.0 - to_go / f.tier_gap))
        }
        Kind::SurpriseDelight => {
            if f.clv < t.high_clv {
                return Err("CLV below the high-value threshold");
            }
            let days = f.days_since_purchase.ok_or("no purchase yet")?;
            if days < t.quiet_days {
                return Err("bought recently: not a quiet customer");
            }
            if f.p_alive < t.advocate_p_alive {
                return Err("likely lapsed (p_alive below the advocate threshold)");
            }
            Ok(0.5 * f.p_alive)
        }
        Kind::TierExperience => {
            if s.catalog.tiers.is_empty() {
                return Err("no tiers in the programme settings");
            }
            match f.tier_index {
                Some(i) if i >= 1 => Ok(0.3 * f.p_alive),
                _ => Err("tier experiences are for tiers above the entry tier"),
            }
        }
        Kind::CartReminder => {
            let refs = &s.catalog.features;
            let carts = s.feature(refs.carts_30d).unwrap_or(0.0);
            let views = s.feature(refs.views_30d).unwrap_or(0.0);
            if carts < 1.0 && views < 2.0 {
                return Err("no cart and fewer than 2 views in 30 days");
            }
            if s.feature(refs.days_since_last_event)
                .is_some_and(|d| d > t.cart_recent_days)
            {
                return Err("no recent activity");
            }
            Ok((0.15 * carts + 0.03 * views).min(0.6))
        }
        Kind::PostPurchase => match f.days_since_purchase {
            Some(d) if d <= t.post_purchase_days => Ok(0.4 * f.p_alive),
            Some(_) => Err("no purchase in the post-purchase window"),
            None => Err("no purchase yet"),
        },
        Kind::WinBack => {
            let days = f
                .days_since_purchase
                .ok_or("no purchase yet: nothing to win back")?;
            if days < t.win_back_after_days {
                return Err("bought recently");
            }
            if f.churn < t.win_back_churn {
                return Err("churn probability below the win-back threshold");
            }
            if f.p_alive < t.min_p_alive {
                return Err("likely gone for good (p_alive below the minimum)");
            }
            Ok(f.churn * f.p_alive)
        }
        Kind::PointsExpiry => {
            if amount(s.customer.points_balance) <= 0.0 {
                return Err("no points to expire");
            }
            if f.churn < t.points_expiry_churn {
                return Err("churn probability below the points-expiry threshold");
            }
            Ok(f.churn * f.p_alive)
        }
        Kind::Birthday => {
            let born = s.customer.birth_date.ok_or("no birth date")?;
            if born.month() != f.today.month() {
                return Err("not the customer's birth month");
            }
            Ok(0.5 * f.p_alive)
        }
        Kind::Gratitude => {
            let (years, since) =
                anniversary(s.customer.signup_date.ok_or("no signup date")?, f.today)
                    .ok_or("less than a year since signup")?;
            if years < 1 || since > t.anniversary_window_days {
                return Err("not the signup anniversary");
            }
            Ok(0.3 * f.p_alive)
        }
        Kind::ServiceRecovery => match f.days_since_negative {
            Some(d) if d < f64::from(s.catalog.policy.suppression_days) => Ok(0.6),
            _ => Err("no recent negative moment"),
        },
        Kind::Custom => Ok(match action.category {
            Some(c) => s.categories().affinity(c),
            None => 0.1 * f.p_alive,
        }),
    }
}

/// First tier index counted as a top tier: the upper half of the ladder, at least the top one.
fn top_tier_start(n: usize) -> usize {
    n - (n / 2).max(1)
}

/// Completed years and days since the latest signup anniversary on or before `today`.
fn anniversary(signup: NaiveDate, today: NaiveDate) -> Option<(i32, i64)> {
    let on = |year: i32| {
        NaiveDate::from_ymd_opt(year, signup.month(), signup.day())
            // 29 February: the 28th in other years.
            .or_else(|| NaiveDate::from_ymd_opt(year, signup.month(), signup.day() - 1))
    };
    let this_year = on(today.year())?;
    let (year, date) = if this_year <= today {
        (today.year(), this_year)
    } else {
        (today.year() - 1, on(today.year() - 1)?)
    };
    let years = year - signup.year();
    (years >= 0).then(|| (years, (today - date).num_days()))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Personalisation for the message; the action's own payload is merged over it (and wins on a
/// shared key) when the answer is written.
pub(crate) fn personalise<'s>(action: &CompiledAction, s: &Subject<'s>) -> Personal<'s> {
    use PValue::{Float, Int, Names, Str};
    let f = s.facts;
    let t = &s.catalog.tuning;
    let mut p = Personal::default();
    let mut put = |k: &'static str, v: PValue<'s>| p.put(k, v);
    match action.kind {
        Kind::EarlyAccess | Kind::InsiderPreview => {
            if let Some(c) = s.target_category(action) {
                put("category", Str(s.category_name(c)));
            }
            if action.kind == Kind::InsiderPreview
                && let Some(tier) = f.tier
            {
                put("tier", Str(tier));
            }
        }
        Kind::Discovery => {
            if let Some(c) = s.target_category(action) {
                put("category", Str(s.category_name(c)));
            }
            let n = s.n_categories();
            let top: Vec<&str> = s
                .categories()
                .top(n, t.top_categories)
                .into_iter()
                .map(|c| s.category_name(c))
                .collect();
            put("top_categories", Names(top));
        }
        Kind::ProgressNudge => {
            if let Some(tier) = f.tier {
                put("tier", Str(tier));
            }
            if let Some((next, to_go)) = f.next_tier {
                put("next_tier", Str(&next.name));
                put("amount_to_go", Float(round2(to_go)));
                put("currency", Str(&s.catalog.currency));
                if let Some(r) = &next.reward {
                    put("reward", Str(r));
                }
            }
        }
        Kind::SurpriseDelight => {
            let points =
                ((f.clv * t.delight_points_per_clv / 50.0).round() * 50.0).clamp(100.0, 1000.0);
            put("suggested_points", Float(points));
            if let Some(d) = f.days_since_purchase {
                put("days_since_purchase", Float(d.floor()));
            }
        }
        Kind::TierExperience => {
            if let Some(tier) = f.tier {
                put("tier", Str(tier));
            }
            if let Some(reward) = f
                .tier_index
                .and_then(|i| s.catalog.tiers.get(i))
                .and_then(|t| t.reward.as_ref())
            {
                put("tier_reward", Str(reward));
            }
            if let Some((next, _)) = f.next_tier {
                put("next_tier", Str(&next.name));
            }
        }
        Kind::CartReminder => {
            let refs = &s.catalog.features;
            let viewed = s.context.category.or_else(|| {
                refs.view_share
                    .iter()
                    .enumerate()
                    .filter_map(|(c, i)| Some((c, s.feature(*i)?)))
                    .filter(|(_, v)| *v > 0.0)
                    .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map(|(c, _)| s.category_name(c))
            });
            if let Some(c) = viewed {
                put("category", Str(c));
            }
            if let Some(v) = s.feature(refs.carts_30d) {
                put("carts_30d", Float(v));
            }
            if let Some(v) = s.feature(refs.views_30d) {
                put("views_30d", Float(v));
            }
        }
        Kind::PostPurchase => {
            put("message", Str("check_in"));
            if let Some(d) = f.days_since_purchase {
                put("days_since_purchase", Float(d.floor()));
            }
            if let Some(c) = s.favourite_category() {
                put("favourite_category", Str(c));
            }
        }
        Kind::WinBack => {
            if let Some(d) = f.days_since_purchase {
                put("days_since_purchase", Float(d.floor()));
            }
            if let Some(c) = s.favourite_category() {
                put("favourite_category", Str(c));
            }
        }
        Kind::PointsExpiry => {
            put("points_balance", Float(amount(s.customer.points_balance)));
        }
        Kind::Birthday => {
            let steps = f.tier_index.map_or(1, |i| i + 1) as f64;
            put("reward_points", Float(t.birthday_points_per_tier * steps));
            if let Some(tier) = f.tier {
                put("tier", Str(tier));
            }
            if let Some(c) = s.favourite_category() {
                put("favourite_category", Str(c));
            }
        }
        Kind::Gratitude => {
            if let Some((years, _)) = s.customer.signup_date.and_then(|d| anniversary(d, f.today)) {
                put("years", Int(i64::from(years)));
            }
            if let Some(orders) = s.feature(s.catalog.features.frequency) {
                put("orders", Float(orders));
            }
            if let Some(c) = s.favourite_category() {
                put("favourite_category", Str(c));
            }
        }
        Kind::ServiceRecovery => {
            if let Some(d) = f.days_since_negative {
                put("days_since_negative", Float(d.floor()));
            }
        }
        Kind::Custom => {
            if let Some(c) = action.category {
                put("category", Str(s.category_name(c)));
            }
        }
    }
    p
}

/// A personalisation value, borrowed from the catalog, the customer or the context.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PValue<'s> {
    Str(&'s str),
    /// A JSON number (`null` when not finite, as `serde_json` writes it).
    Float(f64),
    Int(i64),
    Names(Vec<&'s str>),
}

impl PValue<'_> {
    fn to_value(&self) -> Value {
        match self {
            PValue::Str(s) => Value::String((*s).to_owned()),
            PValue::Float(x) => Value::from(*x),
            PValue::Int(i) => Value::from(*i),
            PValue::Names(names) => Value::Array(
                names
                    .iter()
                    .map(|n| Value::String((*n).to_owned()))
                    .collect(),
            ),
        }
    }
}

/// Most entries a kind personalises with.
const MAX_PERSONAL: usize = 6;

/// A kind's personalisation, without the action's own payload.
#[derive(Debug, Default)]
pub(crate) struct Personal<'s> {
    entries: [Option<(&'static str, PValue<'s>)>; MAX_PERSONAL],
    len: usize,
}

impl<'s> Personal<'s> {
    /// Sets `key` (replacing an earlier value).
    fn put(&mut self, key: &'static str, value: PValue<'s>) {
        for (k, v) in self.entries[..self.len].iter_mut().flatten() {
            if *k == key {
                *v = value;
                return;
            }
        }
        debug_assert!(
            self.len < MAX_PERSONAL,
            "a kind personalises with too many keys"
        );
        if let Some(slot) = self.entries.get_mut(self.len) {
            *slot = Some((key, value));
            self.len += 1;
        }
    }

    /// Sorts the entries by key: the order a JSON object map keeps.
    pub(crate) fn sort(&mut self) {
        self.entries[..self.len].sort_unstable_by_key(|e| e.as_ref().map(|(k, _)| *k));
    }

    /// The entries, in the order they were put or, after [`Self::sort`], by key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, &PValue<'s>)> + '_ {
        self.entries[..self.len]
            .iter()
            .flatten()
            .map(|(k, v)| (*k, v))
    }

    /// As a JSON object, with the action's own payload merged over it.
    pub(crate) fn into_map(self, action: &CompiledAction) -> Map<String, Value> {
        let mut p = Map::new();
        for (k, v) in self.iter() {
            p.insert(k.to_owned(), v.to_value());
        }
        for (k, v) in &action.payload {
            p.insert(k.clone(), v.clone());
        }
        p
    }
}

/// A number in a reason code: integers bare, the rest with two decimals.
pub(crate) struct Num(pub(crate) f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        // Integer arithmetic: `{:.2}` on a float takes the slow exact-decimal path.
        let cents = (x * 100.0).round();
        if !cents.is_finite() || cents.abs() >= 1e15 {
            return write!(f, "{x:.2}");
        }
        let c = cents as i64;
        // Digits written backwards into a buffer and handed over once: `{}` and `{:02}` through
        // the formatter were most of a reason code's cost.
        let mut buf = [0u8; 24];
        let mut i = buf.len();
        let mut u = c.unsigned_abs();
        let frac = (u % 100) as u8;
        if frac != 0 {
            i -= 3;
            buf[i..].copy_from_slice(&[b'.', b'0' + frac / 10, b'0' + frac % 10]);
        }
        u /= 100;
        loop {
            i -= 1;
            buf[i] = b'0' + (u % 10) as u8;
            u /= 10;
            if u == 0 {
                break;
            }
        }
        if c < 0 {
            i -= 1;
            buf[i] = b'-';
        }
        // ASCII digits, a sign and a point: always UTF-8.
        f.write_str(std::str::from_utf8(&buf[i..]).unwrap_or_default())
    }
}

/// The reason codes of one action, in one string: no allocation per code, and the buffer is
/// reused from action to action.
#[derive(Debug, Default)]
pub(crate) struct Reasons {
    text: String,
    ends: Vec<usize>,
}

impl Reasons {
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    pub(crate) fn push(&mut self, code: fmt::Arguments<'_>) {
        match code.as_str() {
            Some(text) => self.text.push_str(text),
            None => {
                let _ = fmt::Write::write_fmt(&mut self.text, code);
            }
        }
        self.ends.push(self.text.len());
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let code = &self.text[start..end];
            start = end;
            code
        })
    }

    pub(crate) fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

/// Reason codes: the scores, features and rules behind the action.
pub(crate) fn reasons(action: &CompiledAction, s: &Subject<'_>, out: &mut Reasons) {
    let f = s.facts;
    let affinity = |out: &mut Reasons, c: usize| {
        out.push(format_args!(
            "affinity_{}={}",
            s.catalog.category_slugs[c],
            Num(s.categories().affinity(c))
        ));
    };
    let tier = |out: &mut Reasons| {
        if let Some(t) = f.tier {
            out.push(format_args!("tier={t}"));
        }
    };
    match action.kind {
        Kind::EarlyAccess | Kind::Discovery => {
            if let Some(c) = s.target_category(action) {
                affinity(out, c);
            }
        }
        Kind::InsiderPreview => {
            if let Some(c) = s.target_category(action) {
                affinity(out, c);
            }
            tier(out);
        }
        Kind::ProgressNudge => {
            out.push(format_args!("close_to_next_tier"));
            if let Some((_, to_go)) = f.next_tier {
                out.push(format_args!("to_next_tier={}", Num(round2(to_go))));
            }
        }
        Kind::SurpriseDelight => {
            out.push(format_args!("clv={}", Num(round2(f.clv))));
            if let Some(d) = f.days_since_purchase {
                out.push(format_args!("days_since_purchase={}", d.floor()));
            }
        }
        Kind::TierExperience => tier(out),
        Kind::CartReminder => {
            let refs = &s.catalog.features;
            for (name, i) in [("carts_30d", refs.carts_30d), ("views_30d", refs.views_30d)] {
                if let Some(v) = s.feature(i) {
                    out.push(format_args!("{name}={}", Num(v)));
                }
            }
        }
        Kind::PostPurchase => {
            if let Some(d) = f.days_since_purchase {
                out.push(format_args!("days_since_purchase={}", d.floor()));
            }
        }
        Kind::WinBack | Kind::PointsExpiry => {
            if action.kind == Kind::PointsExpiry {
                out.push(format_args!(
                    "points_balance={}",
                    Num(amount(s.customer.points_balance))
                ));
            }
            out.push(format_args!("churn_probability={}", Num(f.churn)));
            out.push(format_args!("p_alive={}", Num(f.p_alive)));
        }
        Kind::Birthday => out.push(format_args!("birth_month")),
        Kind::Gratitude => out.push(format_args!("signup_anniversary")),
        Kind::ServiceRecovery => {
            out.push(format_args!("recent_negative_moment"));
            if let Some(d) = f.days_since_negative {
                out.push(format_args!("days_since_negative={}", d.floor()));
            }
        }
        Kind::Custom => {
            if let Some(c) = action.category {
                affinity(out, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn anniversaries() {
        assert_eq!(anniversary(d("2020-06-10"), d("2025-06-12")), Some((5, 2)));
        assert_eq!(
            anniversary(d("2020-06-10"), d("2025-06-09")),
            Some((4, 364))
        );
        assert_eq!(anniversary(d("2025-06-10"), d("2025-06-09")), None);
        assert_eq!(anniversary(d("2020-02-29"), d("2025-02-28")), Some((5, 0)));
    }

    #[test]
    fn top_tiers_are_the_upper_half() {
        assert_eq!(top_tier_start(1), 0);
        assert_eq!(top_tier_start(2), 1);
        assert_eq!(top_tier_start(3), 2);
        assert_eq!(top_tier_start(4), 2);
    }

    #[test]
    fn numbers_in_reasons() {
        let num = |x: f64| Num(x).to_string();
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.41234), "0.41");
        assert_eq!(num(0.4), "0.40");
        assert_eq!(num(-2.5), "-2.50");
        assert_eq!(num(1200.0), "1200");
        assert_eq!(num(0.001), "0");
        assert_eq!(num(f64::NAN), "NaN");
        assert_eq!(num(f64::INFINITY), "inf");
        assert_eq!(num(-1e20), "-100000000000000000000.00");
        assert_eq!(num(-0.05), "-0.05");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(12.3), "12.30");
        assert_eq!(num(9.999), "10");
        // Against the plain formatting, over magnitudes up to the 1e15 cents cut-off.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> 11) as f64 / (1u64 << 53) as f64;
            let v = (v - 0.5) * 10f64.powi((x % 13) as i32);
            let c = (v * 100.0).round() as i64;
            let sign = if c < 0 { "-" } else { "" };
            let (whole, cents) = (c.unsigned_abs() / 100, c.unsigned_abs() % 100);
            let plain = if cents == 0 {
                format!("{sign}{whole}")
            } else {
                format!("{sign}{whole}.{cents:02}")
            };
            assert_eq!(num(v), plain, "{v}");
        }
    }
}
