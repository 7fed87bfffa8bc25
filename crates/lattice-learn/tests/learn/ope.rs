//! Off-policy estimators: right on known answers, refusing without support or overlap.

use lattice_learn::ope::{OpeError, Options, Sample, TargetArm, evaluate};
use lattice_learn::thompson::beta_sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A two-action world: action 0 pays 1 with probability 0.3, action 1 with 0.6; the logging
/// policy picks action 1 with probability `p1`; the target always picks action 1 (true value 0.6).
fn logs(n: usize, p1: f64, model_bias: f64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    (0..n)
        .map(|_| {
            let a = usize::from(rng.r#gen::<f64>() < p1);
            let rate = [0.3, 0.6][a];
            let reward = f64::from(u8::from(rng.r#gen::<f64>() < rate));
            let q = |a: usize| [0.3, 0.6][a] + model_bias;
            Sample {
                logged_action: a,
                logged_probability: if a == 1 { p1 } else { 1.0 - p1 },
                reward,
                predicted_logged: q(a),
                target: vec![TargetArm {
                    action: 1,
                    probability: 1.0,
                    predicted: q(1),
                }],
            }
        })
        .collect()
}

#[test]
fn estimators_recover_the_target_value() {
    let e = evaluate(&logs(20_000, 0.3, 0.0), &Options::default()).unwrap();
    for (name, est) in [("ips", e.ips), ("snips", e.snips), ("dr", e.dr)] {
        assert!(est.contains(0.6), "{name}: {est:?}");
        assert!(est.high - est.low < 0.05, "{name}: {est:?}");
    }
    // DR stays right with a biased reward model (the probabilities are right).
    let e = evaluate(&logs(20_000, 0.3, 0.2), &Options::default()).unwrap();
    assert!(e.dr.contains(0.6), "{:?}", e.dr);
    // ESS: about the matched share of decisions, down-weighted by 1/p.
    assert!(e.ess > 5_000.0 && e.ess < 6_100.0, "{}", e.ess);
    assert_eq!(e.unsupported, 0.0);
}

#[test]
fn on_policy_ips_is_the_mean_reward() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let samples: Vec<Sample> = (0..1000)
        .map(|_| {
            let r = beta_sample(&mut rng, 2.0, 2.0).unwrap();
            Sample {
                logged_action: 0,
                logged_probability: 1.0,
                reward: r,
                predicted_logged: 0.0,
                target: vec![TargetArm {
                    action: 0,
                    probability: 1.0,
                    predicted: 0.0,
                }],
            }
        })
        .collect();
    let mean = samples.iter().map(|s| s.reward).sum::<f64>() / 1000.0;
    let e = evaluate(&samples, &Options::default()).unwrap();
    assert!((e.ips.value - mean).abs() < 1e-12);
    assert!((e.dr.value - mean).abs() < 1e-12);
    assert!((e.ess - 1000.0).abs() < 1e-9);
}

#[test]
fn refusals_say_why() {
    let o = Options::default();
    assert_eq!(evaluate(&[], &o), Err(OpeError::Empty));
    let mut s = logs(500, 0.5, 0.0);
    s[7].logged_probability = 0.0;
    let e = evaluate(&s, &o).unwrap_err();
    assert_eq!(
        e,
        OpeError::BadProbability {
            index: 7,
            value: 0.0
        }
    );
    assert!(
        e.to_string()
            .contains("logged decision #7: logged probability 0"),
        "{e}"
    );
    s[7].logged_probability = f64::NAN;
    assert!(matches!(
        evaluate(&s, &o),
        Err(OpeError::BadProbability { index: 7, .. })
    ));
    // Deterministic logs of action 0 only: the target acts where the logged probability is 0.
    let det: Vec<Sample> = logs(500, 0.0, 0.0);
    let e = evaluate(&det, &o).unwrap_err();
    assert!(matches!(e, OpeError::NoSupport { .. }), "{e}");
    assert!(e.to_string().contains("100.0%"), "{e}");
    // Rare overlap: the target's action logged with probability 0.001.
    let e = evaluate(&logs(2_000, 0.001, 0.0), &o).unwrap_err();
    assert!(matches!(e, OpeError::SmallEss { .. }), "{e}");
    // Target probabilities that do not sum to 1.
    let mut s = logs(200, 0.5, 0.0);
    s[3].target[0].probability = 0.5;
    let e = evaluate(&s, &o).unwrap_err();
    assert!(
        e.to_string().contains("logged decision #3") && e.to_string().contains("sum to 0.5"),
        "{e}"
    );
}
