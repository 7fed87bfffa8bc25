//! Posteriors, segments and the distributions behind their intervals.

use lattice_learn::stats::{beta_cdf, beta_quantile, ln_gamma, normal_quantile};
use lattice_learn::{Beta, PRIOR_STRENGTH, Posteriors, Segment, Segments};

#[test]
fn prior_is_centred_on_the_static_propensity_then_data_take_over() {
    let mut p = Posteriors::new(2, 3);
    let s = Segment(1);
    // Empty: the customer's static propensity, exactly (strength 4 around it).
    assert!((p.mean(0, s, 0.3) - 0.3).abs() < 1e-12);
    let b = p.posterior(0, s, 0.3);
    assert!((b.alpha + b.beta - PRIOR_STRENGTH).abs() < 1e-12);
    // 1,000 contacts at 10% with a prior at 30%: the data win.
    for i in 0..1000 {
        p.record(0, s, 0.3, i % 10 == 0);
    }
    let m = p.mean(0, s, 0.9);
    assert!((m - (4.0 * 0.3 + 100.0) / 1004.0).abs() < 1e-12, "{m}");
    let (lo, hi) = p.posterior(0, s, 0.9).interval(0.95);
    assert!(lo < 0.101 && 0.101 < hi && hi - lo < 0.05, "{lo} {hi}");
    // Other cells untouched; outside the table nothing is counted.
    assert_eq!(p.cell(1, s).unwrap().contacts, 0);
    assert!(!p.record(5, s, 0.3, true));
    assert!(!p.record(0, Segment(9), 0.3, true));
}

#[test]
fn segments_are_tier_by_churn_band() {
    let s = Segments::new(["bronze", "silver", "gold"]);
    assert_eq!(s.len(), 12);
    assert_eq!(s.name(s.of(Some("gold"), 0.7)), "gold/high");
    assert_eq!(s.name(s.of(Some("silver"), 0.3)), "silver/medium");
    assert_eq!(s.name(s.of(None, 0.1)), "none/low");
    assert_eq!(s.name(s.of(Some("diamond"), f64::NAN)), "none/low");
}

#[test]
fn beta_and_normal_quantiles_match_known_values() {
    assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
    assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    // Beta(1, 1) is uniform; Beta(2, 1) has CDF x².
    assert!((beta_cdf(0.3, 1.0, 1.0) - 0.3).abs() < 1e-12);
    assert!((beta_cdf(0.6, 2.0, 1.0) - 0.36).abs() < 1e-12);
    assert!((beta_quantile(0.25, 2.0, 1.0) - 0.5).abs() < 1e-8);
    // scipy.stats.beta.ppf([0.025, 0.975], 12, 130) = [0.04475044, 0.13530079]
    let b = Beta {
        alpha: 12.0,
        beta: 130.0,
    };
    let (lo, hi) = b.interval(0.95);
    assert!((lo - 0.044_750_44).abs() < 1e-7, "{lo}");
    assert!((hi - 0.135_300_79).abs() < 1e-7, "{hi}");
    assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-6);
    assert!((normal_quantile(0.5)).abs() < 1e-12);
}
