//! Send-time model: when in the week is a customer most likely to engage on a channel?
//!
//! Time is the hour of the week in the customer's **local** time, `0` = Monday 00:00–00:59,
//! `167` = Sunday 23:00–23:59. Time zones are converted by the caller; this module does no I/O.
//!
//! # Counts
//!
//! [`SendTimeCounts`] holds, per customer and [`Channel`], the customer's engagements as a sparse
//! sorted list of `(hour_of_week, count)` pairs (a customer has a handful of events and there may
//! be millions of customers, so nothing dense is kept per customer). Every engagement of a
//! specific channel (email, SMS, push) is **also** counted under [`Channel::Any`]: `Any` is all
//! of the customer's activity, channel engagements included. An engagement given with channel
//! `Any` (a view, a purchase…) counts only there.
//!
//! # Population profile
//!
//! Per channel, 168 probabilities from all customers' counts. `Any` gets a floor of one
//! pseudo-event per slot, so no slot has zero mass; each specific channel is shrunk toward the
//! `Any` population by 168 pseudo-events, so a channel with little data looks like overall
//! activity rather than like noise (and one with no data at all is exactly the `Any` profile).
//!
//! # Customer profile (empirical Bayes)
//!
//! For a customer, channel `c` and hour of week `h`,
//!
//! ```text
//! score[h] = n[h] + β · n_hod[h mod 24] / 7 + κ · pop_c[h],   profile = score / Σ score
//! ```
//!
//! where `n` are the customer's counts from the *source* below, `n_hod[d]` their total at hour of
//! day `d` over the seven days (a customer who opens at 20:00 on Tuesdays probably also reads at
//! 20:00 on other days: β pools that), `pop_c` the channel's population profile and κ the prior
//! strength in pseudo-events. The source is, in order:
//!
//! 1. the customer's engagements on channel `c`, if there is at least one;
//! 2. otherwise all the customer's activity (their `Any` counts), if there is any;
//! 3. otherwise none: the profile is exactly `pop_c`.
//!
//! For `c = Any` steps 1 and 2 coincide. The prior is always the requested channel's population.
//!
//! # Choosing κ and β
//!
//! [`select`] fits on earlier counts and scores later, held-out engagements by hit@1 and hit@3
//! (at hour-of-week and at hour-of-day level) over a grid, against the population-best baseline.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Slots in a week profile.
pub const HOURS_PER_WEEK: usize = 168;
/// Slots in a day profile.
pub const HOURS_PER_DAY: usize = 24;
const N_CHANNELS: usize = 4;
/// Pseudo-events per slot in the `Any` population; channel populations are shrunk toward `Any`
/// by `HOURS_PER_WEEK` times this many pseudo-events.
const POPULATION_FLOOR: f64 = 1.0;

/// A κ grid spanning "trust one event" to "trust the population": κ is in pseudo-events.
pub const DEFAULT_GRID_KAPPA: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// A β grid from "no hour-of-day pooling" to "hour of day dominates".
pub const DEFAULT_GRID_BETA: &[f64] = &[0.0, 0.5, 1.0, 2.0, 4.0];

/// Why send-time counts, a model or a backtest could not be built.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SendTimeError {
    /// An input engagement is unusable.
    #[error("engagement {index}: {problem}")]
    InvalidEngagement { index: usize, problem: String },
    /// A hyper-parameter is unusable.
    #[error("{name} = {value}: {problem}")]
    InvalidParameter {
        name: &'static str,
        value: f64,
        problem: String,
    },
    /// Counts or model weights (e.g. hand-edited JSON) are inconsistent.
    #[error("invalid send-time {what}: {problem}")]
    Invalid { what: &'static str, problem: String },
    /// A backtest cannot be run on these inputs.
    #[error("send-time backtest: {0}")]
    Backtest(String),
}

type Result<T> = std::result::Result<T, SendTimeError>;

/// The channel an engagement happened on; `Any` is all activity, the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Push,
    Any,
}

impl Channel {
    pub const ALL: [Channel; N_CHANNELS] =
        [Channel::Email, Channel::Sms, Channel::Push, Channel::Any];

    /// Position in [`Channel::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn name(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Any => "any",
        }
    }

    /// The inverse of [`Channel::name`].
    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The channel a contract event type is an engagement on: `email_open`/`email_click` →
    /// email, `sms_click` → SMS, `push_open`/`app_open` → push; other customer-initiated
    /// activity (purchase, return, view, cart, review, redemption, support) → `Any`; `None` for
    /// events that say nothing about when the customer is active (`contact` is our own send,
    /// `unsubscribe` a reaction to it) and for unknown types.
    pub fn from_event_type(event_type: &str) -> Option<Channel> {
        match event_type {
            "email_open" | "email_click" => Some(Channel::Email),
            "sms_click" => Some(Channel::Sms),
            "push_open" | "app_open" => Some(Channel::Push),
            "purchase" | "return" | "view" | "cart" | "review" | "redemption" | "support" => {
                Some(Channel::Any)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The hour of week of a day of week (0 = Monday) and an hour of day, `None` if out of range.
pub fn hour_of_week(day_from_monday: u32, hour: u32) -> Option<u8> {
    (day_from_monday < 7 && hour < 24).then(|| (day_from_monday * 24 + hour) as u8)
}

/// The hour of week of a local wall-clock time given as seconds since 1970-01-01 00:00 *local*
/// (e.g. chrono's `local_naive_datetime.and_utc().timestamp()`).
pub fn hour_of_week_from_local_seconds(local_seconds: i64) -> u8 {
    let days = local_seconds.div_euclid(86_400);
    let hour = local_seconds.rem_euclid(86_400) / 3_600;
    // 1970-01-01 was a Thursday, day 3 counting from Monday = 0.
    let day = (days + 3).rem_euclid(7);
    (day * 24 + hour) as u8
}

/// One engagement, already in the customer's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Engagement {
    /// Dense customer index, below the `n_customers` the counts are built for.
    pub customer: u32,
    pub channel: Channel,
    /// Hour of week, 0..168, 0 = Monday 00:00 local.
    pub how: u8,
}

/// Per customer and channel, sparse `(hour_of_week, count)` lists sorted by hour, in one flat
/// array (CSR layout: one allocation for all customers instead of one per customer-channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCounts")]
pub struct SendTimeCounts {
    n_customers: usize,
    /// `offsets[customer * 4 + channel .. +1]` delimits that list in `entries`.
    offsets: Vec<u32>,
    entries: Vec<(u8, u16)>,
}

#[derive(Deserialize)]
struct RawCounts {
    n_customers: usize,
    offsets: Vec<u32>,
    entries: Vec<(u8, u16)>,
}

impl TryFrom<RawCounts> for SendTimeCounts {
    type Error = SendTimeError;

    fn try_from(raw: RawCounts) -> Result<Self> {
        let bad = |problem: String| SendTimeError::Invalid {
            what: "counts",
            problem,
        };
        let expected = raw
            .n_customers
            .checked_mul(N_CHANNELS)
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| bad(format!("n_customers {} is too large", raw.n_customers)))?;
        if raw.offsets.len() != expected {
            return Err(bad(format!(
                "{} offsets for {} customers, expected {expected}",
                raw.offsets.len(),
                raw.n_customers
            )));
        }
        if raw.offsets.first() != Some(&0)
            || raw.offsets.last().map(|&o| o as usize) != Some(raw.entries.len())
        {
            return Err(bad(
                "offsets must start at 0 and end at the number of entries".into(),
            ));
        }
        for (key, w) in raw.offsets.windows(2).enumerate() {
            if w[0] > w[1] {
                return Err(bad(format!("offsets decrease at list {key}")));
            }
            let list = &raw.entries[w[0] as usize..w[1] as usize];
            for (i, &(how, count)) in list.iter().enumerate() {
                if usize::from(how) >= HOURS_PER_WEEK || count == 0 {
                    return Err(bad(format!(
                        "customer {} {}: entry ({how}, {count}) needs hour < 168 and count > 0",
                        key / N_CHANNELS,
                        Channel::ALL[key % N_CHANNELS]
                    )));
                }
                if i > 0 && list[i - 1].0 >= how {
                    return Err(bad(format!(
                        "customer {} {}: hours not strictly increasing",
                        key / N_CHANNELS,
                        Channel::ALL[key % N_CHANNELS]
                    )));
                }
            }
        }
        Ok(SendTimeCounts {
            n_customers: raw.n_customers,
            offsets: raw.offsets,
            entries: raw.entries,
        })
    }
}

impl SendTimeCounts {
    /// Counts engagements per customer, channel and hour of week. Channel engagements are also
    /// counted under `Any`. A count that would pass 65,535 in one customer's slot stays there
    /// (no human engages that often in one hour of the week; it is a bot or a replay).
    pub fn from_engagements(n_customers: usize, engagements: &[Engagement]) -> Result<Self> {
        let n_keys = n_customers
            .checked_mul(N_CHANNELS)
            .ok_or_else(|| SendTimeError::Invalid {
                what: "counts",
                problem: format!("n_customers {n_customers} is too large"),
            })?;
        for (index, e) in engagements.iter().enumerate() {
            if e.customer as usize >= n_customers {
                return Err(SendTimeError::InvalidEngagement {
                    index,
                    problem: format!(
                        "customer {} is not below n_customers {n_customers}",
                        e.customer
                    ),
                });
            }
            if usize::from(e.how) >= HOURS_PER_WEEK {
                return Err(SendTimeError::InvalidEngagement {
                    index,
                    problem: format!("hour of week {} is not below 168", e.how),
                });
            }
        }
        // Offsets are u32 to halve their memory; at most two entries per engagement.
        if engagements.len() > (u32::MAX / 2) as usize {
            return Err(SendTimeError::Invalid {
                what: "counts",
                problem: format!(
                    "{} engagements is more than one count table holds; split customers",
                    engagements.len()
                ),
            });
        }
        let key = |e: &Engagement, ch: Channel| e.customer as usize * N_CHANNELS + ch.index();

        // Counting sort of the hours by (customer, channel).
        let mut start = vec![0u32; n_keys + 1];
        for e in engagements {
            start[key(e, e.channel) + 1] += 1;
            if e.channel != Channel::Any {
                start[key(e, Channel::Any) + 1] += 1;
            }
        }
        for k in 0..n_keys {
            start[k + 1] += start[k];
        }
        let mut hours = vec![0u8; start[n_keys] as usize];
        let mut cursor = start.clone();
        for e in engagements {
            let mut put = |k: usize| {
                hours[cursor[k] as usize] = e.how;
                cursor[k] += 1;
            };
            put(key(e, e.channel));
            if e.channel != Channel::Any {
                put(key(e, Channel::Any));
            }
        }
        drop(cursor);

        // Run-length encode each list; `start` becomes the output offsets in place (entry k+1
        // is read as the input end before it is overwritten with the output end).
        let mut entries: Vec<(u8, u16)> = Vec::with_capacity(hours.len() / 2 + 1);
        let mut input_start = 0usize;
        for k in 0..n_keys {
            let input_end = start[k + 1] as usize;
            let list = &mut hours[input_start..input_end];
            list.sort_unstable();
            let list_start = entries.len();
            for &h in list.iter() {
                match entries[list_start..].last_mut() {
                    Some((last, count)) if *last == h => *count = count.saturating_add(1),
                    _ => entries.push((h, 1)),
                }
            }
            input_start = input_end;
            start[k + 1] = entries.len() as u32;
        }
        entries.shrink_to_fit();
        Ok(SendTimeCounts {
            n_customers,
            offsets: start,
            entries,
        })
    }

    pub fn n_customers(&self) -> usize {
        self.n_customers
    }

    /// One customer's counts, `None` if `customer` is not below [`Self::n_customers`].
    pub fn customer(&self, customer: usize) -> Option<CustomerCounts<'_>> {
        if customer >= self.n_customers {
            return None;
        }
        let list = |ch: usize| {
            let k = customer * N_CHANNELS + ch;
            &self.entries[self.offsets[k] as usize..self.offsets[k + 1] as usize]
        };
        Some(CustomerCounts {
            per_channel: [list(0), list(1), list(2), list(3)],
        })
    }

    /// Total engagements per channel and hour of week over all customers.
    pub fn totals(&self) -> [[u64; HOURS_PER_WEEK]; N_CHANNELS] {
        let mut totals = [[0u64; HOURS_PER_WEEK]; N_CHANNELS];
        for (k, w) in self.offsets.windows(2).enumerate() {
            let t = &mut totals[k % N_CHANNELS];
            for &(how, count) in &self.entries[w[0] as usize..w[1] as usize] {
                t[usize::from(how)] += u64::from(count);
            }
        }
        totals
    }
}

/// One customer's sparse counts per channel (indexed like [`Channel::ALL`]), borrowed from a
/// [`SendTimeCounts`] or from the caller's own storage (e.g. online state in the server).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CustomerCounts<'a> {
    per_channel: [&'a [(u8, u16)]; N_CHANNELS],
}

impl<'a> CustomerCounts<'a> {
    /// A customer with no engagements.
    pub const EMPTY: CustomerCounts<'static> = CustomerCounts {
        per_channel: [&[]; N_CHANNELS],
    };

    /// Counts per channel in [`Channel::ALL`] order. Lists need not be sorted; a repeated hour
    /// adds up. As in [`SendTimeCounts`], the `Any` list should include the channel engagements.
    pub fn new(per_channel: [&'a [(u8, u16)]; N_CHANNELS]) -> Result<Self> {
        for (ch, list) in Channel::ALL.iter().zip(per_channel) {
            if let Some(&(how, _)) = list.iter().find(|e| usize::from(e.0) >= HOURS_PER_WEEK) {
                return Err(SendTimeError::Invalid {
                    what: "customer counts",
                    problem: format!("{ch}: hour of week {how} is not below 168"),
                });
            }
        }
        Ok(CustomerCounts { per_channel })
    }

    pub fn channel(&self, channel: Channel) -> &'a [(u8, u16)] {
        self.per_channel[channel.index()]
    }

    /// Number of engagements on a channel.
    pub fn n_events(&self, channel: Channel) -> u32 {
        // Saturating: caller-built lists may be long.
        self.channel(channel)
            .iter()
            .fold(0u32, |n, &(_, c)| n.saturating_add(u32::from(c)))
    }
}

/// Where a customer's profile comes from (the fallback chain in the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSource {
    /// The customer's own engagements on the requested channel.
    Channel,
    /// The customer has none on the channel: all their activity (`Any` counts).
    AllActivity,
    /// The customer has no activity at all: the channel's population profile.
    Population,
}

/// A chosen slot (an hour of week or an hour of day) with its confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SlotChoice {
    pub slot: u8,
    /// Probability of the slot in the customer's profile.
    pub probability: f64,
    /// The customer's own engagements in this slot (from the profile's source).
    pub observations: u32,
}

/// A customer's best send times on one channel, best first. Fixed size: no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SendTimeRecommendation {
    pub channel: Channel,
    pub source: ProfileSource,
    /// The customer's engagements behind the profile (0 for the population).
    pub observations: u32,
    pub hours_of_week: [SlotChoice; 3],
    pub hours_of_day: [SlotChoice; 3],
}

impl SendTimeRecommendation {
    pub fn best_hour_of_week(&self) -> u8 {
        self.hours_of_week[0].slot
    }

    pub fn top3_hours_of_week(&self) -> [u8; 3] {
        self.hours_of_week.map(|s| s.slot)
    }

    pub fn best_hour_of_day(&self) -> u8 {
        self.hours_of_day[0].slot
    }

    pub fn top3_hours_of_day(&self) -> [u8; 3] {
        self.hours_of_day.map(|s| s.slot)
    }

    /// Probability that the customer's next engagement falls in one of the top-3 hours of week.
    pub fn top3_hours_of_week_mass(&self) -> f64 {
        self.hours_of_week.iter().map(|s| s.probability).sum()
    }

    /// Probability that the customer's next engagement falls in one of the top-3 hours of day.
    pub fn top3_hours_of_day_mass(&self) -> f64 {
        self.hours_of_day.iter().map(|s| s.probability).sum()
    }
}

/// The `k = out.len()` largest scores as `(slot, score)`, best first, ties to the lower slot;
/// returns how many were written (`min(k, N)`). No allocation: the server calls this per request.
pub fn top_k_slots<const N: usize>(scores: &[f64; N], out: &mut [(u8, f64)]) -> usize {
    const { assert!(N <= 256, "slots are u8") };
    let k = out.len().min(N);
    if k == 0 {
        return 0;
    }
    let mut n = 0;
    for (i, &v) in scores.iter().enumerate() {
        // Strict comparisons keep the earlier slot first on ties.
        if n == k && v <= out[k - 1].1 {
            continue;
        }
        let mut j = if n < k { n } else { k - 1 };
        while j > 0 && v > out[j - 1].1 {
            out[j] = out[j - 1];
            j -= 1;
        }
        out[j] = (i as u8, v);
        n = (n + 1).min(k);
    }
    n
}

/// The hour-of-day profile: each hour summed over the seven days.
pub fn hour_of_day_profile(profile: &[f64; HOURS_PER_WEEK]) -> [f64; HOURS_PER_DAY] {
    let mut hod = [0.0; HOURS_PER_DAY];
    for (h, &p) in profile.iter().enumerate() {
        hod[h % HOURS_PER_DAY] += p;
    }
    hod
}

/// The best hour of day (summed over the seven days) and its probability.
pub fn best_hour_of_day(profile: &[f64; HOURS_PER_WEEK]) -> (u8, f64) {
    top3_hours_of_day(profile)[0]
}

/// The three best hours of day (summed over the seven days), best first.
pub fn top3_hours_of_day(profile: &[f64; HOURS_PER_WEEK]) -> [(u8, f64); 3] {
    top3(&hour_of_day_profile(profile))
}

/// The three best hours of week, best first.
pub fn top3_hours_of_week(profile: &[f64; HOURS_PER_WEEK]) -> [(u8, f64); 3] {
    top3(profile)
}

/// Population profiles and the smoothing hyper-parameters. Serialises as
/// `{"kappa", "beta", "population": {"email": [168 probabilities], …}, "population_events": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModel", into = "RawModel")]
pub struct SendTimeModel {
    kappa: f64,
    beta: f64,
    population: [[f64; HOURS_PER_WEEK]; N_CHANNELS],
    population_events: [u64; N_CHANNELS],
    /// Derived: `population` summed per hour of day.
    population_hod: [[f64; HOURS_PER_DAY]; N_CHANNELS],
}

/// One value per channel, as a JSON object keyed by channel name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PerChannel<T> {
    email: T,
    sms: T,
    push: T,
    any: T,
}

impl<T> PerChannel<T> {
    fn from_array([email, sms, push, any]: [T; N_CHANNELS]) -> Self {
        PerChannel {
            email,
            sms,
            push,
            any,
        }
    }

    fn into_array(self) -> [T; N_CHANNELS] {
        [self.email, self.sms, self.push, self.any]
    }
}

#[derive(Serialize, Deserialize)]
struct RawModel {
    kappa: f64,
    beta: f64,
    population: PerChannel<Vec<f64>>,
    population_events: PerChannel<u64>,
}

impl From<SendTimeModel> for RawModel {
    fn from(m: SendTimeModel) -> Self {
        RawModel {
            kappa: m.kappa,
            beta: m.beta,
            population: PerChannel::from_array(m.population.map(|p| p.to_vec())),
            population_events: PerChannel::from_array(m.population_events),
        }
    }
}

impl TryFrom<RawModel> for SendTimeModel {
    type Error = SendTimeError;

    fn try_from(raw: RawModel) -> Result<Self> {
        check_hyper(raw.kappa, raw.beta)?;
        let mut population = [[0.0; HOURS_PER_WEEK]; N_CHANNELS];
        for (ch, (dst, src)) in Channel::ALL
            .iter()
            .zip(population.iter_mut().zip(raw.population.into_array()))
        {
            let bad = |problem: String| SendTimeError::Invalid {
                what: "model",
                problem: format!("population.{ch}: {problem}"),
            };
            if src.len() != HOURS_PER_WEEK {
                return Err(bad(format!("{} values, expected 168", src.len())));
            }
            if let Some(h) = src.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
                return Err(bad(format!("slot {h} is {}, expected > 0", src[h])));
            }
            let sum: f64 = src.iter().sum();
            if (sum - 1.0).abs() > 1e-6 {
                return Err(bad(format!("probabilities sum to {sum}, expected 1")));
            }
            dst.copy_from_slice(&src);
        }
        Ok(SendTimeModel::from_parts(
            raw.kappa,
            raw.beta,
            population,
            raw.population_events.into_array(),
        ))
    }
}

fn check_hyper(kappa: f64, beta: f64) -> Result<()> {
    // κ > 0 keeps every slot's probability positive and the no-data profile defined.
    if !(kappa.is_finite() && kappa > 0.0) {
        return Err(SendTimeError::InvalidParameter {
            name: "kappa",
            value: kappa,
            problem: "must be finite and > 0".into(),
        });
    }
    if !(beta.is_finite() && beta >= 0.0) {
        return Err(SendTimeError::InvalidParameter {
            name: "beta",
            value: beta,
            problem: "must be finite and >= 0".into(),
        });
    }
    Ok(())
}

impl SendTimeModel {
    /// Population profiles from all customers' counts, with prior strength `kappa` (> 0,
    /// pseudo-events) and hour-of-day pooling `beta` (>= 0).
    pub fn fit(counts: &SendTimeCounts, kappa: f64, beta: f64) -> Result<Self> {
        check_hyper(kappa, beta)?;
        let totals = counts.totals();
        let events = totals.map(|t| t.iter().sum::<u64>());
        let mut population = [[0.0; HOURS_PER_WEEK]; N_CHANNELS];
        let any = Channel::Any.index();
        let floor_total = POPULATION_FLOOR * HOURS_PER_WEEK as f64;
        let any_total = events[any] as f64 + floor_total;
        for h in 0..HOURS_PER_WEEK {
            population[any][h] = (totals[any][h] as f64 + POPULATION_FLOOR) / any_total;
        }
        for ch in [Channel::Email, Channel::Sms, Channel::Push] {
            let c = ch.index();
            let total = events[c] as f64 + floor_total;
            for h in 0..HOURS_PER_WEEK {
                population[c][h] = (totals[c][h] as f64 + floor_total * population[any][h]) / total;
            }
        }
        Ok(SendTimeModel::from_parts(kappa, beta, population, events))
    }

    fn from_parts(
        kappa: f64,
        beta: f64,
        population: [[f64; HOURS_PER_WEEK]; N_CHANNELS],
        population_events: [u64; N_CHANNELS],
    ) -> Self {
        let population_hod = population.map(|p| hour_of_day_profile(&p));
        SendTimeModel {
            kappa,
            beta,
            population,
            population_events,
            population_hod,
        }
    }

    /// The same population with other hyper-parameters.
    pub fn with_hyper(&self, kappa: f64, beta: f64) -> Result<Self> {
        check_hyper(kappa, beta)?;
        Ok(SendTimeModel {
            kappa,
            beta,
            ..self.clone()
        })
    }

    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The channel's population profile (sums to 1, every slot > 0).
    pub fn population(&self, channel: Channel) -> &[f64; HOURS_PER_WEEK] {
        &self.population[channel.index()]
    }

    /// Engagements behind the channel's population profile.
    pub fn population_events(&self, channel: Channel) -> u64 {
        self.population_events[channel.index()]
    }

    /// Which counts a customer's profile on `channel` is built from, and how many events.
    pub fn source<'a>(
        &self,
        counts: &CustomerCounts<'a>,
        channel: Channel,
    ) -> (ProfileSource, &'a [(u8, u16)], u32) {
        let own = counts.n_events(channel);
        if channel != Channel::Any && own > 0 {
            return (ProfileSource::Channel, counts.channel(channel), own);
        }
        let any = counts.n_events(Channel::Any);
        if any > 0 {
            // For channel = Any this is the customer's own channel.
            let source = if channel == Channel::Any {
                ProfileSource::Channel
            } else {
                ProfileSource::AllActivity
            };
            return (source, counts.channel(Channel::Any), any);
        }
        (ProfileSource::Population, &[], 0)
    }

    /// Unnormalised scores `n[h] + β·n_hod[h mod 24]/7 + κ·pop[h]`.
    fn scores_into(&self, list: &[(u8, u16)], channel: Channel, out: &mut [f64; HOURS_PER_WEEK]) {
        let (n_how, n_hod) = dense_counts(list);
        week_scores(
            &n_how,
            &n_hod,
            self.kappa,
            self.beta,
            &self.population[channel.index()],
            out,
        );
    }

    /// The customer's normalised hour-of-week profile on `channel` (sums to 1).
    pub fn profile(&self, counts: &CustomerCounts<'_>, channel: Channel) -> [f64; HOURS_PER_WEEK] {
        let mut out = [0.0; HOURS_PER_WEEK];
        if self.weights_into(counts, channel, &mut out) {
            let total: f64 = out.iter().sum();
            for v in out.iter_mut() {
                *v /= total;
            }
        }
        out
    }

    /// The customer's hour-of-week weights on `channel`, written into `out`: the profile before
    /// it is normalised, the scores the backtest ranked hours by, so the best hour is the one
    /// the backtest measured. A send time needs no more (the server asks this per request and
    /// channel; the sum and 168 divisions are left out). `false` when the weights are the
    /// population's profile, which is normalised already.
    pub fn weights_into(
        &self,
        counts: &CustomerCounts<'_>,
        channel: Channel,
        out: &mut [f64; HOURS_PER_WEEK],
    ) -> bool {
        let (source, list, _) = self.source(counts, channel);
        if source == ProfileSource::Population {
            *out = self.population[channel.index()];
            return false;
        }
        self.scores_into(list, channel, out);
        true
    }

    /// Fills `out` with the customer's `out.len()` best hours of week on `channel` and their
    /// probabilities, best first; returns how many were written. Allocation-free.
    pub fn top_k_into(
        &self,
        counts: &CustomerCounts<'_>,
        channel: Channel,
        out: &mut [(u8, f64)],
    ) -> usize {
        top_k_slots(&self.profile(counts, channel), out)
    }

    /// The customer's `k` best hours of week on `channel` (`k` capped at 168), best first, as
    /// `(hour_of_week, probability)`. Allocates only the result; see [`Self::top_k_into`].
    pub fn top_k(&self, counts: &CustomerCounts<'_>, channel: Channel, k: usize) -> Vec<(u8, f64)> {
        let mut out = [(0u8, 0.0f64); HOURS_PER_WEEK];
        let n = self.top_k_into(counts, channel, &mut out[..k.min(HOURS_PER_WEEK)]);
        out[..n].to_vec()
    }

    /// Best three hours of week and of day on `channel`, with confidence. Allocation-free.
    pub fn recommend(
        &self,
        counts: &CustomerCounts<'_>,
        channel: Channel,
    ) -> SendTimeRecommendation {
        let (source, list, observations) = self.source(counts, channel);
        let profile = self.profile(counts, channel);
        let mut n_how = [0u32; HOURS_PER_WEEK];
        let mut n_hod = [0u32; HOURS_PER_DAY];
        for &(how, c) in list {
            let (w, d) = (usize::from(how), usize::from(how) % HOURS_PER_DAY);
            n_how[w] = n_how[w].saturating_add(u32::from(c));
            n_hod[d] = n_hod[d].saturating_add(u32::from(c));
        }
        let choose = |top: [(u8, f64); 3], n: &[u32]| {
            top.map(|(slot, probability)| SlotChoice {
                slot,
                probability,
                observations: n[usize::from(slot)],
            })
        };
        SendTimeRecommendation {
            channel,
            source,
            observations,
            hours_of_week: choose(top3_hours_of_week(&profile), &n_how),
            hours_of_day: choose(top3_hours_of_day(&profile), &n_hod),
        }
    }
}

/// A sparse list as dense per-hour-of-week and per-hour-of-day counts (on the stack).
fn dense_counts(list: &[(u8, u16)]) -> ([f64; HOURS_PER_WEEK], [f64; HOURS_PER_DAY]) {
    let mut n_how = [0.0; HOURS_PER_WEEK];
    let mut n_hod = [0.0; HOURS_PER_DAY];
    for &(how, c) in list {
        n_how[usize::from(how)] += f64::from(c);
        n_hod[usize::from(how) % HOURS_PER_DAY] += f64::from(c);
    }
    (n_how, n_hod)
}

/// The one scoring formula, shared by profiles and the backtest so both rank identically:
/// `out[h] = n[h] + β·n_hod[h mod 24]/7 + κ·pop[h]`, written in place.
fn week_scores(
    n_how: &[f64; HOURS_PER_WEEK],
    n_hod: &[f64; HOURS_PER_DAY],
    kappa: f64,
    beta: f64,
    pop: &[f64; HOURS_PER_WEEK],
    out: &mut [f64; HOURS_PER_WEEK],
) {
    let b = beta / 7.0;
    // Day by day, so the loop has no `% 24` and vectorises (the backtest runs this a lot).
    for ((s, n), p) in out
        .chunks_exact_mut(HOURS_PER_DAY)
        .zip(n_how.chunks_exact(HOURS_PER_DAY))
        .zip(pop.chunks_exact(HOURS_PER_DAY))
    {
        for j in 0..HOURS_PER_DAY {
            s[j] = n[j] + b * n_hod[j] + kappa * p[j];
        }
    }
}

/// hit@1 and hit@3 of held-out engagements, at hour-of-week and at hour-of-day level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HitRates {
    pub hour_of_week_hit_at_1: f64,
    pub hour_of_week_hit_at_3: f64,
    pub hour_of_day_hit_at_1: f64,
    pub hour_of_day_hit_at_3: f64,
}

/// The model and the population-best baseline on the same held-out engagements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub n_heldout: u64,
    pub model: HitRates,
    pub baseline: HitRates,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelComparison {
    pub channel: Channel,
    #[serde(flatten)]
    pub comparison: Comparison,
}

/// One point of the hyper-parameter grid and how it scored on all held-out engagements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    pub kappa: f64,
    pub beta: f64,
    pub model: HitRates,
}

/// What [`select`] measured; goes into `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// Selected prior strength and hour-of-day pooling.
    pub kappa: f64,
    pub beta: f64,
    /// Held-out engagements scored.
    pub n_heldout: u64,
    /// Selected model on all held-out engagements.
    pub model: HitRates,
    /// Population-best baseline (the channel population's top slots for everyone), same set.
    pub baseline: HitRates,
    /// Only the held-out engagements of customers with training activity (their profile is not
    /// the population's, so this is where the model can differ from the baseline).
    pub with_history: Comparison,
    /// Per channel of the held-out engagements, channels without any left out.
    pub per_channel: Vec<ChannelComparison>,
    pub grid: Vec<GridPoint>,
}

/// Hit counters, per channel and for customers with history.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    by_channel: [Hits; N_CHANNELS],
    with_history: Hits,
}

#[derive(Debug, Clone, Copy, Default)]
struct Hits {
    n: u64,
    how1: u64,
    how3: u64,
    hod1: u64,
    hod3: u64,
}

impl Hits {
    fn add(&mut self, how: u8, top_how: &[u8; 3], top_hod: &[u8; 3]) {
        let hod = how % HOURS_PER_DAY as u8;
        self.n += 1;
        self.how1 += u64::from(top_how[0] == how);
        self.how3 += u64::from(top_how.contains(&how));
        self.hod1 += u64::from(top_hod[0] == hod);
        self.hod3 += u64::from(top_hod.contains(&hod));
    }

    fn merge(&mut self, o: &Hits) {
        self.n += o.n;
        self.how1 += o.how1;
        self.how3 += o.how3;
        self.hod1 += o.hod1;
        self.hod3 += o.hod3;
    }

    fn rates(&self) -> HitRates {
        let r = |x: u64| {
            if self.n == 0 {
                0.0
            } else {
                x as f64 / self.n as f64
            }
        };
        HitRates {
            hour_of_week_hit_at_1: r(self.how1),
            hour_of_week_hit_at_3: r(self.how3),
            hour_of_day_hit_at_1: r(self.hod1),
            hour_of_day_hit_at_3: r(self.hod3),
        }
    }
}

impl Tally {
    fn add(
        &mut self,
        channel: usize,
        history: bool,
        how: u8,
        top_how: &[u8; 3],
        top_hod: &[u8; 3],
    ) {
        self.by_channel[channel].add(how, top_how, top_hod);
        if history {
            self.with_history.add(how, top_how, top_hod);
        }
    }

    fn merge(&mut self, o: &Tally) {
        for (a, b) in self.by_channel.iter_mut().zip(&o.by_channel) {
            a.merge(b);
        }
        self.with_history.merge(&o.with_history);
    }

    fn overall(&self) -> Hits {
        let mut h = Hits::default();
        for c in &self.by_channel {
            h.merge(c);
        }
        h
    }
}

fn top3_slots<const N: usize>(scores: &[f64; N]) -> [u8; 3] {
    top3(scores).map(|(slot, _)| slot)
}

/// [`top_k_slots`] for k = 3 with the three kept in registers: same result, several times
/// faster, which matters in the backtest's inner loop.
fn top3<const N: usize>(scores: &[f64; N]) -> [(u8, f64); 3] {
    const { assert!(N >= 3 && N <= 256, "3 to 256 slots") };
    let mut t = [(0u8, f64::NEG_INFINITY); 3];
    for (i, &v) in scores.iter().enumerate() {
        if v > t[2].1 {
            if v > t[1].1 {
                t[2] = t[1];
                if v > t[0].1 {
                    t[1] = t[0];
                    t[0] = (i as u8, v);
                } else {
                    t[1] = (i as u8, v);
                }
            } else {
                t[2] = (i as u8, v);
            }
        }
    }
    t
}

/// Chooses κ and β by backtest: fits on `train` (counts up to a cutoff), scores `heldout`
/// (engagements after it, split by the caller) by hit@1 and hit@3 of each engagement's hour
/// against the customer's predicted top slots on the engagement's channel, for every
/// (κ, β) of the grid, and keeps the best hit@3 at hour-of-week level (ties: best hit@1, then
/// the first in grid order, κ-major). Every held-out engagement passed is scored, so pass only
/// those you want measured (e.g. the channel engagements).
///
/// The returned model is fitted on `train`; to serve, refit on the full history with the
/// selected `report.kappa`, `report.beta`. Uses up to `available_parallelism` threads.
pub fn select(
    train: &SendTimeCounts,
    heldout: &[Engagement],
    grid_kappa: &[f64],
    grid_beta: &[f64],
) -> Result<(SendTimeModel, BacktestReport)> {
    if grid_kappa.is_empty() || grid_beta.is_empty() {
        return Err(SendTimeError::Backtest(
            "the κ and β grids must not be empty".into(),
        ));
    }
    let grid: Vec<(f64, f64)> = grid_kappa
        .iter()
        .flat_map(|&k| grid_beta.iter().map(move |&b| (k, b)))
        .collect();
    for &(k, b) in &grid {
        check_hyper(k, b)?;
    }
    if heldout.is_empty() {
        return Err(SendTimeError::Backtest(
            "no held-out engagements to score".into(),
        ));
    }
    for (index, e) in heldout.iter().enumerate() {
        if e.customer as usize >= train.n_customers() || usize::from(e.how) >= HOURS_PER_WEEK {
            return Err(SendTimeError::InvalidEngagement {
                index,
                problem: format!(
                    "held out: customer {} must be below the training counts' n_customers {} \
                     and hour of week {} below 168",
                    e.customer,
                    train.n_customers(),
                    e.how
                ),
            });
        }
    }
    let base = SendTimeModel::fit(train, grid[0].0, grid[0].1)?;

    // Group held-out engagements by (customer, channel): one profile per group and grid point.
    let mut keyed: Vec<(u32, u8, u8)> = heldout
        .iter()
        .map(|e| (e.customer, e.channel.index() as u8, e.how))
        .collect();
    keyed.sort_unstable();
    let groups: Vec<&[(u32, u8, u8)]> = keyed.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1).collect();

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(groups.len().div_ceil(1024))
        .max(1);
    let chunk = groups.len().div_ceil(threads);
    let partials: Vec<(Tally, Vec<Tally>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .chunks(chunk)
            .map(|part| scope.spawn(|| score_groups(&base, train, part, &grid)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut baseline = Tally::default();
    let mut tallies = vec![Tally::default(); grid.len()];
    for (b, t) in &partials {
        baseline.merge(b);
        for (a, x) in tallies.iter_mut().zip(t) {
            a.merge(x);
        }
    }

    let overall: Vec<Hits> = tallies.iter().map(Tally::overall).collect();
    let mut best = 0;
    for (g, h) in overall.iter().enumerate() {
        if (h.how3, h.how1) > (overall[best].how3, overall[best].how1) {
            best = g;
        }
    }
    let (kappa, beta) = grid[best];
    let chosen = &tallies[best];
    let base_overall = baseline.overall();
    let report = BacktestReport {
        kappa,
        beta,
        n_heldout: base_overall.n,
        model: overall[best].rates(),
        baseline: base_overall.rates(),
        with_history: Comparison {
            n_heldout: chosen.with_history.n,
            model: chosen.with_history.rates(),
            baseline: baseline.with_history.rates(),
        },
        per_channel: Channel::ALL
            .iter()
            .filter(|c| chosen.by_channel[c.index()].n > 0)
            .map(|&channel| ChannelComparison {
                channel,
                comparison: Comparison {
                    n_heldout: chosen.by_channel[channel.index()].n,
                    model: chosen.by_channel[channel.index()].rates(),
                    baseline: baseline.by_channel[channel.index()].rates(),
                },
            })
            .collect(),
        grid: grid
            .iter()
            .zip(&overall)
            .map(|(&(kappa, beta), h)| GridPoint {
                kappa,
                beta,
                model: h.rates(),
            })
            .collect(),
    };
    Ok((base.with_hyper(kappa, beta)?, report))
}

/// Baseline and per-grid-point tallies for some groups of held-out engagements.
fn score_groups(
    base: &SendTimeModel,
    train: &SendTimeCounts,
    groups: &[&[(u32, u8, u8)]],
    grid: &[(f64, f64)],
) -> (Tally, Vec<Tally>) {
    let pop_top: [([u8; 3], [u8; 3]); N_CHANNELS] = std::array::from_fn(|c| {
        (
            top3_slots(&base.population[c]),
            top3_slots(&base.population_hod[c]),
        )
    });
    let mut baseline = Tally::default();
    let mut tallies = vec![Tally::default(); grid.len()];
    for group in groups {
        let Some(&(customer, ch, _)) = group.first() else {
            continue;
        };
        let c = usize::from(ch);
        let channel = Channel::ALL[c];
        let counts = train
            .customer(customer as usize)
            .unwrap_or(CustomerCounts::EMPTY);
        let (source, list, _) = base.source(&counts, channel);
        let history = source != ProfileSource::Population;
        let (pop_how, pop_hod) = &pop_top[c];
        for &(_, _, how) in group.iter() {
            baseline.add(c, history, how, pop_how, pop_hod);
        }
        if !history {
            // The profile is the population's whatever κ and β are.
            for t in &mut tallies {
                for &(_, _, how) in group.iter() {
                    t.add(c, false, how, pop_how, pop_hod);
                }
            }
            continue;
        }
        let (n_how, n_hod) = dense_counts(list);
        let pop = &base.population[c];
        let pop_hod_p = &base.population_hod[c];
        let mut s = [0.0; HOURS_PER_WEEK];
        for (t, &(kappa, beta)) in tallies.iter_mut().zip(grid) {
            // Same ranking as `SendTimeModel::profile` (normalising does not reorder, up to
            // rounding); hour-of-day scores are the week scores summed over days, in closed form.
            week_scores(&n_how, &n_hod, kappa, beta, pop, &mut s);
            let mut d = [0.0; HOURS_PER_DAY];
            for (h, v) in d.iter_mut().enumerate() {
                *v = (1.0 + beta) * n_hod[h] + kappa * pop_hod_p[h];
            }
            let (top_how, top_hod) = (top3_slots(&s), top3_slots(&d));
            for &(_, _, how) in group.iter() {
                t.add(c, true, how, &top_how, &top_hod);
            }
        }
    }
    (baseline, tallies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(customer: u32, channel: Channel, how: u8) -> Engagement {
        Engagement {
            customer,
            channel,
            how,
        }
    }

    #[test]
    fn counts_are_sparse_sorted_and_channel_events_count_under_any() {
        let evs = [
            e(1, Channel::Email, 50),
            e(1, Channel::Email, 3),
            e(1, Channel::Email, 50),
            e(1, Channel::Any, 3),
            e(0, Channel::Push, 167),
        ];
        let counts = SendTimeCounts::from_engagements(3, &evs).unwrap();
        let c1 = counts.customer(1).unwrap();
        assert_eq!(c1.channel(Channel::Email), &[(3, 1), (50, 2)]);
        assert_eq!(c1.channel(Channel::Any), &[(3, 2), (50, 2)]);
        assert!(c1.channel(Channel::Sms).is_empty());
        let c0 = counts.customer(0).unwrap();
        assert_eq!(c0.channel(Channel::Push), &[(167, 1)]);
        assert_eq!(c0.channel(Channel::Any), &[(167, 1)]);
        assert_eq!(counts.customer(2).unwrap(), CustomerCounts::EMPTY);
        assert!(counts.customer(3).is_none());
        assert_eq!(counts.totals()[Channel::Any.index()].iter().sum::<u64>(), 5);
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let evs = vec![e(0, Channel::Any, 7); 70_000];
        let counts = SendTimeCounts::from_engagements(1, &evs).unwrap();
        assert_eq!(
            counts.customer(0).unwrap().channel(Channel::Any),
            &[(7, u16::MAX)]
        );
    }

    #[test]
    fn top_k_breaks_ties_toward_the_earlier_slot() {
        let mut s = [0.0; 24];
        s[5] = 2.0;
        s[9] = 2.0;
        s[1] = 1.0;
        s[20] = 3.0;
        let mut out = [(0, 0.0); 4];
        assert_eq!(top_k_slots(&s, &mut out), 4);
        assert_eq!(out.map(|x| x.0), [20, 5, 9, 1]);
        assert_eq!(top_k_slots(&s, &mut []), 0);
    }

    #[test]
    fn top3_agrees_with_top_k_slots() {
        let mut x = 12345u64;
        for _ in 0..200 {
            let mut s = [0.0; 24];
            for v in &mut s {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Few distinct values, so ties are common.
                *v = ((x >> 60) % 5) as f64;
            }
            let mut out = [(0, 0.0); 3];
            top_k_slots(&s, &mut out);
            assert_eq!(top3(&s), out);
        }
    }

    #[test]
    fn population_shrinks_channels_toward_any() {
        let evs = [e(0, Channel::Any, 10), e(0, Channel::Any, 10)];
        let counts = SendTimeCounts::from_engagements(1, &evs).unwrap();
        let m = SendTimeModel::fit(&counts, 1.0, 0.0).unwrap();
        // No email data at all: the email population is exactly the Any one.
        for h in 0..HOURS_PER_WEEK {
            assert!(
                (m.population(Channel::Email)[h] - m.population(Channel::Any)[h]).abs() < 1e-15
            );
        }
        assert!((m.population(Channel::Any)[10] - 3.0 / 170.0).abs() < 1e-15);
    }

    #[test]
    fn select_scores_match_profiles() {
        // The backtest's closed-form ranking must agree with `profile`, and the weights a
        // send time is chosen from must be those scores (or the population's profile).
        let evs = [
            e(0, Channel::Email, 30),
            e(0, Channel::Email, 54),
            e(0, Channel::Any, 100),
            e(1, Channel::Any, 7),
            e(2, Channel::Push, 8),
        ];
        let counts = SendTimeCounts::from_engagements(3, &evs).unwrap();
        let m = SendTimeModel::fit(&counts, 2.0, 1.0).unwrap();
        for c in 0..3 {
            let cc = counts.customer(c).unwrap();
            for ch in Channel::ALL {
                let (source, list, _) = m.source(&cc, ch);
                let p = m.profile(&cc, ch);
                let mut w = [f64::NAN; HOURS_PER_WEEK];
                let scaled = m.weights_into(&cc, ch, &mut w);
                assert_eq!(scaled, source != ProfileSource::Population);
                if scaled {
                    let mut scores = [0.0; HOURS_PER_WEEK];
                    let (n_how, n_hod) = dense_counts(list);
                    week_scores(
                        &n_how,
                        &n_hod,
                        m.kappa,
                        m.beta,
                        m.population(ch),
                        &mut scores,
                    );
                    assert_eq!(w, scores);
                } else {
                    assert_eq!(w, p);
                }
                assert_eq!(top3_slots(&w), top3_slots(&p));
            }
        }
    }
}
