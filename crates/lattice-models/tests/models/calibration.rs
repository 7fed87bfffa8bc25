//! Platt against isotonic calibration: each is chosen where the data says it fits better, and
//! the chosen one is calibrated on fresh draws from the same process.

use lattice_models::calibration::{Calibration, Isotonic};
use lattice_models::metrics::{ece, log_loss};

/// A deterministic uniform stream (SplitMix64), so the tests need no RNG crate.
struct Uniform(u64);

impl Uniform {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    }
}

/// `n` logits uniform on [−4, 4] and labels drawn with probability `truth(logit)`.
fn draw(n: usize, seed: u64, truth: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<bool>) {
    let mut u = Uniform(seed);
    (0..n)
        .map(|_| {
            let z = -4.0 + 8.0 * u.next();
            (z, u.next() < truth(z))
        })
        .unzip()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// A monotone shape no σ(a·z + b) can follow: flat at 0.1 below 0, flat at 0.6 above it.
fn step(z: f64) -> f64 {
    if z < 0.0 { 0.1 } else { 0.6 }
}

#[test]
fn isotonic_is_chosen_for_a_shape_platt_cannot_follow() {
    let (z, y) = draw(20_000, 1, step);
    let (cal, choice) = Calibration::choose(&z, &y);
    assert_eq!(cal.method(), "isotonic", "{choice:?}");
    assert!(choice.isotonic_log_loss < choice.platt_log_loss);
    let (z2, y2) = draw(20_000, 2, step);
    let p: Vec<f64> = z2.iter().map(|&v| cal.apply(v)).collect();
    assert!(ece(&p, &y2, 10) < 0.02, "ECE {}", ece(&p, &y2, 10));
    // Platt fitted on the same draws is visibly worse on the fresh ones.
    let platt = lattice_models::calibration::Platt::fit(&z, &y);
    let q: Vec<f64> = z2.iter().map(|&v| platt.apply(v)).collect();
    assert!(log_loss(&p, &y2) < log_loss(&q, &y2));
}

#[test]
fn platt_is_chosen_when_the_truth_is_a_sigmoid_and_data_is_scarce() {
    let truth = |z: f64| sigmoid(0.5 * z - 1.0);
    let (z, y) = draw(400, 3, truth);
    let (cal, choice) = Calibration::choose(&z, &y);
    assert_eq!(cal.method(), "platt", "{choice:?}");
    let Calibration::Platt(p) = cal else {
        unreachable!()
    };
    assert!((p.a - 0.5).abs() < 0.25 && (p.b + 1.0).abs() < 0.4, "{p:?}");
}

#[test]
fn isotonic_is_monotone_bounded_and_flat_beyond_its_ends() {
    let (z, y) = draw(5_000, 4, sigmoid);
    let iso = Isotonic::fit(&z, &y).unwrap();
    assert!(iso.logits.windows(2).all(|w| w[0] < w[1]));
    let mut last = 0.0;
    for i in -600..=600 {
        let p = iso.apply(f64::from(i) / 100.0);
        assert!(p > 0.0 && p < 1.0, "{p}");
        assert!(p >= last, "not monotone at {i}");
        last = p;
    }
    assert_eq!(iso.apply(-1e9), iso.probs[0]);
    assert_eq!(iso.apply(1e9), *iso.probs.last().unwrap());
    // A block of negatives is shrunk towards the base rate, never to 0: no infinite loss.
    assert!(iso.probs[0] > 0.0);
    // Equal logits get one value.
    let iso = Isotonic::fit(&[1.0, 1.0, 1.0, 2.0], &[true, false, false, true]).unwrap();
    assert_eq!(iso.logits.len(), 2);
    // Nothing to fit, or a non-finite logit: no isotonic map.
    assert!(Isotonic::fit(&[], &[]).is_none());
    assert!(Isotonic::fit(&[f64::NAN], &[true]).is_none());
}

#[test]
fn calibration_survives_a_json_round_trip() {
    let (z, y) = draw(5_000, 5, step);
    for cal in [
        Calibration::choose(&z, &y).0,
        Calibration::choose(&z[..300], &y[..300]).0,
    ] {
        let text = serde_json::to_string(&cal).unwrap();
        assert!(text.contains(&format!("\"method\":\"{}\"", cal.method())));
        // serde_json may move a float by one unit in the last place; predictions must agree.
        let back: Calibration = serde_json::from_str(&text).unwrap();
        assert_eq!(back.method(), cal.method());
        for i in -50..=50 {
            let z = f64::from(i) / 10.0;
            assert!((back.apply(z) - cal.apply(z)).abs() < 1e-12, "at {z}");
        }
    }
}
