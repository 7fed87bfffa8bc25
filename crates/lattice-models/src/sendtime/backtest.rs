//! Choosing each channel's smoothing by backtest on held-out activity, against the population's
//! best hours and the customer's own raw best hours.

use serde::{Deserialize, Serialize};

use super::counts::{CustomerCounts, Engagement, SendTimeCounts};
use super::model::{
    Hyper, ProfileSource, SendTimeModel, dense_counts, per_channel as per_channel_serde,
    top3_slots, week_scores,
};
use super::{Channel, HOURS_PER_DAY, HOURS_PER_WEEK, N_CHANNELS, Result, SendTimeError};

/// The hyper-parameters [`select`] tries: every combination of the three lists.
#[derive(Debug, Clone, Copy)]
pub struct Grid<'a> {
    pub kappa: &'a [f64],
    pub beta: &'a [f64],
    pub smoothing: &'a [f64],
}

impl Grid<'static> {
    /// κ from "trust a couple of events" to "trust the population" (pseudo-events); β from
    /// hour-of-week profiles (0) to hour-of-day profiles in effect (15: a customer's other
    /// days at an hour count twice their own day); smoothing from none to half of each count
    /// lent to each neighbouring hour. κ in powers of two and 1 + β in powers of two make
    /// several points share κ / (1 + β), the one number the hour-of-day ranking depends on,
    /// so the tie-break on hour-of-week hits picks β among them (see [`select`]).
    pub const DEFAULT: Grid<'static> = Grid {
        kappa: &[0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
        beta: &[0.0, 1.0, 3.0, 15.0],
        smoothing: &[0.0, 0.25, 0.5],
    };
}

/// hit@1 and hit@3 of held-out activity, at hour-of-week and at hour-of-day level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct HitRates {
    pub hour_of_week_hit_at_1: f64,
    pub hour_of_week_hit_at_3: f64,
    pub hour_of_day_hit_at_1: f64,
    pub hour_of_day_hit_at_3: f64,
}

/// The model and two baselines on the same held-out activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub n_heldout: u64,
    pub model: HitRates,
    /// The channel population's best hours, the same for everyone.
    pub baseline: HitRates,
    /// The customer's own raw best hours from the same source the model uses (ties, and
    /// customers without any activity, in the population's order).
    pub own: HitRates,
}

/// What the headline figures are measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldOut {
    /// Opens and clicks on email, SMS and push.
    Engagements,
    /// All activity (purchases, visits, …): the data has no channel engagements after the cutoff.
    AllActivity,
}

/// One channel's choice and its measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    pub channel: Channel,
    /// Chosen on this channel's held-out activity.
    pub hyper: Hyper,
    #[serde(flatten)]
    pub comparison: Comparison,
    /// Only customers with training activity (their profile is not the population's, so this
    /// is where the model can differ from the population baseline).
    pub with_history: Comparison,
    /// Every grid point's figures when the hyper-parameters were chosen here ([`select`]);
    /// empty when they were given ([`measure`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grid: Vec<GridPoint>,
}

/// One point of the grid and how it scored on a channel's held-out activity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GridPoint {
    #[serde(flatten)]
    pub hyper: Hyper,
    pub model: HitRates,
}

/// What [`select`] measured; goes into `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// The hyper-parameters the figures are for, per channel: chosen here by [`select`] (a
    /// channel without held-out activity takes `any`'s choice), or given to [`measure`].
    #[serde(with = "per_channel_serde")]
    pub hyper: [Hyper; N_CHANNELS],
    pub heldout: HeldOut,
    /// The headline: held-out events of the engagement channels (or, with none, all activity),
    /// each scored with its channel's chosen hyper-parameters.
    #[serde(flatten)]
    pub comparison: Comparison,
    /// The headline's events of customers with training activity.
    pub with_history: Comparison,
    /// Channels with held-out activity. `any` is all activity: every engagement is scored
    /// under its channel and again under `any`, as the counts hold it.
    pub per_channel: Vec<ChannelReport>,
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

    /// The selection order: the `top3_hours_of_day` output first, then the hour of week.
    fn key(&self) -> (u64, u64, u64, u64) {
        (self.hod3, self.how3, self.hod1, self.how1)
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

/// Hits per channel, for all held-out events and for those of customers with history.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    all: [Hits; N_CHANNELS],
    with_history: [Hits; N_CHANNELS],
}

impl Tally {
    fn add(&mut self, c: usize, history: bool, group: &[(u32, u8, u8)], top: &([u8; 3], [u8; 3])) {
        for &(_, _, how) in group {
            self.all[c].add(how, &top.0, &top.1);
            if history {
                self.with_history[c].add(how, &top.0, &top.1);
            }
        }
    }

    fn merge(&mut self, o: &Tally) {
        for c in 0..N_CHANNELS {
            self.all[c].merge(&o.all[c]);
            self.with_history[c].merge(&o.with_history[c]);
        }
    }
}

/// Chooses each channel's κ, β and smoothing by backtest: fits on `train` (counts up to a
/// cutoff) and scores `heldout` (activity after it, split by the caller): each event's hour
/// against the customer's predicted top slots on the event's channel, and every engagement on
/// email, SMS or push once more under `any`. Per channel, keeps the grid point with the best
/// hour-of-day hit@3 (what `top3_hours_of_day` serves), ties broken by hour-of-week hit@3, then
/// hour-of-day and hour-of-week hit@1, then the first in grid order (κ, then β, then smoothing).
/// Choose on a validation window and report the choice's figures on a later one with
/// [`measure`]: the figures here are the best of many tries.
///
/// The returned model is fitted on `train`; to serve, refit on the full history with
/// `report.hyper`. Uses up to `available_parallelism` threads.
pub fn select(
    train: &SendTimeCounts,
    heldout: &[Engagement],
    grid: &Grid<'_>,
) -> Result<(SendTimeModel, BacktestReport)> {
    let mut points = Vec::new();
    for &k in grid.kappa {
        for &b in grid.beta {
            for &g in grid.smoothing {
                points.push(Hyper::new(k, b, g)?);
            }
        }
    }
    if points.is_empty() {
        return Err(SendTimeError::Backtest(
            "the κ, β and smoothing grids must not be empty".into(),
        ));
    }
    let (base, total) = tally(train, heldout, &points)?;
    let mut chosen = [None; N_CHANNELS];
    for (c, pick) in chosen.iter_mut().enumerate() {
        if total.baseline.all[c].n > 0 {
            let mut best = 0;
            for (g, t) in total.grid.iter().enumerate() {
                if t.all[c].key() > total.grid[best].all[c].key() {
                    best = g;
                }
            }
            *pick = Some(best);
        }
    }
    let report = report(&total, &points, chosen, true);
    Ok((base.with_hyper(report.hyper)?, report))
}

/// The figures of given per-channel hyper-parameters (e.g. chosen by [`select`] on an earlier
/// window) on `heldout`, against the same baselines: an honest test-window measurement.
pub fn measure(
    train: &SendTimeCounts,
    heldout: &[Engagement],
    hyper: [Hyper; N_CHANNELS],
) -> Result<BacktestReport> {
    let mut points: Vec<Hyper> = Vec::new();
    let mut chosen = [None; N_CHANNELS];
    for (c, h) in hyper.iter().enumerate() {
        let h = h.check()?;
        let i = match points.iter().position(|p| *p == h) {
            Some(i) => i,
            None => {
                points.push(h);
                points.len() - 1
            }
        };
        chosen[c] = Some(i);
    }
    let (_, total) = tally(train, heldout, &points)?;
    let mut report = report(&total, &points, chosen, false);
    report.hyper = hyper;
    Ok(report)
}

/// Checks the held-out events and tallies every point's hits, and the baselines', on them.
fn tally(
    train: &SendTimeCounts,
    heldout: &[Engagement],
    points: &[Hyper],
) -> Result<(SendTimeModel, Scored)> {
    if heldout.is_empty() {
        return Err(SendTimeError::Backtest(
            "no held-out activity to score".into(),
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
    let base = SendTimeModel::fit(train, [points[0]; N_CHANNELS])?;

    // Group held-out events by (customer, channel): one profile per group and grid point.
    let any = Channel::Any.index() as u8;
    let mut keyed: Vec<(u32, u8, u8)> = Vec::with_capacity(heldout.len() * 2);
    for e in heldout {
        let c = e.channel.index() as u8;
        keyed.push((e.customer, c, e.how));
        if c != any {
            keyed.push((e.customer, any, e.how));
        }
    }
    keyed.sort_unstable();
    let groups: Vec<&[(u32, u8, u8)]> = keyed.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1).collect();

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(groups.len().div_ceil(1024))
        .max(1);
    let chunk = groups.len().div_ceil(threads);
    let partials: Vec<Scored> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .chunks(chunk)
            .map(|part| scope.spawn(|| score_groups(&base, train, part, points)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut total = Scored::new(points.len());
    for p in &partials {
        total.merge(p);
    }
    Ok((base, total))
}

/// The report for the point `chosen[c]` of each channel `c` (`None`: no held-out activity on
/// it, so it takes `any`'s).
fn report(
    total: &Scored,
    points: &[Hyper],
    chosen: [Option<usize>; N_CHANNELS],
    with_grid: bool,
) -> BacktestReport {
    let mut per_channel = Vec::new();
    for channel in Channel::ALL {
        let c = channel.index();
        let Some(best) = chosen[c].filter(|_| total.baseline.all[c].n > 0) else {
            continue;
        };
        let compare = |pick: fn(&Tally) -> &[Hits; N_CHANNELS]| Comparison {
            n_heldout: pick(&total.baseline)[c].n,
            model: pick(&total.grid[best])[c].rates(),
            baseline: pick(&total.baseline)[c].rates(),
            own: pick(&total.own)[c].rates(),
        };
        per_channel.push(ChannelReport {
            channel,
            hyper: points[best],
            comparison: compare(|t| &t.all),
            with_history: compare(|t| &t.with_history),
            grid: if with_grid {
                points
                    .iter()
                    .zip(&total.grid)
                    .map(|(&hyper, t)| GridPoint {
                        hyper,
                        model: t.all[c].rates(),
                    })
                    .collect()
            } else {
                Vec::new()
            },
        });
    }
    let of = |c: Channel| per_channel.iter().find(|r| r.channel == c).map(|r| r.hyper);
    let any = of(Channel::Any).unwrap_or(Hyper::DEFAULT);
    let hyper = Channel::ALL.map(|c| of(c).unwrap_or(any));

    let engaged = [Channel::Email, Channel::Sms, Channel::Push];
    let (heldout, headline): (HeldOut, &[Channel]) =
        if engaged.iter().any(|c| total.baseline.all[c.index()].n > 0) {
            (HeldOut::Engagements, &engaged)
        } else {
            (HeldOut::AllActivity, &[Channel::Any])
        };
    let pooled = |pick: fn(&Tally) -> &[Hits; N_CHANNELS]| {
        let (mut m, mut b, mut o) = (Hits::default(), Hits::default(), Hits::default());
        for ch in headline {
            let c = ch.index();
            b.merge(&pick(&total.baseline)[c]);
            o.merge(&pick(&total.own)[c]);
            if let Some(i) = chosen[c] {
                m.merge(&pick(&total.grid[i])[c]);
            }
        }
        Comparison {
            n_heldout: b.n,
            model: m.rates(),
            baseline: b.rates(),
            own: o.rates(),
        }
    };
    BacktestReport {
        hyper,
        heldout,
        comparison: pooled(|t| &t.all),
        with_history: pooled(|t| &t.with_history),
        per_channel,
    }
}

/// The two baselines' tallies and one per grid point.
struct Scored {
    baseline: Tally,
    own: Tally,
    grid: Vec<Tally>,
}

impl Scored {
    fn new(points: usize) -> Self {
        Scored {
            baseline: Tally::default(),
            own: Tally::default(),
            grid: vec![Tally::default(); points],
        }
    }

    fn merge(&mut self, o: &Scored) {
        self.baseline.merge(&o.baseline);
        self.own.merge(&o.own);
        for (a, b) in self.grid.iter_mut().zip(&o.grid) {
            a.merge(b);
        }
    }
}

/// The top hours of week and of day for some counts: the one ranking the model serves, in
/// closed form (normalising does not reorder, up to rounding; hour-of-day scores are the week
/// scores summed over the seven days).
fn top_slots(
    n_how: &[f64; HOURS_PER_WEEK],
    n_hod: &[f64; HOURS_PER_DAY],
    h: Hyper,
    pop: &[f64; HOURS_PER_WEEK],
    pop_hod: &[f64; HOURS_PER_DAY],
) -> ([u8; 3], [u8; 3]) {
    let mut s = [0.0; HOURS_PER_WEEK];
    week_scores(n_how, n_hod, h.kappa, h.beta, pop, &mut s);
    let mut d = [0.0; HOURS_PER_DAY];
    for (i, v) in d.iter_mut().enumerate() {
        *v = (1.0 + h.beta) * n_hod[i] + h.kappa * pop_hod[i];
    }
    (top3_slots(&s), top3_slots(&d))
}

/// Tallies for some groups of held-out events.
fn score_groups(
    base: &SendTimeModel,
    train: &SendTimeCounts,
    groups: &[&[(u32, u8, u8)]],
    points: &[Hyper],
) -> Scored {
    let pop_top: [([u8; 3], [u8; 3]); N_CHANNELS] = std::array::from_fn(|c| {
        (
            top3_slots(&base.population[c]),
            top3_slots(&base.population_hod[c]),
        )
    });
    // The customer's own counts, ties broken by the population: a prior too weak to outweigh
    // any event.
    let own = Hyper {
        kappa: 1e-9,
        beta: 0.0,
        smoothing: 0.0,
    };
    let mut out = Scored::new(points.len());
    let mut dense = Vec::new();
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
        out.baseline.add(c, history, group, &pop_top[c]);
        if !history {
            // The profile is the population's whatever the hyper-parameters are.
            out.own.add(c, false, group, &pop_top[c]);
            for t in &mut out.grid {
                t.add(c, false, group, &pop_top[c]);
            }
            continue;
        }
        let (pop, pop_hod) = (&base.population[c], &base.population_hod[c]);
        let (n_how, n_hod) = dense_counts(list, 0.0);
        out.own.add(
            c,
            true,
            group,
            &top_slots(&n_how, &n_hod, own, pop, pop_hod),
        );
        // Smoothed counts once per smoothing value, not per grid point.
        dense.clear();
        for (t, h) in out.grid.iter_mut().zip(points) {
            let i = match dense.iter().position(|(g, _)| *g == h.smoothing) {
                Some(i) => i,
                None => {
                    dense.push((h.smoothing, dense_counts(list, h.smoothing)));
                    dense.len() - 1
                }
            };
            let (n_how, n_hod) = &dense[i].1;
            t.add(c, true, group, &top_slots(n_how, n_hod, *h, pop, pop_hod));
        }
    }
    out
}
