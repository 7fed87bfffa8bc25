//! The generative process for one customer. Every number here is documented, with its
//! meaning, in docs/synthetic-data.md; change both together.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Gamma, Poisson, StandardNormal};

use super::catalog::{ACTIONS, CATEGORIES, CATEGORY_SHARES, Ch, TIMEZONES, Use, action_index};
use lattice_catalog::settings::Settings;

pub(crate) const SEC: i64 = 1_000_000;
pub(crate) const HOUR: i64 = 3600 * SEC;
pub(crate) const DAY: i64 = 24 * HOUR;
const YEAR: f64 = 365.25 * DAY as f64;

// --- Buy till you die (BG/NBD) ------------------------------------------------------------
/// λ ~ Gamma(shape R, rate ALPHA) purchases per year; mean R / ALPHA = 5.
pub const BGNBD_R: f64 = 0.9;
pub const BGNBD_ALPHA: f64 = 0.18;
/// p ~ Beta(A, B): probability of dropping out right after each repeat purchase.
pub const BGNBD_A: f64 = 1.0;
pub const BGNBD_B: f64 = 4.0;
/// A support ticket with sentiment below this makes an alive customer drop out with
/// probability SUPPORT_DROPOUT_PROB (on top of the BG/NBD dropout).
pub const SUPPORT_DROPOUT_SENTIMENT: f64 = -0.5;
pub const SUPPORT_DROPOUT_PROB: f64 = 0.15;

// --- Spend (Gamma-Gamma) --------------------------------------------------------------------
/// Order value z ~ Gamma(shape P, rate ν); ν ~ Gamma(shape Q, rate GAMMA); mean spend P / ν,
/// population mean P·GAMMA / (Q − 1) = 70.
pub const GG_P: f64 = 6.0;
pub const GG_Q: f64 = 4.0;
pub const GG_GAMMA: f64 = 35.0;

/// Dirichlet concentration: α_k = PREF_CONCENTRATION × CATEGORY_SHARES[k].
pub const PREF_CONCENTRATION: f64 = 0.3;

// --- Replenishment --------------------------------------------------------------------------
/// Categories bought again when they run out or are outgrown: (category, population cycle in
/// days, strength). An order line's category weight θ_k is multiplied by
/// `1 + strength · exp(−ln²(e / L) / (2 · REPLENISH_WIDTH²))`, `e` the time since the customer
/// last bought k and `L` their own cycle, so a category is up to `1 + strength` times as
/// likely when it is due and back to θ_k well before or well after.
pub const REPLENISHMENT: [(&str, f64, f64); 3] = [
    ("beauty", 45.0, 3.0),
    ("home", 90.0, 1.5),
    ("kids", 120.0, 1.5),
];
const REPLENISH_WIDTH: f64 = 0.35;
/// A customer's own cycle is the category's times LogNormal(0, this).
const REPLENISH_PERSONAL_SD: f64 = 0.25;

/// Share of lines returned.
const RETURN_PROB: f64 = 0.06;
/// Support tickets per year while alive, independent of orders.
const SUPPORT_RATE: f64 = 0.3;
/// Probability of a support ticket after a return.
const SUPPORT_AFTER_RETURN: f64 = 0.3;
const REVIEW_PROB: f64 = 0.05;
/// Background views per year while alive (times a per-customer Gamma(2, 0.5) factor).
const VIEW_RATE: f64 = 2.0;
/// Mean number of views in the days before an order.
const PRE_ORDER_VIEWS: f64 = 0.8;
const CART_BEFORE_LINE: f64 = 0.5;
const ABANDONED_CART: f64 = 0.12;
/// App opens per year while alive, times the engagement propensity (app users only).
const APP_OPEN_RATE: f64 = 4.0;
/// Share of repeat purchases and background views moved to a profile hour of their day.
const PROFILE_TIMED: f64 = 0.7;
/// Campaign calendar: gaps between campaign contacts, in days (uniform).
const CAMPAIGN_GAP_DAYS: (i64, i64) = (49, 77);
const UNSUBSCRIBE_PROB: f64 = 0.003;
/// Open (and click) probabilities are multiplied by this after dropout.
const DEAD_OPEN_FACTOR: f64 = 0.25;
const DEAD_CLICK_FACTOR: f64 = 0.3;
const WIN_BACK_AFTER_DAYS: i64 = 120;
const SERVICE_RECOVERY_PROB: f64 = 0.6;
const SERVICE_RECOVERY_SENTIMENT: f64 = -0.3;
/// Points deducted per redemption when computing points_balance.
const POINTS_PER_REDEMPTION: f64 = 50.0;

/// Event types, in the order of [`crate::schema::KNOWN_EVENT_TYPES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Purchase = 0,
    Return,
    View,
    Cart,
    EmailOpen,
    EmailClick,
    SmsClick,
    PushOpen,
    AppOpen,
    Support,
    Review,
    Contact,
    Redemption,
    Unsubscribe,
}

pub(crate) const N_KINDS: usize = 14;

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        crate::schema::KNOWN_EVENT_TYPES[self as usize]
    }
}

/// Event channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chan {
    Email,
    Sms,
    Push,
    Web,
    App,
    Store,
    Support,
}

impl Chan {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Chan::Email => "email",
            Chan::Sms => "sms",
            Chan::Push => "push",
            Chan::Web => "web",
            Chan::App => "app",
            Chan::Store => "store",
            Chan::Support => "support",
        }
    }
    fn of(c: Ch) -> Chan {
        match c {
            Ch::Email => Chan::Email,
            Ch::Sms => Chan::Sms,
            Ch::Push => Chan::Push,
        }
    }
}

/// One event, compact; strings are made when the batch is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ev {
    pub ts: i64,
    pub kind: Kind,
    pub channel: Option<Chan>,
    pub category: Option<u8>,
    pub amount: Option<f64>,
    pub quantity: Option<f64>,
    /// 1-based order number within the customer.
    pub order: Option<u32>,
    pub sentiment: Option<f64>,
    pub action: Option<u8>,
}

impl Ev {
    fn new(ts: i64, kind: Kind, channel: Chan) -> Ev {
        Ev {
            ts,
            kind,
            channel: Some(channel),
            category: None,
            amount: None,
            quantity: None,
            order: None,
            sentiment: None,
            action: None,
        }
    }
    fn cat(mut self, k: usize) -> Ev {
        self.category = Some(k as u8);
        self
    }
    fn act(mut self, a: usize) -> Ev {
        self.action = Some(a as u8);
        self.category = ACTIONS[a].category.map(|k| k as u8);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Purchase,
    Support,
}

impl Cause {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cause::Purchase => "after_purchase",
            Cause::Support => "support_ticket",
        }
    }
}

/// Everything known about one simulated customer: attributes, truth and final state.
pub(crate) struct Customer {
    pub id: String,
    pub tz: Tz,
    pub tz_name: &'static str,
    pub signup: i64,
    pub birth_date: NaiveDate,
    /// Consent given at signup, by [`Ch`].
    pub consent: [bool; 3],
    pub app_user: bool,
    pub engagement: f64,
    pub lambda: f64,
    pub p: f64,
    pub mean_spend: f64,
    pub theta: [f64; 8],
    theta_cdf: [f64; 8],
    /// The customer's replenishment cycle per category in µs (0: not replenished) and its
    /// strength (see [`REPLENISHMENT`]).
    cycle: [(f64, f64); 8],
    pub profile: [f64; 168],
    profile_cdf: [f64; 168],
    browse: f64,
    // Outcomes.
    pub first_purchase: i64,
    pub dropout: Option<(i64, Cause)>,
    pub unsubscribed: [bool; 3],
    pub tier: &'static str,
    pub points: f64,
    pub orders: u64,
    pub revenue: f64,
}

impl Customer {
    pub(crate) fn final_consent(&self, c: usize) -> bool {
        self.consent[c] && !self.unsubscribed[c]
    }
    /// Slots of the hour-of-week profile, best first (ties: lower slot first).
    pub(crate) fn top_slots(&self, n: usize) -> Vec<i32> {
        let mut idx: Vec<usize> = (0..168).collect();
        idx.sort_by(|&a, &b| self.profile[b].total_cmp(&self.profile[a]).then(a.cmp(&b)));
        idx.truncate(n);
        idx.into_iter().map(|i| i as i32).collect()
    }
    pub(crate) fn best_hour_of_day(&self) -> i32 {
        let mut by_hour = [0.0f64; 24];
        for (s, w) in self.profile.iter().enumerate() {
            by_hour[s % 24] += w;
        }
        let mut best = 0;
        for h in 1..24 {
            if by_hour[h] > by_hour[best] {
                best = h;
            }
        }
        best as i32
    }
    pub(crate) fn top_category(&self) -> usize {
        let mut best = 0;
        for k in 1..8 {
            if self.theta[k] > self.theta[best] {
                best = k;
            }
        }
        best
    }
    fn pick_category(&self, r: &mut ChaCha8Rng) -> usize {
        pick(&self.theta_cdf, r.r#gen())
    }
    /// An order line's category at `t`: θ re-weighted by how due each replenished category is,
    /// `last[k]` the customer's last purchase in k before this order.
    fn line_category(&self, r: &mut ChaCha8Rng, t: i64, last: &[Option<i64>; 8]) -> usize {
        let mut w = self.theta;
        for (k, wk) in w.iter_mut().enumerate() {
            let (cycle, strength) = self.cycle[k];
            if let (Some(l), true) = (last[k], cycle > 0.0) {
                let x = ((t - l).max(SEC) as f64 / cycle).ln();
                *wk *= 1.0 + strength * (-x * x / (2.0 * REPLENISH_WIDTH * REPLENISH_WIDTH)).exp();
            }
        }
        let total: f64 = w.iter().sum();
        let mut u = r.r#gen::<f64>() * total;
        for (k, wk) in w.iter().enumerate() {
            if u < *wk {
                return k;
            }
            u -= wk;
        }
        w.iter().rposition(|&x| x > 0.0).unwrap_or(0)
    }
    /// The channel views and carts come from.
    fn digital(&self, r: &mut ChaCha8Rng) -> Chan {
        if self.app_user && r.r#gen::<f64>() < 0.6 {
            Chan::App
        } else {
            Chan::Web
        }
    }
}

/// Index of the first cumulative weight above `u` (`cdf` ends at 1).
fn pick(cdf: &[f64], u: f64) -> usize {
    cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
}

fn cumulative<const N: usize>(w: &[f64; N]) -> [f64; N] {
    let total: f64 = w.iter().sum();
    let mut cdf = [0.0; N];
    let mut acc = 0.0;
    for (c, x) in cdf.iter_mut().zip(w) {
        acc += x / total;
        *c = acc;
    }
    cdf[N - 1] = 1.0;
    cdf
}

fn exp1(r: &mut ChaCha8Rng) -> f64 {
    -(1.0 - r.r#gen::<f64>()).ln()
}

fn normal(r: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    let z: f64 = StandardNormal.sample(r);
    mean + sd * z
}

fn poisson(r: &mut ChaCha8Rng, mean: f64) -> u64 {
    match Poisson::new(mean) {
        Ok(d) => d.sample(r) as u64,
        Err(_) => 0, // mean <= 0 (or not finite): no events
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn sentiment(r: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    round2(normal(r, mean, sd).clamp(-1.0, 1.0))
}

/// A time `lo + U[0, span)` truncated to whole seconds.
fn uniform_ts(r: &mut ChaCha8Rng, lo: i64, span: i64) -> i64 {
    let secs = (span / SEC).max(1);
    lo + r.gen_range(0..secs) * SEC
}

fn secs(r: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
    r.gen_range(lo..=hi) * SEC
}

fn local_of(tz: Tz, ts: i64) -> NaiveDateTime {
    let utc = DateTime::<Utc>::from_timestamp_micros(ts)
        .expect("generated timestamps lie between the start and end dates");
    tz.from_utc_datetime(&utc.naive_utc()).naive_local()
}

/// Local wall time to UTC µs; a wall time skipped by a DST jump moves one hour later.
fn utc_of(tz: Tz, local: NaiveDateTime) -> i64 {
    let t = tz.from_local_datetime(&local).earliest().or_else(|| {
        tz.from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
    });
    match t {
        Some(t) => t.timestamp() * SEC,
        // Unreachable for real zones; fall back to reading the wall time as UTC.
        None => local.and_utc().timestamp() * SEC,
    }
}

/// The population distributions and the observation window, shared by all workers.
pub(crate) struct World {
    pub seed: u64,
    pub width: usize,
    pub start: i64,
    /// Last instant written (end date 23:59:59 UTC).
    pub end: i64,
    signup_hi: i64,
    tz_list: Vec<(Tz, &'static str)>,
    tz_cdf: [f64; TIMEZONES.len()],
    lambda: Gamma<f64>,
    dropout: Beta<f64>,
    nu: Gamma<f64>,
    order_shape: Gamma<f64>,
    engagement: Beta<f64>,
    age: Beta<f64>,
    browse: Gamma<f64>,
    pref: [Gamma<f64>; 8],
    /// Per category: population replenishment cycle in days (0: none) and strength.
    replenish: [(f64, f64); 8],
    campaign_cdf: Vec<f64>,
    campaign_ids: Vec<usize>,
    settings: Settings,
}

impl World {
    pub(crate) fn new(
        seed: u64,
        customers: u64,
        start: NaiveDate,
        end: NaiveDate,
        settings: Settings,
    ) -> World {
        let day0 = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map_or(0, |t| t.and_utc().timestamp() * SEC)
        };
        let start_us = day0(start);
        let end_us = day0(end) + DAY - SEC;
        let signup_hi = day0(end) - 30 * DAY;
        let tz_list = TIMEZONES
            .iter()
            .map(|(name, _)| (name.parse::<Tz>().expect("TIMEZONES are IANA names"), *name))
            .collect();
        let mut tzw = [0.0; TIMEZONES.len()];
        for (w, (_, p)) in tzw.iter_mut().zip(TIMEZONES.iter()) {
            *w = *p;
        }
        let campaign_ids: Vec<usize> = (0..ACTIONS.len())
            .filter(|&i| ACTIONS[i].use_ == Use::Campaign)
            .collect();
        let mut acc = 0.0;
        let total: f64 = campaign_ids
            .iter()
            .map(|&i| ACTIONS[i].campaign_weight)
            .sum();
        let mut campaign_cdf: Vec<f64> = campaign_ids
            .iter()
            .map(|&i| {
                acc += ACTIONS[i].campaign_weight / total;
                acc
            })
            .collect();
        if let Some(last) = campaign_cdf.last_mut() {
            *last = 1.0;
        }
        let g = |shape: f64, scale: f64| Gamma::new(shape, scale).expect("positive parameters");
        let pref = std::array::from_fn(|k| g(PREF_CONCENTRATION * CATEGORY_SHARES[k] + 1.0, 1.0));
        let mut replenish = [(0.0, 0.0); 8];
        for (name, days, strength) in REPLENISHMENT {
            let k = CATEGORIES
                .iter()
                .position(|&c| c == name)
                .expect("REPLENISHMENT names categories");
            replenish[k] = (days, strength);
        }
        World {
            seed,
            replenish,
            width: customers.to_string().len(),
            start: start_us,
            end: end_us,
            signup_hi,
            tz_list,
            tz_cdf: cumulative(&tzw),
            lambda: g(BGNBD_R, 1.0 / BGNBD_ALPHA),
            dropout: Beta::new(BGNBD_A, BGNBD_B).expect("positive parameters"),
            nu: g(GG_Q, 1.0 / GG_GAMMA),
            order_shape: g(GG_P, 1.0),
            engagement: Beta::new(2.0, 4.0).expect("positive parameters"),
            age: Beta::new(2.0, 3.0).expect("positive parameters"),
            browse: g(2.0, 0.5),
            pref,
            campaign_cdf,
            campaign_ids,
            settings,
        }
    }

    /// The customer's random stream `stream`; independent streams keep one process's draws
    /// from shifting another's.
    fn rng(&self, idx: u64, stream: u64) -> ChaCha8Rng {
        let mut r = ChaCha8Rng::seed_from_u64(splitmix(self.seed ^ splitmix(idx)));
        r.set_stream(stream);
        r
    }

    /// Simulates customer `idx` (0-based); its events go to `ev`, sorted by time.
    pub(crate) fn simulate(&self, idx: u64, ev: &mut Vec<Ev>) -> Customer {
        ev.clear();
        let mut c = self.attributes(idx);
        let mut r = self.rng(idx, 1);
        let mut purchases = Vec::new();
        let mut tickets = Vec::new();
        self.purchases(&mut c, &mut r, ev, &mut purchases, &mut tickets);
        let mut r = self.rng(idx, 2);
        self.browsing(&c, &mut r, ev);
        let mut r = self.rng(idx, 3);
        self.contacts(&mut c, &mut r, ev, &purchases, &tickets);

        let (lo, hi) = (c.signup, self.end);
        ev.retain(|e| e.ts >= lo && e.ts <= hi);
        ev.sort_by_key(|e| e.ts);
        self.loyalty(&mut c, ev);
        c
    }

    fn attributes(&self, idx: u64) -> Customer {
        let mut r = self.rng(idx, 0);
        let (tz, tz_name) = self.tz_list[pick(&self.tz_cdf, r.r#gen())];
        let profile = make_profile(&mut r);
        // Signup on a uniform day, at an hour drawn from the profile (kept in the window).
        let day = uniform_ts(&mut r, self.start, self.signup_hi - self.start);
        let signup = profile_time_on(&profile, tz, &mut r, local_of(tz, day).date());
        let signup = if (self.start..=self.signup_hi).contains(&signup) {
            signup
        } else {
            day
        };
        let age_years = 18.0 + 57.0 * self.age.sample(&mut r);
        let signup_date = local_of(Tz::UTC, signup).date();
        let birth_date = signup_date - Duration::days((age_years * 365.25) as i64);
        let consent = [r.r#gen::<f64>() < 0.80, r.r#gen::<f64>() < 0.35, false];
        let app_user = r.r#gen::<f64>() < 0.55;
        // Push needs the app: 0.55 × 0.82 ≈ 45% of customers consent to push.
        let consent = [consent[0], consent[1], app_user && r.r#gen::<f64>() < 0.82];
        let engagement = self.engagement.sample(&mut r);
        let lambda = self.lambda.sample(&mut r).max(1e-6);
        let p = self.dropout.sample(&mut r);
        let nu = self.nu.sample(&mut r).max(1e-9);
        let mean_spend = GG_P / nu;
        let theta = self.dirichlet(&mut r);
        let browse = self.browse.sample(&mut r);
        // Drawn last, so the draws above are those of a world without replenishment.
        let mut cycle = [(0.0, 0.0); 8];
        for (k, &(days, strength)) in self.replenish.iter().enumerate() {
            if days > 0.0 {
                let personal = (REPLENISH_PERSONAL_SD * normal(&mut r, 0.0, 1.0)).exp();
                cycle[k] = (days * DAY as f64 * personal, strength);
            }
        }
        Customer {
            id: format!("c{:0w$}", idx + 1, w = self.width),
            tz,
            tz_name,
            signup,
            birth_date,
            consent,
            app_user,
            engagement,
            lambda,
            p,
            mean_spend,
            theta,
            theta_cdf: cumulative(&theta),
            cycle,
            profile,
            profile_cdf: cumulative(&profile),
            browse,
            first_purchase: signup,
            dropout: None,
            unsubscribed: [false; 3],
            tier: "",
            points: 0.0,
            orders: 0,
            revenue: 0.0,
        }
    }

    /// Dirichlet(α) with tiny α: G_k = Gamma(α_k + 1) · U^(1/α_k), normalised in log space
    /// (the direct Gamma(α_k) draws underflow to zero).
    fn dirichlet(&self, r: &mut ChaCha8Rng) -> [f64; 8] {
        let mut logs = [0.0f64; 8];
        for (k, l) in logs.iter_mut().enumerate() {
            let g: f64 = self.pref[k].sample(r);
            let u = 1.0 - r.r#gen::<f64>();
            *l = g.ln() + u.ln() / (PREF_CONCENTRATION * CATEGORY_SHARES[k]);
        }
        let m = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut theta = logs.map(|l| (l - m).exp());
        let total: f64 = theta.iter().sum();
        for t in &mut theta {
            *t /= total;
        }
        theta
    }

    /// BG/NBD purchases with Gamma-Gamma order values, their returns, reviews and support
    /// tickets; decides the dropout.
    fn purchases(
        &self,
        c: &mut Customer,
        r: &mut ChaCha8Rng,
        ev: &mut Vec<Ev>,
        times: &mut Vec<i64>,
        tickets: &mut Vec<(i64, f64)>,
    ) {
        // First purchase in the signup session (70%) or within days, at a profile hour;
        // capped at ~22 days so every customer buys before the end.
        let mut t = if r.r#gen::<f64>() < 0.7 {
            c.signup + secs(r, 60, 1800)
        } else {
            let later = ((exp1(r) * 5.0 * DAY as f64) as i64).min(20 * DAY) / SEC * SEC;
            retime_forward(c, r, c.signup + later + 60 * SEC)
        };
        c.first_purchase = t;
        // Tickets not yet weighed for support-driven dropout.
        let mut pending: Vec<(i64, f64)> = Vec::new();
        // The last purchase per category, for replenishment.
        let mut last = [None; 8];
        let mut k = 0u32;
        loop {
            self.order(c, r, t, k + 1, ev, &mut pending, &mut last);
            times.push(t);
            // BG/NBD: dropout can follow any repeat purchase, never the first.
            if k > 0 && r.r#gen::<f64>() < c.p {
                c.dropout = Some((t, Cause::Purchase));
                break;
            }
            let gap = exp1(r) * YEAR / c.lambda;
            let raw = if gap < (self.end - t) as f64 {
                t + (gap as i64 / SEC).max(1) * SEC
            } else {
                i64::MAX
            };
            let next = if raw <= self.end {
                let moved = if r.r#gen::<f64>() < PROFILE_TIMED {
                    retime_forward(c, r, raw)
                } else {
                    raw
                };
                if moved <= self.end { moved } else { raw }
            } else {
                self.end
            };
            // Background tickets while alive, then weigh every ticket up to `next`.
            let n = poisson(r, SUPPORT_RATE * (next - t) as f64 / YEAR);
            for _ in 0..n {
                let ts = uniform_ts(r, t + SEC, next - t);
                let s = sentiment(r, -0.1, 0.45);
                ev.push(Ev {
                    sentiment: Some(s),
                    ..Ev::new(ts, Kind::Support, Chan::Support)
                });
                pending.push((ts, s));
            }
            pending.sort_by_key(|x| x.0);
            let due = pending.partition_point(|x| x.0 <= next);
            for &(ts, s) in &pending[..due] {
                if c.dropout.is_none()
                    && ts > t
                    && s < SUPPORT_DROPOUT_SENTIMENT
                    && r.r#gen::<f64>() < SUPPORT_DROPOUT_PROB
                {
                    c.dropout = Some((ts, Cause::Support));
                }
            }
            tickets.extend_from_slice(&pending[..due]);
            pending.drain(..due);
            if c.dropout.is_some() || raw > self.end {
                break;
            }
            t = next;
            k += 1;
        }
        tickets.extend_from_slice(&pending);
        c.orders = u64::from(k) + 1;
    }

    /// One order at `t`: 1–3 lines summing to a Gamma-Gamma order value, carts and views
    /// before it, returns (with follow-up tickets) and a review after it. `last`: the last
    /// purchase per category before this order, updated with this one's lines.
    #[allow(clippy::too_many_arguments)]
    fn order(
        &self,
        c: &Customer,
        r: &mut ChaCha8Rng,
        t: i64,
        order: u32,
        ev: &mut Vec<Ev>,
        tickets: &mut Vec<(i64, f64)>,
        last: &mut [Option<i64>; 8],
    ) {
        let before = *last;
        let z: f64 = self.order_shape.sample(r) * c.mean_spend / GG_P;
        let value = round2(z.max(1.0));
        let u: f64 = r.r#gen();
        let lines = if u < 0.5 {
            1
        } else if u < 0.8 {
            2
        } else {
            3
        };
        let mut shares = [0.0f64; 3];
        for s in shares.iter_mut().take(lines) {
            *s = 1.0 + r.r#gen::<f64>();
        }
        let total_share: f64 = shares.iter().sum();
        // Stores open 09:00-20:59 local.
        let store_open = (9..21).contains(&local_of(c.tz, t).hour());
        let channel = if store_open && r.r#gen::<f64>() < 0.35 {
            Chan::Store
        } else {
            c.digital(r)
        };
        let mut left = value;
        let mut returned = false;
        let mut first_cat = 0;
        for (i, share) in shares.iter().take(lines).enumerate() {
            let amount = if i + 1 == lines {
                round2(left)
            } else {
                round2(value * share / total_share)
            };
            left -= amount;
            let cat = c.line_category(r, t, &before);
            last[cat] = Some(t);
            if i == 0 {
                first_cat = cat;
            }
            let q = r.r#gen::<f64>();
            let qty: u32 = if q < 0.75 {
                1
            } else if q < 0.95 {
                2
            } else {
                3
            };
            ev.push(Ev {
                amount: Some(amount),
                quantity: Some(f64::from(qty)),
                order: Some(order),
                ..Ev::new(t, Kind::Purchase, channel).cat(cat)
            });
            if channel != Chan::Store && r.r#gen::<f64>() < CART_BEFORE_LINE {
                ev.push(Ev::new(t - secs(r, 60, 1200), Kind::Cart, channel).cat(cat));
            }
            if r.r#gen::<f64>() < RETURN_PROB {
                returned = true;
                let back = r.gen_range(1..=qty);
                let rts = t + secs(r, 2 * 86400, 21 * 86400);
                ev.push(Ev {
                    amount: Some(round2(amount * f64::from(back) / f64::from(qty))),
                    quantity: Some(f64::from(back)),
                    order: Some(order),
                    ..Ev::new(rts, Kind::Return, channel).cat(cat)
                });
                if r.r#gen::<f64>() < SUPPORT_AFTER_RETURN {
                    let ts = rts + secs(r, 600, 3 * 86400);
                    let s = sentiment(r, -0.4, 0.4);
                    ev.push(Ev {
                        sentiment: Some(s),
                        order: Some(order),
                        ..Ev::new(ts, Kind::Support, Chan::Support).cat(cat)
                    });
                    tickets.push((ts, s));
                }
            }
        }
        for _ in 0..poisson(r, PRE_ORDER_VIEWS) {
            let cat = if r.r#gen::<f64>() < 0.7 {
                first_cat
            } else {
                c.pick_category(r)
            };
            let before = (exp1(r) * 1.5 * DAY as f64) as i64 / SEC * SEC + 120 * SEC;
            let ch = c.digital(r);
            ev.push(Ev::new(t - before, Kind::View, ch).cat(cat));
        }
        if r.r#gen::<f64>() < REVIEW_PROB {
            let ts = t + secs(r, 5 * 86400, 30 * 86400);
            let s = if returned {
                sentiment(r, -0.3, 0.5)
            } else {
                sentiment(r, 0.5, 0.35)
            };
            let ch = c.digital(r);
            ev.push(Ev {
                sentiment: Some(s),
                order: Some(order),
                ..Ev::new(ts, Kind::Review, ch).cat(first_cat)
            });
        }
    }

    /// Background views (some with abandoned carts) and app opens while alive.
    fn browsing(&self, c: &Customer, r: &mut ChaCha8Rng, ev: &mut Vec<Ev>) {
        let alive_until = c.dropout.map_or(self.end, |d| d.0);
        let span = alive_until - c.signup;
        if span <= 0 {
            return;
        }
        for _ in 0..poisson(r, VIEW_RATE * c.browse * span as f64 / YEAR) {
            let mut ts = uniform_ts(r, c.signup, span);
            if r.r#gen::<f64>() < PROFILE_TIMED {
                let day = local_of(c.tz, ts).date();
                let moved = profile_time_on_day(c, r, day);
                if moved >= c.signup && moved <= alive_until {
                    ts = moved;
                }
            }
            let cat = c.pick_category(r);
            let ch = c.digital(r);
            ev.push(Ev::new(ts, Kind::View, ch).cat(cat));
            if r.r#gen::<f64>() < ABANDONED_CART {
                ev.push(Ev::new(ts + secs(r, 60, 600), Kind::Cart, ch).cat(cat));
            }
        }
        if c.app_user {
            for _ in 0..poisson(r, APP_OPEN_RATE * c.engagement * span as f64 / YEAR) {
                let ts = uniform_ts(r, c.signup, span);
                let day = local_of(c.tz, ts).date();
                let ts = profile_time_on_day(c, r, day);
                if ts < alive_until {
                    ev.push(Ev::new(ts, Kind::AppOpen, Chan::App));
                }
            }
        }
    }

    /// The retailer's contacts and the customer's responses.
    fn contacts(
        &self,
        c: &mut Customer,
        r: &mut ChaCha8Rng,
        ev: &mut Vec<Ev>,
        purchases: &[i64],
        tickets: &[(i64, f64)],
    ) {
        let mut intents: Vec<(i64, usize)> = Vec::new();
        // Campaign calendar: every 7–11 weeks from signup, at a random daytime local hour,
        // with the action drawn independently of the customer (no targeting).
        let mut clock = c.signup + secs(r, 86400, 14 * 86400);
        while clock <= self.end {
            let ts = self.send_time(c, r, local_of(c.tz, clock).date());
            let a = self.campaign_ids[pick(&self.campaign_cdf, r.r#gen())];
            intents.push((ts, a));
            clock += r.gen_range(CAMPAIGN_GAP_DAYS.0..=CAMPAIGN_GAP_DAYS.1) * DAY;
        }
        if let Some(a) = action_index(Use::Birthday) {
            let first = local_of(c.tz, c.signup).date().year();
            let last = local_of(c.tz, self.end).date().year();
            for y in first..=last {
                let bd = c.birth_date;
                let day = NaiveDate::from_ymd_opt(y, bd.month(), bd.day())
                    .or_else(|| NaiveDate::from_ymd_opt(y, 2, 28));
                if let Some(day) = day {
                    intents.push((self.send_time(c, r, day), a));
                }
            }
        }
        if let Some(a) = action_index(Use::ServiceRecovery) {
            for &(ts, s) in tickets {
                if s < SERVICE_RECOVERY_SENTIMENT && r.r#gen::<f64>() < SERVICE_RECOVERY_PROB {
                    intents.push((ts + secs(r, 3600, 86400), a));
                }
            }
        }
        if let Some(a) = action_index(Use::WinBack) {
            let wait = WIN_BACK_AFTER_DAYS * DAY;
            for (i, &t) in purchases.iter().enumerate() {
                let next = purchases.get(i + 1).copied().unwrap_or(i64::MAX);
                if next - t > wait {
                    intents.push((t + wait + secs(r, 0, 3 * 86400), a));
                }
            }
        }
        intents.sort_by_key(|x| x.0);

        let dropout = c.dropout.map_or(i64::MAX, |d| d.0);
        let mut unsub_at: [Option<i64>; 3] = [None; 3];
        for (send, a) in intents {
            if send <= c.signup || send > self.end {
                continue;
            }
            let action = &ACTIONS[a];
            // Weighted channel choice among consented, still-subscribed channels.
            let mut options = [(Ch::Email, 0.0); 3];
            let mut total = 0.0;
            for (o, &ch) in options.iter_mut().zip(action.channels) {
                let i = ch as usize;
                let ok = c.consent[i] && unsub_at[i].is_none_or(|u| send < u);
                let w = if ok { [3.0, 1.0, 2.0][i] } else { 0.0 };
                total += w;
                *o = (ch, total);
            }
            if total == 0.0 {
                continue;
            }
            let u = r.r#gen::<f64>() * total;
            let ch = options
                .iter()
                .take(action.channels.len())
                .find(|o| u < o.1)
                .map_or(action.channels[0], |o| o.0);
            let chan = Chan::of(ch);
            ev.push(Ev::new(send, Kind::Contact, chan).act(a));

            let alive = send < dropout;
            let aff = action.category.map(|k| c.theta[k]);
            let open_p = c.engagement * if alive { 1.0 } else { DEAD_OPEN_FACTOR };
            let click_p =
                aff.map_or(0.12, |t| 0.08 + 0.5 * t) * if alive { 1.0 } else { DEAD_CLICK_FACTOR };
            let mut opened = None;
            let mut clicked = None;
            match ch {
                Ch::Email => {
                    if r.r#gen::<f64>() < open_p {
                        let ts = next_profile_time(c, r, send);
                        ev.push(Ev::new(ts, Kind::EmailOpen, chan).act(a));
                        opened = Some(ts);
                        if r.r#gen::<f64>() < click_p {
                            let ts = ts + secs(r, 5, 180);
                            ev.push(Ev::new(ts, Kind::EmailClick, chan).act(a));
                            clicked = Some(ts);
                        }
                    }
                }
                Ch::Push => {
                    if r.r#gen::<f64>() < 0.8 * open_p {
                        let ts = next_profile_time(c, r, send);
                        ev.push(Ev::new(ts, Kind::PushOpen, chan).act(a));
                        opened = Some(ts);
                        clicked = Some(ts);
                    }
                }
                Ch::Sms => {
                    if r.r#gen::<f64>() < (1.5 * open_p * click_p).min(1.0) {
                        let ts = next_profile_time(c, r, send);
                        ev.push(Ev::new(ts, Kind::SmsClick, chan).act(a));
                        opened = Some(ts);
                        clicked = Some(ts);
                    }
                }
            }
            if let Some(ts) = clicked.filter(|&ts| alive && ts < dropout)
                && r.r#gen::<f64>() < 0.5
            {
                let cat = action.category.unwrap_or_else(|| c.pick_category(r));
                let vch = if ch == Ch::Push { Chan::App } else { Chan::Web };
                ev.push(Ev::new(ts + secs(r, 20, 120), Kind::View, vch).cat(cat));
            }
            if alive && r.r#gen::<f64>() < redeem_prob(action.redeem_base, aff, c.engagement) {
                let ts = match clicked {
                    Some(t) => t + secs(r, 60, 3600),
                    None => send + ((exp1(r) * 2.0 * DAY as f64) as i64).min(14 * DAY) / SEC * SEC,
                };
                if ts < dropout {
                    ev.push(Ev::new(ts.max(send + 60 * SEC), Kind::Redemption, chan).act(a));
                }
            }
            if r.r#gen::<f64>() < UNSUBSCRIBE_PROB {
                let ts = opened.unwrap_or_else(|| send + secs(r, 60, 2 * 86400));
                if ts <= self.end {
                    ev.push(Ev::new(ts, Kind::Unsubscribe, chan).act(a));
                    unsub_at[ch as usize] = Some(ts);
                }
            }
        }
        for (i, u) in unsub_at.iter().enumerate() {
            c.unsubscribed[i] = u.is_some();
        }
    }

    /// The retailer's send time: a uniformly random minute between 08:00 and 20:59 local.
    fn send_time(&self, c: &Customer, r: &mut ChaCha8Rng, day: NaiveDate) -> i64 {
        let local = day.and_hms_opt(r.gen_range(8..=20), r.gen_range(0..60), r.gen_range(0..60));
        local.map_or(self.end + 1, |l| utc_of(c.tz, l))
    }

    /// Tier and points at the end, from the trailing 365 days of (written) events.
    fn loyalty(&self, c: &mut Customer, ev: &[Ev]) {
        let since = self.end - 365 * DAY;
        let (mut spend, mut redemptions, mut revenue) = (0.0, 0.0, 0.0);
        for e in ev {
            match e.kind {
                Kind::Purchase => {
                    let a = e.amount.unwrap_or(0.0);
                    revenue += a;
                    if e.ts > since {
                        spend += a;
                    }
                }
                Kind::Return if e.ts > since => spend -= e.amount.unwrap_or(0.0),
                Kind::Redemption if e.ts > since => redemptions += 1.0,
                _ => {}
            }
        }
        let spend = spend.max(0.0);
        c.revenue = revenue;
        c.tier = self
            .settings
            .tier_for(spend)
            .0
            .and_then(|t| super::catalog::TIERS.iter().find(|x| x.0 == t.name))
            .map_or("bronze", |t| t.0);
        c.points = (spend.floor() - POINTS_PER_REDEMPTION * redemptions).max(0.0);
    }
}

/// Redemption probability of an alive customer for one contact (see docs).
pub(crate) fn redeem_prob(base: f64, affinity: Option<f64>, engagement: f64) -> f64 {
    let b = affinity.map_or(base, |t| 0.01 + 0.40 * t * t);
    (b * (0.5 + 1.5 * engagement)).min(0.9)
}

/// SplitMix64 finaliser: decorrelates consecutive customer indices and seeds.
pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The hour-of-week engagement profile (168 local slots, 0 = Monday 00:00): one or two
/// peaks (hour of day ± ~1.5 h, weekday/weekend/all-week weighting with per-day jitter),
/// mixed 90/10 with a uniform floor.
fn make_profile(r: &mut ChaCha8Rng) -> [f64; 168] {
    const CENTERS: [(f64, f64); 5] = [
        (7.5, 0.2),
        (12.5, 0.2),
        (19.5, 0.35),
        (22.0, 0.1),
        (-1.0, 0.15),
    ];
    let peaks = if r.r#gen::<f64>() < 0.6 { 1 } else { 2 };
    let mut w = [0.0f64; 168];
    for p in 0..peaks {
        let amp = if p == 0 { 1.0 } else { r.gen_range(0.35..0.8) };
        let u: f64 = r.r#gen();
        let mut acc = 0.0;
        let mut center = CENTERS[0].0;
        for &(c, pr) in &CENTERS {
            acc += pr;
            center = c;
            if u < acc {
                break;
            }
        }
        if center < 0.0 {
            center = r.gen_range(8.0..22.0);
        }
        let center = normal(r, center, 0.75).rem_euclid(24.0);
        let sigma = r.gen_range(1.0..2.0);
        let kind: f64 = r.r#gen();
        let (weekday, weekend) = if kind < 0.4 {
            (1.0, 0.25)
        } else if kind < 0.6 {
            (0.3, 1.0)
        } else {
            (1.0, 1.0)
        };
        for d in 0..7 {
            let base = if d < 5 { weekday } else { weekend };
            let day_w = base * normal(r, 0.0, 0.2).exp();
            for h in 0..24 {
                let mut dist = (h as f64 + 0.5 - center).abs();
                if dist > 12.0 {
                    dist = 24.0 - dist;
                }
                w[d * 24 + h] += amp * day_w * (-0.5 * (dist / sigma).powi(2)).exp();
            }
        }
    }
    let total: f64 = w.iter().sum();
    w.map(|x| 0.9 * x / total + 0.1 / 168.0)
}

/// A time on local `day` at an hour drawn from that weekday's profile row.
fn profile_time_on_day(c: &Customer, r: &mut ChaCha8Rng, day: NaiveDate) -> i64 {
    profile_time_on(&c.profile, c.tz, r, day)
}

fn profile_time_on(profile: &[f64; 168], tz: Tz, r: &mut ChaCha8Rng, day: NaiveDate) -> i64 {
    let row = &profile[day.weekday().num_days_from_monday() as usize * 24..][..24];
    let total: f64 = row.iter().sum();
    let u = r.r#gen::<f64>() * total;
    let mut acc = 0.0;
    let mut hour = 23;
    for (h, w) in row.iter().enumerate() {
        acc += w;
        if u < acc {
            hour = h as u32;
            break;
        }
    }
    let local = day.and_hms_opt(hour, r.gen_range(0..60), r.gen_range(0..60));
    local.map_or(0, |l| utc_of(tz, l))
}

/// The first profile-drawn time on or after `raw` (same local day if possible, else the next).
fn retime_forward(c: &Customer, r: &mut ChaCha8Rng, raw: i64) -> i64 {
    let day = local_of(c.tz, raw).date();
    let ts = profile_time_on_day(c, r, day);
    if ts >= raw {
        return ts;
    }
    let next = day.succ_opt().map_or(raw, |d| profile_time_on_day(c, r, d));
    next.max(raw)
}

/// A response time: the next occurrence (within 7 days) of a slot drawn from the profile.
fn next_profile_time(c: &Customer, r: &mut ChaCha8Rng, after: i64) -> i64 {
    let slot = pick(&c.profile_cdf, r.r#gen()) as i64;
    let local = local_of(c.tz, after);
    let monday = local.date() - Duration::days(i64::from(local.weekday().num_days_from_monday()));
    let mut cand = monday.and_time(chrono::NaiveTime::MIN)
        + Duration::hours(slot)
        + Duration::seconds(r.gen_range(0..3600));
    if cand <= local {
        cand += Duration::days(7);
    }
    utc_of(c.tz, cand).max(after + 60 * SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_world() -> World {
        World::new(
            7,
            10,
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2025, 6, 30).unwrap(),
            Settings::default(),
        )
    }

    #[test]
    fn profile_is_a_distribution() {
        let mut r = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let p = make_profile(&mut r);
            let s: f64 = p.iter().sum();
            assert!((s - 1.0).abs() < 1e-9);
            assert!(p.iter().all(|&x| x >= 0.1 / 168.0 - 1e-12));
        }
    }

    #[test]
    fn next_profile_time_is_after_and_within_a_week() {
        let w = small_world();
        let c = w.attributes(3);
        let mut r = ChaCha8Rng::seed_from_u64(2);
        for i in 0..1000 {
            let after = w.start + i * 7 * HOUR;
            let t = next_profile_time(&c, &mut r, after);
            assert!(t > after && t <= after + 7 * DAY + 2 * HOUR, "{after} {t}");
            let l = local_of(c.tz, t);
            assert!(l.hour() < 24);
        }
    }

    #[test]
    fn a_replenished_category_is_likelier_when_due() {
        let w = small_world();
        let mut c = w.attributes(3);
        c.theta = [0.125; 8];
        let beauty = CATEGORIES.iter().position(|&n| n == "beauty").unwrap();
        let cycle = c.cycle[beauty].0;
        let days = cycle / DAY as f64;
        // Personal cycles scatter around the category's 45 days.
        assert!((20.0..100.0).contains(&days), "{days}");
        assert_eq!(c.cycle[0], (0.0, 0.0), "outerwear is not replenished");
        let mut r = ChaCha8Rng::seed_from_u64(5);
        let t = w.end;
        let share = |r: &mut ChaCha8Rng, ago: Option<f64>| {
            let mut last = [None; 8];
            last[beauty] = ago.map(|x| t - (x * cycle) as i64);
            let n = 20_000;
            let hits = (0..n)
                .filter(|_| c.line_category(r, t, &last) == beauty)
                .count();
            hits as f64 / n as f64
        };
        // Due: weight 1 + 3 = 4 against seven others at 1.
        let due = share(&mut r, Some(1.0));
        assert!((due - 4.0 / 11.0).abs() < 0.015, "{due}");
        // Never bought, long overdue or just bought: back to θ.
        for ago in [None, Some(6.0), Some(0.1)] {
            let s = share(&mut r, ago);
            assert!((s - 0.125).abs() < 0.012, "{ago:?}: {s}");
        }
    }
}
