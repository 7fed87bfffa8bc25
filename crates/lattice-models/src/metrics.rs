//! Evaluation metrics for probabilistic classifiers: discrimination (AUC), proper scores (log
//! loss, Brier), calibration (expected calibration error, reliability table) and targeting
//! (lift and precision by decile).

use serde::{Deserialize, Serialize};

/// Area under the ROC curve by the rank-sum formula, ties given half credit. `None` when only
/// one class is present.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len());
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0.0, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        // Average 1-based rank of the tie group i..=j.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += rank;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    Some((rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64))
}

const EPS: f64 = 1e-15;

pub fn log_loss(probs: &[f64], labels: &[bool]) -> f64 {
    let n = probs.len().max(1) as f64;
    probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| {
            let p = p.clamp(EPS, 1.0 - EPS);
            if y { -p.ln() } else { -(1.0 - p).ln() }
        })
        .sum::<f64>()
        / n
}

pub fn brier(probs: &[f64], labels: &[bool]) -> f64 {
    let n = probs.len().max(1) as f64;
    probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| (p - f64::from(u8::from(y))).powi(2))
        .sum::<f64>()
        / n
}

/// One bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    pub count: usize,
    pub mean_predicted: f64,
    pub observed_rate: f64,
}

/// Equal-width reliability table over [0, 1]; empty bins are omitted.
pub fn reliability(probs: &[f64], labels: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    let mut n = vec![0usize; bins];
    for (&p, &y) in probs.iter().zip(labels) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sum_p[b] += p;
        sum_y[b] += f64::from(u8::from(y));
        n[b] += 1;
    }
    (0..bins)
        .filter(|&b| n[b] > 0)
        .map(|b| ReliabilityBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            count: n[b],
            mean_predicted: sum_p[b] / n[b] as f64,
            observed_rate: sum_y[b] / n[b] as f64,
        })
        .collect()
}

/// Expected calibration error: the count-weighted mean gap between predicted and observed rate
/// over `bins` equal-width bins.
pub fn ece(probs: &[f64], labels: &[bool], bins: usize) -> f64 {
    let total = probs.len().max(1) as f64;
    reliability(probs, labels, bins)
        .iter()
        .map(|b| b.count as f64 / total * (b.mean_predicted - b.observed_rate).abs())
        .sum()
}

/// At most this many points are kept of a ROC curve (see [`roc`]).
pub const ROC_POINTS: usize = 200;

/// The ROC curve as (false positive rate, true positive rate) points from (0, 0) to (1, 1), one
/// per distinct score (ties form one step, the diagonal segment that gives them half credit),
/// thinned to at most [`ROC_POINTS`]: a point is kept when the curve has travelled at least
/// 2 / (`ROC_POINTS` − 2) in FPR + TPR since the last kept one (the whole curve travels 2), and
/// the end points are always kept. Rates are rounded to 4 decimals. Empty when only one class
/// is present.
pub fn roc(scores: &[f64], labels: &[bool]) -> Vec<(f64, f64)> {
    assert_eq!(scores.len(), labels.len());
    let pos = labels.iter().filter(|&&y| y).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let step = 2.0 / (ROC_POINTS - 2) as f64;
    let round = |v: f64| (v * 1e4).round() / 1e4;
    let mut out = vec![(0.0, 0.0)];
    let (mut last_fpr, mut last_tpr) = (0.0, 0.0);
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            if labels[k] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        i = j + 1;
        let (fpr, tpr) = (fp as f64 / neg as f64, tp as f64 / pos as f64);
        if i == idx.len() || (fpr - last_fpr) + (tpr - last_tpr) >= step {
            out.push((round(fpr), round(tpr)));
            (last_fpr, last_tpr) = (fpr, tpr);
        }
    }
    out
}

/// Positive rate per score decile, highest scores first, and its lift over the base rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decile {
    pub decile: usize,
    pub count: usize,
    pub mean_predicted: f64,
    pub positive_rate: f64,
    pub lift: f64,
}

pub fn deciles(scores: &[f64], labels: &[bool]) -> Vec<Decile> {
    let n = scores.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let base = labels.iter().filter(|&&y| y).count() as f64 / n.max(1) as f64;
    (0..10)
        .filter_map(|d| {
            let (lo, hi) = (d * n / 10, (d + 1) * n / 10);
            if hi <= lo {
                return None;
            }
            let part = &idx[lo..hi];
            let pos = part.iter().filter(|&&i| labels[i]).count() as f64;
            let rate = pos / part.len() as f64;
            Some(Decile {
                decile: d + 1,
                count: part.len(),
                mean_predicted: part.iter().map(|&i| scores[i]).sum::<f64>() / part.len() as f64,
                positive_rate: rate,
                lift: if base > 0.0 { rate / base } else { 0.0 },
            })
        })
        .collect()
}

/// Everything `lattice evaluate` reports for one binary target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    pub n: usize,
    pub base_rate: f64,
    pub auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    pub ece: f64,
    pub top_decile_precision: f64,
    pub top_decile_lift: f64,
    pub reliability: Vec<ReliabilityBin>,
    pub deciles: Vec<Decile>,
    /// ROC curve points (false positive rate, true positive rate), see [`roc`]; absent from
    /// reports written before it was added.
    #[serde(default)]
    pub roc: Vec<(f64, f64)>,
}

impl BinaryMetrics {
    pub fn compute(probs: &[f64], labels: &[bool]) -> Self {
        let d = deciles(probs, labels);
        let top = d.first();
        BinaryMetrics {
            n: probs.len(),
            base_rate: labels.iter().filter(|&&y| y).count() as f64 / probs.len().max(1) as f64,
            auc: auc(probs, labels),
            log_loss: log_loss(probs, labels),
            brier: brier(probs, labels),
            ece: ece(probs, labels, 10),
            top_decile_precision: top.map_or(0.0, |d| d.positive_rate),
            top_decile_lift: top.map_or(0.0, |d| d.lift),
            reliability: reliability(probs, labels, 10),
            deciles: d,
            roc: roc(probs, labels),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_known_values() {
        assert_eq!(
            auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(
            auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]),
            Some(0.0)
        );
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        // 3 of 4 positive-negative pairs ordered correctly.
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn proper_scores() {
        assert!((brier(&[1.0, 0.0], &[true, false])).abs() < 1e-12);
        assert!((log_loss(&[0.5], &[true]) - std::f64::consts::LN_2).abs() < 1e-12);
    }

    #[test]
    fn calibrated_predictions_have_small_ece() {
        // 10% predicted, 1 in 10 positive; 80% predicted, 8 in 10 positive.
        let mut p = vec![0.1; 10];
        p.extend(vec![0.8; 10]);
        let mut y = vec![false; 20];
        y[0] = true;
        for v in y.iter_mut().skip(10).take(8) {
            *v = true;
        }
        assert!(ece(&p, &y, 10) < 1e-12);
        assert!(ece(&[0.9; 20], &y, 10) > 0.4);
    }

    /// Area under a polyline of (FPR, TPR) points by the trapezoid rule.
    fn trapezoid(points: &[(f64, f64)]) -> f64 {
        points
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum()
    }

    #[test]
    fn roc_curve_matches_auc() {
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert_eq!(
            roc(&s, &y),
            [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert!((trapezoid(&roc(&s, &y)) - auc(&s, &y).unwrap()).abs() < 1e-12);
        // Ties are one diagonal step: half credit, as in `auc`.
        assert_eq!(roc(&[0.5, 0.5], &[false, true]), [(0.0, 0.0), (1.0, 1.0)]);
        assert!(roc(&[0.1, 0.2], &[true, true]).is_empty());

        // Many distinct scores: thinned to at most ROC_POINTS, ends kept, area preserved.
        let mut state = 7u64;
        let mut rand = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let s: Vec<f64> = (0..20_000).map(|_| rand()).collect();
        let y: Vec<bool> = s.iter().map(|&p| rand() < p).collect();
        let r = roc(&s, &y);
        assert!(
            r.len() <= ROC_POINTS && r.len() > ROC_POINTS / 2,
            "{}",
            r.len()
        );
        assert_eq!((r[0], r[r.len() - 1]), ((0.0, 0.0), (1.0, 1.0)));
        assert!(r.windows(2).all(|w| w[1].0 >= w[0].0 && w[1].1 >= w[0].1));
        let a = auc(&s, &y).unwrap();
        assert!((trapezoid(&r) - a).abs() < 2e-3, "{} vs {a}", trapezoid(&r));
    }

    #[test]
    fn metrics_without_roc_still_load() {
        let m = BinaryMetrics::compute(&[0.2, 0.7, 0.4], &[false, true, false]);
        let mut v = serde_json::to_value(&m).unwrap();
        v.as_object_mut().unwrap().remove("roc");
        let old: BinaryMetrics = serde_json::from_value(v).unwrap();
        assert!(old.roc.is_empty());
        assert_eq!(old.auc, m.auc);
    }

    #[test]
    fn top_decile_lift() {
        let scores: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let labels: Vec<bool> = (0..100).map(|i| i >= 90).collect();
        let d = deciles(&scores, &labels);
        assert_eq!(d.len(), 10);
        assert_eq!(d[0].positive_rate, 1.0);
        assert!((d[0].lift - 10.0).abs() < 1e-12);
        assert_eq!(d[9].positive_rate, 0.0);
    }
}
