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
