//! What the backtest (`metrics.json`) says about a score: how often customers with a given
//! predicted probability actually converted (to recalibrate the probabilities an audience's
//! expected conversions are summed from), and how concentrated conversions were in the top of
//! the ranking (the cumulative lift curve).
//!
//! Both come from the backtest's score deciles: for each tenth of the customers, ranked by the
//! score, the mean predicted probability and the observed positive rate.

use lattice_models::metrics::Decile;
use serde::Serialize;
use utoipa::ToSchema;

/// A monotone map from a model probability to the rate observed in the backtest.
///
/// The knots are the deciles' (mean predicted, positive rate), sorted by the prediction, with
/// the rates made non-decreasing by pool-adjacent-violators (weighted by the decile counts) so
/// that recalibrating never reorders customers. Between knots the map is linear. Below the
/// lowest knot it scales the probability by that knot's observed/predicted ratio (a line from
/// (0, 0)); above the highest it runs straight to (1, 1): the backtest says nothing about
/// probabilities above its best decile's mean, so the model's own certainty is kept at the
/// extreme rather than extrapolating a ratio (which would push every top customer to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    knots: Vec<(f64, f64)>,
}

impl Calibration {
    /// `None` when no decile has a count and finite numbers.
    pub fn from_deciles(deciles: &[Decile]) -> Option<Self> {
        let mut pts: Vec<(f64, f64, f64)> = deciles
            .iter()
            .filter(|d| d.count > 0 && d.mean_predicted.is_finite() && d.positive_rate.is_finite())
            .map(|d| {
                (
                    d.mean_predicted.clamp(0.0, 1.0),
                    d.positive_rate.clamp(0.0, 1.0),
                    d.count as f64,
                )
            })
            .collect();
        if pts.is_empty() {
            return None;
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Equal predictions are one point (their pooled rate).
        let mut merged: Vec<(f64, f64, f64)> = Vec::with_capacity(pts.len());
        for (m, y, w) in pts {
            match merged.last_mut() {
                Some(last) if last.0 == m => {
                    last.1 = (last.1 * last.2 + y * w) / (last.2 + w);
                    last.2 += w;
                }
                _ => merged.push((m, y, w)),
            }
        }
        // Pool adjacent violators: blocks of (rate, weight, number of points).
        let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(merged.len());
        for &(_, y, w) in &merged {
            blocks.push((y, w, 1));
            while blocks.len() > 1 {
                let n = blocks.len();
                let (b, a) = (blocks[n - 1], blocks[n - 2]);
                if a.0 <= b.0 {
                    break;
                }
                let w = a.1 + b.1;
                blocks[n - 2] = ((a.0 * a.1 + b.0 * b.1) / w, w, a.2 + b.2);
                blocks.pop();
            }
        }
        let rates = blocks
            .iter()
            .flat_map(|&(y, _, k)| std::iter::repeat_n(y, k));
        let knots = merged.iter().zip(rates).map(|(p, y)| (p.0, y)).collect();
        Some(Calibration { knots })
    }

    /// The recalibrated probability of a model probability `p` (NaN reads as 0).
    pub fn apply(&self, p: f64) -> f64 {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        let k = &self.knots;
        let (first, last) = (k[0], k[k.len() - 1]);
        if p <= first.0 {
            let (m, y) = first;
            return if m > 0.0 {
                (p * y / m).clamp(0.0, 1.0)
            } else {
                y
            };
        }
        if p >= last.0 {
            let (m, y) = last;
            return if m < 1.0 {
                (y + (p - m) / (1.0 - m) * (1.0 - y)).clamp(0.0, 1.0)
            } else {
                y
            };
        }
        for w in k.windows(2) {
            let ((m0, y0), (m1, y1)) = (w[0], w[1]);
            if p <= m1 {
                return y0 + (p - m0) / (m1 - m0) * (y1 - y0);
            }
        }
        last.1
    }

    pub fn knots(&self) -> &[(f64, f64)] {
        &self.knots
    }
}

/// One point of a cumulative lift curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct LiftPoint {
    /// Share of all customers targeted, best scores first (0–1].
    pub depth: f64,
    /// Positive rate among them over the overall positive rate.
    pub lift: f64,
}

/// The backtest's cumulative lift: targeting the top `depth` of customers by the score found
/// `lift` times the overall rate of positives.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftCurve {
    pub points: Vec<LiftPoint>,
    /// Overall positive rate in the backtest.
    pub base_rate: f64,
}

impl LiftCurve {
    /// From deciles in the backtest's order (best scores first); `None` without positives.
    pub fn from_deciles(deciles: &[Decile]) -> Option<Self> {
        let mut ds: Vec<&Decile> = deciles.iter().filter(|d| d.count > 0).collect();
        ds.sort_by_key(|d| d.decile);
        let total: f64 = ds.iter().map(|d| d.count as f64).sum();
        let positives: f64 = ds.iter().map(|d| d.count as f64 * d.positive_rate).sum();
        if total <= 0.0 || positives <= 0.0 || !positives.is_finite() {
            return None;
        }
        let base_rate = positives / total;
        let (mut n, mut pos) = (0.0, 0.0);
        let points = ds
            .iter()
            .map(|d| {
                n += d.count as f64;
                pos += d.count as f64 * d.positive_rate;
                LiftPoint {
                    depth: n / total,
                    lift: pos / n / base_rate,
                }
            })
            .collect();
        Some(LiftCurve { points, base_rate })
    }

    /// The lift at `depth` (share of customers targeted): flat at the first decile's lift
    /// above it (the backtest says nothing finer), linear between deciles.
    pub fn at(&self, depth: f64) -> f64 {
        let p = &self.points;
        let d = depth.clamp(0.0, 1.0);
        if d <= p[0].depth {
            return p[0].lift;
        }
        for w in p.windows(2) {
            if d <= w[1].depth {
                let t = (d - w[0].depth) / (w[1].depth - w[0].depth);
                return w[0].lift + t * (w[1].lift - w[0].lift);
            }
        }
        p[p.len() - 1].lift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decile(decile: usize, count: usize, mean_predicted: f64, positive_rate: f64) -> Decile {
        Decile {
            decile,
            count,
            mean_predicted,
            positive_rate,
            lift: 0.0,
        }
    }

    #[test]
    fn calibration_interpolates_pools_violators_and_extrapolates_by_ratio() {
        let d = [
            decile(1, 100, 0.5, 0.4),
            decile(2, 100, 0.2, 0.25),
            decile(3, 100, 0.1, 0.05),
            decile(4, 300, 0.05, 0.07), // above the next decile up: pooled with it
        ];
        let c = Calibration::from_deciles(&d).unwrap();
        // (0.05, 0.07) and (0.1, 0.05) pool to (300·0.07 + 100·0.05) / 400 = 0.065.
        assert_eq!(
            c.knots(),
            &[(0.05, 0.065), (0.1, 0.065), (0.2, 0.25), (0.5, 0.4)]
        );
        assert!((c.apply(0.35) - 0.325).abs() < 1e-12);
        assert!((c.apply(0.15) - 0.1575).abs() < 1e-12);
        // Below the lowest knot: its ratio; above the highest: straight on to (1, 1).
        assert!((c.apply(0.025) - 0.0325).abs() < 1e-12);
        assert!((c.apply(0.75) - 0.7).abs() < 1e-12);
        assert_eq!(c.apply(1.0), 1.0);
        assert_eq!(c.apply(f64::NAN), 0.0);
        // Monotone.
        let mut last = -1.0;
        for i in 0..=1000 {
            let v = c.apply(i as f64 / 1000.0);
            assert!(v >= last, "{i}");
            last = v;
        }
        assert!(Calibration::from_deciles(&[]).is_none());
    }

    #[test]
    fn lift_curve_is_cumulative() {
        // 10 deciles of 10 customers; 5 positives in the first, 3 in the second, 2 in the third.
        let mut d: Vec<Decile> = (1..=10).map(|k| decile(k, 10, 0.0, 0.0)).collect();
        d[0].positive_rate = 0.5;
        d[1].positive_rate = 0.3;
        d[2].positive_rate = 0.2;
        let c = LiftCurve::from_deciles(&d).unwrap();
        assert!((c.base_rate - 0.1).abs() < 1e-12);
        assert!((c.points[0].lift - 5.0).abs() < 1e-12);
        assert!((c.points[1].lift - 4.0).abs() < 1e-12);
        assert!((c.points[9].lift - 1.0).abs() < 1e-12);
        assert!((c.at(0.05) - 5.0).abs() < 1e-12);
        assert!((c.at(0.15) - 4.5).abs() < 1e-12);
        assert!((c.at(1.0) - 1.0).abs() < 1e-12);
        assert!(LiftCurve::from_deciles(&[decile(1, 10, 0.1, 0.0)]).is_none());
    }
}
