//! Choosing κ and β by backtest on held-out engagements, against the population-best baseline.

use serde::{Deserialize, Serialize};

use super::counts::{CustomerCounts, Engagement, SendTimeCounts};
use super::model::{
    ProfileSource, SendTimeModel, check_hyper, dense_counts, top3_slots, week_scores,
};
use super::{Channel, HOURS_PER_DAY, HOURS_PER_WEEK, N_CHANNELS, Result, SendTimeError};

/// A κ grid spanning "trust one event" to "trust the population": κ is in pseudo-events.
pub const DEFAULT_GRID_KAPPA: &[f64] = &[0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
/// A β grid from "no hour-of-day pooling" to "hour of day dominates".
pub const DEFAULT_GRID_BETA: &[f64] = &[0.0, 0.5, 1.0, 2.0, 4.0];

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
