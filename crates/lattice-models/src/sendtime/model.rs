//! The send-time model: population profiles, customers' smoothed profiles and their best
//! hours.

use serde::{Deserialize, Serialize};

use super::counts::{CustomerCounts, SendTimeCounts};
use super::{Channel, HOURS_PER_DAY, HOURS_PER_WEEK, N_CHANNELS, Result, SendTimeError};

/// Pseudo-events per slot in the `Any` population; channel populations are shrunk toward `Any`
/// by `HOURS_PER_WEEK` times this many pseudo-events.
const POPULATION_FLOOR: f64 = 1.0;

/// Where a customer's profile comes from (the fallback chain in the [module
/// documentation](super)).
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

pub(super) fn top3_slots<const N: usize>(scores: &[f64; N]) -> [u8; 3] {
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

/// How one channel's customer profiles are smoothed (the formula in the [module
/// documentation](super)), chosen per channel by [`select`](super::select).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Prior strength toward the channel's population, in pseudo-events (> 0).
    pub kappa: f64,
    /// Hour-of-day pooling: how much the customer's other days at the same hour count (>= 0);
    /// a large β makes the profile an hour-of-day profile repeated over the week.
    pub beta: f64,
    /// Circular smoothing: each count also lends this share of itself to the hour before and
    /// the hour after (0 ..= 1; Sunday 23:00 neighbours Monday 00:00).
    pub smoothing: f64,
}

impl Hyper {
    /// What a model uses when no backtest could choose: a moderate prior, a little pooling.
    pub const DEFAULT: Hyper = Hyper {
        kappa: 16.0,
        beta: 0.5,
        smoothing: 0.0,
    };

    /// Checked: κ finite and > 0 (keeps every slot positive and the no-data profile defined),
    /// β finite and >= 0, smoothing in 0 ..= 1.
    pub fn new(kappa: f64, beta: f64, smoothing: f64) -> Result<Self> {
        let bad = |name, value, problem: &str| SendTimeError::InvalidParameter {
            name,
            value,
            problem: problem.into(),
        };
        if !(kappa.is_finite() && kappa > 0.0) {
            return Err(bad("kappa", kappa, "must be finite and > 0"));
        }
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(bad("beta", beta, "must be finite and >= 0"));
        }
        if !(0.0..=1.0).contains(&smoothing) {
            return Err(bad("smoothing", smoothing, "must be between 0 and 1"));
        }
        Ok(Hyper {
            kappa,
            beta,
            smoothing,
        })
    }

    pub(super) fn check(self) -> Result<Self> {
        Hyper::new(self.kappa, self.beta, self.smoothing)
    }
}

/// Population profiles and each channel's smoothing [`Hyper`]. Serialises as
/// `{"hyper": {"email": {"kappa", "beta", "smoothing"}, …}, "population": {"email": [168
/// probabilities], …}, "population_events": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawModel", into = "RawModel")]
pub struct SendTimeModel {
    hyper: [Hyper; N_CHANNELS],
    pub(super) population: [[f64; HOURS_PER_WEEK]; N_CHANNELS],
    population_events: [u64; N_CHANNELS],
    /// Derived: `population` summed per hour of day.
    pub(super) population_hod: [[f64; HOURS_PER_DAY]; N_CHANNELS],
}

/// One value per channel, as a JSON object keyed by channel name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PerChannel<T> {
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

/// `#[serde(with = "per_channel")]` for a `[Hyper; N_CHANNELS]` field: an object keyed by
/// channel name, checked on the way in.
pub(super) mod per_channel {
    use super::{Hyper, N_CHANNELS, PerChannel};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[Hyper; N_CHANNELS], s: S) -> Result<S::Ok, S::Error> {
        PerChannel::from_array(*v).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[Hyper; N_CHANNELS], D::Error> {
        let v = PerChannel::<Hyper>::deserialize(d)?.into_array();
        for h in v {
            h.check().map_err(serde::de::Error::custom)?;
        }
        Ok(v)
    }
}

#[derive(Serialize, Deserialize)]
struct RawModel {
    #[serde(with = "per_channel")]
    hyper: [Hyper; N_CHANNELS],
    population: PerChannel<Vec<f64>>,
    population_events: PerChannel<u64>,
}

impl From<SendTimeModel> for RawModel {
    fn from(m: SendTimeModel) -> Self {
        RawModel {
            hyper: m.hyper,
            population: PerChannel::from_array(m.population.map(|p| p.to_vec())),
            population_events: PerChannel::from_array(m.population_events),
        }
    }
}

impl TryFrom<RawModel> for SendTimeModel {
    type Error = SendTimeError;

    fn try_from(raw: RawModel) -> Result<Self> {
        let hyper = raw.hyper;
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
            hyper,
            population,
            raw.population_events.into_array(),
        ))
    }
}

impl SendTimeModel {
    /// Population profiles from all customers' counts; customers' profiles on channel `c` are
    /// smoothed with `hyper[c.index()]`.
    pub fn fit(counts: &SendTimeCounts, hyper: [Hyper; N_CHANNELS]) -> Result<Self> {
        for h in hyper {
            h.check()?;
        }
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
        Ok(SendTimeModel::from_parts(hyper, population, events))
    }

    fn from_parts(
        hyper: [Hyper; N_CHANNELS],
        population: [[f64; HOURS_PER_WEEK]; N_CHANNELS],
        population_events: [u64; N_CHANNELS],
    ) -> Self {
        let population_hod = population.map(|p| hour_of_day_profile(&p));
        SendTimeModel {
            hyper,
            population,
            population_events,
            population_hod,
        }
    }

    /// The same population with other hyper-parameters.
    pub fn with_hyper(&self, hyper: [Hyper; N_CHANNELS]) -> Result<Self> {
        for h in hyper {
            h.check()?;
        }
        Ok(SendTimeModel {
            hyper,
            ..self.clone()
        })
    }

    /// How customers' profiles on `channel` are smoothed.
    pub fn hyper(&self, channel: Channel) -> Hyper {
        self.hyper[channel.index()]
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

    /// Unnormalised scores `ñ[h] + β·ñ_hod[h mod 24]/7 + κ·pop[h]` (ñ: smoothed counts).
    fn scores_into(&self, list: &[(u8, u16)], channel: Channel, out: &mut [f64; HOURS_PER_WEEK]) {
        let h = self.hyper[channel.index()];
        let (n_how, n_hod) = dense_counts(list, h.smoothing);
        week_scores(
            &n_how,
            &n_hod,
            h.kappa,
            h.beta,
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

/// A sparse list as dense per-hour-of-week and per-hour-of-day counts (on the stack), each
/// count also lending `smoothing` of itself to the hours either side (circularly: the week's
/// last hour neighbours its first, so the hour-of-day counts are smoothed the same way).
pub(super) fn dense_counts(
    list: &[(u8, u16)],
    smoothing: f64,
) -> ([f64; HOURS_PER_WEEK], [f64; HOURS_PER_DAY]) {
    let mut n_how = [0.0; HOURS_PER_WEEK];
    let mut n_hod = [0.0; HOURS_PER_DAY];
    let mut add = |h: usize, v: f64| {
        n_how[h] += v;
        n_hod[h % HOURS_PER_DAY] += v;
    };
    for &(how, c) in list {
        let (h, c) = (usize::from(how), f64::from(c));
        add(h, c);
        if smoothing > 0.0 {
            add((h + HOURS_PER_WEEK - 1) % HOURS_PER_WEEK, smoothing * c);
            add((h + 1) % HOURS_PER_WEEK, smoothing * c);
        }
    }
    (n_how, n_hod)
}

/// The one scoring formula, shared by profiles and the backtest so both rank identically:
/// `out[h] = n[h] + β·n_hod[h mod 24]/7 + κ·pop[h]`, written in place.
pub(super) fn week_scores(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sendtime::counts::tests::e;

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
        let m = SendTimeModel::fit(&counts, [Hyper::new(1.0, 0.0, 0.0).unwrap(); 4]).unwrap();
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
        // Each channel smoothed differently, so a mix-up of channels would show.
        let hyper = [
            (2.0, 1.0, 0.0),
            (1.0, 0.0, 0.5),
            (4.0, 2.0, 0.25),
            (0.5, 3.0, 1.0),
        ]
        .map(|(k, b, g)| Hyper::new(k, b, g).unwrap());
        let m = SendTimeModel::fit(&counts, hyper).unwrap();
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
                    let h = m.hyper(ch);
                    let (n_how, n_hod) = dense_counts(list, h.smoothing);
                    week_scores(
                        &n_how,
                        &n_hod,
                        h.kappa,
                        h.beta,
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

    #[test]
    fn smoothing_is_circular_and_keeps_the_mass() {
        // Sunday 23:00 lends to Monday 00:00 and Sunday 22:00; hours of day wrap the same way.
        let (n_how, n_hod) = dense_counts(&[(167, 2), (30, 1)], 0.25);
        assert_eq!((n_how[167], n_how[166], n_how[0]), (2.0, 0.5, 0.5));
        assert_eq!((n_how[30], n_how[29], n_how[31]), (1.0, 0.25, 0.25));
        assert_eq!((n_hod[23], n_hod[22], n_hod[0]), (2.0, 0.5, 0.5));
        let total = 3.0 * 1.5;
        assert!((n_how.iter().sum::<f64>() - total).abs() < 1e-12);
        assert!((n_hod.iter().sum::<f64>() - total).abs() < 1e-12);
        assert!(Hyper::new(1.0, 0.0, 1.5).is_err() && Hyper::new(0.0, 0.0, 0.0).is_err());
    }
}
