//! Choosing: deterministic per decision id, greedy is the posterior mean, logged
//! probabilities match the exact ones.

use lattice_learn::thompson::{
    MIN_PROBABILITY, Quadrature, beta_sample, thompson_shares, win_probability_with,
};
use lattice_learn::{Arm, Beta, choose, win_probability};
use rand::Rng;
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
        assert!(first.probability >= MIN_PROBABILITY && first.probability <= 1.0);
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

/// Random arms as the server makes them: priors of strength 4 centred anywhere (parameters
/// below 1 included), up to a few hundred closed decisions, values and costs of a catalog;
/// now and then an arm with no value (a fixed score) or a negative one.
fn random_arms<'a>(rng: &mut ChaCha8Rng, ids: &'a [String]) -> Vec<Arm<'a>> {
    let n = rng.gen_range(2..=6);
    ids[..n]
        .iter()
        .map(|id| {
            let p: f64 = rng.gen_range(0.02..0.95);
            let contacts = [0u32, 3, 20, 150, 600][rng.gen_range(0..5)];
            let rate: f64 = rng.gen_range(0.0..0.4);
            let responses = (f64::from(contacts) * rate).round();
            let value = match rng.gen_range(0..12) {
                0 => 0.0,
                1 => -5.0,
                _ => rng.gen_range(5.0..50.0),
            };
            Arm {
                id,
                posterior: Beta {
                    alpha: 4.0 * p + responses,
                    beta: 4.0 * (1.0 - p) + f64::from(contacts) - responses,
                },
                value,
                weight: 1.0,
                cost: rng.gen_range(0.0..3.0),
            }
        })
        .collect()
}

/// The chooser's rule: the highest score wins, ties to the smaller id.
fn winner(arms: &[Arm<'_>], thetas: &[f64]) -> usize {
    let score = |i: usize| thetas[i] * arms[i].value * arms[i].weight - arms[i].cost;
    (1..arms.len()).fold(0, |top, i| {
        let (s, t) = (score(i), score(top));
        if s > t || (s == t && arms[i].id < arms[top].id) {
            i
        } else {
            top
        }
    })
}

#[test]
fn win_probability_matches_monte_carlo() {
    let ids: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let draws = 1_000_000;
    for _ in 0..8 {
        let arms = random_arms(&mut rng, &ids);
        let mut wins = vec![0u64; arms.len()];
        let mut thetas = vec![0.0; arms.len()];
        for _ in 0..draws {
            for (t, a) in thetas.iter_mut().zip(&arms) {
                *t = beta_sample(&mut rng, a.posterior.alpha, a.posterior.beta).unwrap();
            }
            wins[winner(&arms, &thetas)] += 1;
        }
        for (i, &w) in wins.iter().enumerate() {
            let mc = w as f64 / draws as f64;
            let exact = win_probability(&arms, i);
            // Three standard errors (at least that of one win in the draws).
            let se = (mc * (1.0 - mc) / draws as f64)
                .sqrt()
                .max(1.0 / draws as f64);
            assert!(
                (exact - mc).abs() < 3.0 * se,
                "arm {i}: exact {exact} vs {mc} ± {se} in {arms:?}"
            );
        }
    }
}

#[test]
fn win_probability_matches_a_fine_quadrature() {
    let ids: Vec<String> = (0..8).map(|i| format!("a{i}")).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let fine = Quadrature {
        panel_sds: 0.1,
        max_panels: 1_000,
    };
    let mut worst: f64 = 0.0;
    for _ in 0..200 {
        let arms = random_arms(&mut rng, &ids);
        let mut sum = 0.0;
        for i in 0..arms.len() {
            let p = win_probability(&arms, i);
            worst = worst.max((p - win_probability_with(&arms, i, fine)).abs());
            sum += p;
        }
        // Exactly one arm wins each draw.
        assert!((sum - 1.0).abs() < 1e-6, "{sum} for {arms:?}");
    }
    eprintln!("largest difference from the fine quadrature: {worst:e}");
    assert!(worst < 1e-6, "largest difference {worst}");
}

#[test]
fn win_probability_has_closed_forms_where_they_exist() {
    // Uniform against the max of two uniforms: 1/3 and 2/3.
    let arms = [arm("a", 1.0, 1.0), arm("b", 2.0, 1.0)];
    assert!((win_probability(&arms, 0) - 1.0 / 3.0).abs() < 1e-12);
    assert!((win_probability(&arms, 1) - 2.0 / 3.0).abs() < 1e-12);
    // n identical arms: 1/n each.
    let same: Vec<Arm<'_>> = ["a", "b", "c", "d"].map(|id| arm(id, 3.0, 40.0)).to_vec();
    for i in 0..4 {
        assert!((win_probability(&same, i) - 0.25).abs() < 1e-7);
    }
    // A fixed score (no value) wins when every draw falls below it: P(θ·10 < 4) = P(θ < 0.4).
    let fixed = Arm {
        value: 0.0,
        cost: -4.0,
        ..arm("z", 1.0, 1.0)
    };
    let arms = [arm("a", 1.0, 1.0), fixed];
    assert!((win_probability(&arms, 1) - 0.4).abs() < 1e-12);
    assert!((win_probability(&arms, 0) - 0.6).abs() < 1e-10);
    assert_eq!(win_probability(&arms, 2), 0.0);
}
