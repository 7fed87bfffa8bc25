//! Beta posteriors of each action's response rate per segment.
//!
//! The prior of a cell is centred on the propensity ranking already uses (the model's or the
//! kind's): the mean of the static propensities of the contacts counted in it, or, before any,
//! the current customer's. Its strength is [`PRIOR_STRENGTH`] pseudo-contacts, so `n` observed
//! contacts with `r` responses give Beta(4·p + r, 4·(1 − p) + n − r).

use serde::Serialize;

use crate::segment::Segment;
use crate::stats::beta_quantile;

/// The prior's weight in contacts. Chosen on the simulator (`lattice simulate`, a toy problem):
/// 4 lets a cell leave a wrong static propensity after a few dozen contacts while a handful of
/// early responses cannot swing it. Not tuned on real data; revisit with a backtest on logs.
pub const PRIOR_STRENGTH: f64 = 4.0;

/// What one action × segment cell has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cell {
    /// Closed decisions (contacts whose response window has ended, or that responded).
    pub contacts: u64,
    pub responses: u64,
    /// Sum of the static propensities of those contacts: the prior's centre is their mean.
    pub prior_sum: f64,
}

/// A Beta distribution's two parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beta {
    pub alpha: f64,
    pub beta: f64,
}

impl Beta {
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// The equal-tailed interval holding `level` of the mass (0.95: 2.5% to 97.5%).
    pub fn interval(&self, level: f64) -> (f64, f64) {
        let tail = (1.0 - level) / 2.0;
        (
            beta_quantile(tail, self.alpha, self.beta),
            beta_quantile(1.0 - tail, self.alpha, self.beta),
        )
    }
}

impl Cell {
    /// The prior's centre: the mean static propensity of the contacts seen, else `fallback`.
    pub fn prior_mean(&self, fallback: f64) -> f64 {
        let p = if self.contacts > 0 {
            self.prior_sum / self.contacts as f64
        } else {
            fallback
        };
        // Keep both parameters positive: a kind's 0 or 1 is not certainty.
        if p.is_finite() {
            p.clamp(1e-3, 1.0 - 1e-3)
        } else {
            0.5
        }
    }

    /// The posterior, with `fallback` as the prior's centre when the cell is empty.
    pub fn posterior(&self, fallback: f64) -> Beta {
        let p = self.prior_mean(fallback);
        Beta {
            alpha: PRIOR_STRENGTH * p + self.responses as f64,
            beta: PRIOR_STRENGTH * (1.0 - p) + (self.contacts - self.responses) as f64,
        }
    }

    /// Counts one closed decision.
    pub fn record(&mut self, static_propensity: f64, responded: bool) {
        self.contacts += 1;
        self.responses += u64::from(responded);
        self.prior_sum += if static_propensity.is_finite() {
            static_propensity.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
}

/// Every action × segment cell of one catalog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Posteriors {
    actions: usize,
    segments: usize,
    cells: Vec<Cell>,
}

impl Posteriors {
    pub fn new(actions: usize, segments: usize) -> Self {
        Posteriors {
            actions,
            segments,
            cells: vec![Cell::default(); actions * segments],
        }
    }

    pub fn actions(&self) -> usize {
        self.actions
    }

    pub fn segments(&self) -> usize {
        self.segments
    }

    /// The cell of `action` (catalog index) in `segment`; `None` outside the table.
    pub fn cell(&self, action: usize, segment: Segment) -> Option<&Cell> {
        self.index(action, segment).map(|i| &self.cells[i])
    }

    fn index(&self, action: usize, segment: Segment) -> Option<usize> {
        (action < self.actions && segment.0 < self.segments)
            .then(|| action * self.segments + segment.0)
    }

    /// Counts one closed decision; `false` (nothing counted) outside the table.
    pub fn record(
        &mut self,
        action: usize,
        segment: Segment,
        static_propensity: f64,
        responded: bool,
    ) -> bool {
        match self.index(action, segment) {
            Some(i) => {
                self.cells[i].record(static_propensity, responded);
                true
            }
            None => false,
        }
    }

    /// The served propensity: the posterior mean (`static_propensity` centres an empty cell's
    /// prior; outside the table the prior alone answers).
    pub fn mean(&self, action: usize, segment: Segment, static_propensity: f64) -> f64 {
        self.posterior(action, segment, static_propensity).mean()
    }

    pub fn posterior(&self, action: usize, segment: Segment, static_propensity: f64) -> Beta {
        self.cell(action, segment)
            .copied()
            .unwrap_or_default()
            .posterior(static_propensity)
    }
}
