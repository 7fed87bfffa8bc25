//! Choosing: deterministic per decision id, greedy is the posterior mean, logged
//! probabilities match the exact ones.

use lattice_learn::thompson::{DRAWS, beta_sample, thompson_shares};
use lattice_learn::{Arm, Beta, choose};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn arm(id: &str, alpha: f64, beta: f64) -> Arm<'_> {
    Arm {
        id,
        posterior: Beta { alpha, beta },
        value: 10.0,
        weight: 1.0,
        cost: 0.0,
    }
}

#[test]
fn the_same_decision_id_always_gets_the_same_draw() {
    let arms = [arm("a", 3.0, 7.0), arm("b", 2.0, 8.0), arm("c", 1.0, 3.0)];
    for i in 0..200 {
        let id = format!("d-{i}");
        let first = choose(&arms, &id, 1.0).unwrap();
        assert_eq!(choose(&arms, &id, 1.0).unwrap(), first);
        assert!(first.explored);
        assert!(first.probability >= 1.0 / DRAWS as f64 && first.probability <= 1.0);
    }
    // Different ids explore differently.
    let picks: std::collections::HashSet<usize> = (0..200)
        .map(|i| choose(&arms, &format!("d-{i}"), 1.0).unwrap().arm)
        .collect();
    assert_eq!(picks.len(), 3);
}

#[test]
fn greedy_takes_the_best_mean_with_probability_one() {
    let arms = [arm("a", 3.0, 7.0), arm("b", 5.0, 5.0), arm("c", 1.0, 3.0)];
    let c = choose(&arms, "x", 0.0).unwrap();
    assert_eq!((c.arm, c.probability, c.explored), (1, 1.0, false));
    assert_eq!(c.propensities, vec![0.3, 0.5, 0.25]);
    assert!(choose(&[], "x", 0.5).is_none());
    // One arm: chosen for sure, exploring or not.
    assert_eq!(choose(&arms[..1], "x", 1.0).unwrap().probability, 1.0);
}

#[test]
fn logged_probability_matches_the_exact_one() {
    // Two arms, Beta(1,1) vs Beta(2,1): P(second wins) = P(U < max of two U) = 2/3.
    let arms = [arm("a", 1.0, 1.0), arm("b", 2.0, 1.0)];
    let shares = thompson_shares(&arms, "seed");
    assert!((shares[1] - 2.0 / 3.0).abs() < 0.05, "{shares:?}");
    // Averaged over decisions, the logged probability of "b" when chosen is 2/3 too.
    let mut sum = 0.0;
    let mut n = 0;
    for i in 0..300 {
        let c = choose(&arms, &format!("d{i}"), 1.0).unwrap();
        if c.arm == 1 {
            sum += c.probability;
            n += 1;
        }
    }
    assert!((sum / f64::from(n) - 2.0 / 3.0).abs() < 0.01);
    // Half exploring: the greedy arm gets 0.5 + 0.5 × its Thompson share.
    let c = choose(&arms, "d-mixed", 0.5).unwrap();
    let p_b = 0.5 + 0.5 * (2.0 / 3.0);
    let expected = if c.arm == 1 { p_b } else { 1.0 - p_b };
    assert!((c.probability - expected).abs() < 0.05, "{c:?}");
}

#[test]
fn beta_sampler_has_the_right_moments() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (a, b) in [(0.3, 2.0), (2.0, 5.0), (40.0, 900.0)] {
        let n = 40_000;
        let xs: Vec<f64> = (0..n)
            .map(|_| beta_sample(&mut rng, a, b).unwrap())
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let m = a / (a + b);
        let v = a * b / ((a + b).powi(2) * (a + b + 1.0));
        assert!(
            (mean - m).abs() < 4.0 * (v / n as f64).sqrt() + 1e-9,
            "{a} {b}: {mean} vs {m}"
        );
        assert!((var / v - 1.0).abs() < 0.05, "{a} {b}: {var} vs {v}");
    }
    assert!(beta_sample(&mut rng, 0.0, 1.0).is_none());
    assert!(beta_sample(&mut rng, 1.0, f64::NAN).is_none());
}
