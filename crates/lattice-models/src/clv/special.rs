//! The special functions the CLV likelihoods and predictions need: ln Γ, digamma and the Gauss
//! hypergeometric series ₂F₁. Implemented here (a few dozen lines) rather than pulling in a
//! dependency; arguments are positive in every use.

use std::f64::consts::PI;

/// Lanczos approximation (g = 7, n = 9): about 15 significant digits for Γ on x > 0.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// ln Γ(x) for x > 0 (NaN otherwise).
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x < 0.5 {
        // Reflection keeps the accuracy of the series near 0, where Γ has its pole.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut s = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        s += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// The digamma function ψ(x) = d ln Γ(x) / dx for x > 0 (NaN otherwise).
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    // Recurrence up to x ≥ 10, where the asymptotic series (to x^-12) is accurate to ~1e-15.
    let mut x = x;
    let mut acc = 0.0;
    while x < 10.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let tail = f
        * (1.0 / 12.0
            - f * (1.0 / 120.0
                - f * (1.0 / 252.0
                    - f * (1.0 / 240.0 - f * (1.0 / 132.0 - f * (691.0 / 32_760.0))))));
    acc + x.ln() - 0.5 / x - tail
}

/// Terms the ₂F₁ series may take before giving up: z = 1 − 1e-6 needs ~4e7.
const HYP2F1_MAX_TERMS: usize = 50_000_000;

/// Gauss hypergeometric ₂F₁(a, b; c; z) for 0 ≤ z < 1 by its power series. `None` if it does not
/// converge (z too close to 1) or c is a non-positive integer.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    hyp2f1_minus_one(a, b, c, z).map(|s| 1.0 + s)
}

/// ₂F₁(a, b; c; z) − 1, i.e. the series without its leading 1, accurate to ~1e-15 relative even
/// when it is tiny (small z), so callers can form 1 − (…)·₂F₁ without cancellation. Summed until
/// a bound on the remaining tail is below 1e-15 of the sum.
pub fn hyp2f1_minus_one(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && (0.0..1.0).contains(&z)) {
        return None;
    }
    if c <= 0.0 && c.fract() == 0.0 {
        return None;
    }
    // Past n0 the term ratio (a+n)(b+n)/((c+n)(n+1))·z tends monotonically to z, so the tail
    // after a term is at most term·ρ/(1−ρ) with ρ = max(|ratio|, z).
    let n0 = 2.0 * (a.abs() + b.abs() + c.abs()) + 10.0;
    let mut term = 1.0;
    let mut sum = 0.0;
    // Σ|terms|: below 1e-16 of it the sum is rounding noise anyway, so stop there too.
    let mut abs_sum = 0.0;
    for n in 0..HYP2F1_MAX_TERMS {
        let nf = n as f64;
        let ratio = (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0)) * z;
        term *= ratio;
        sum += term;
        abs_sum += term.abs();
        if !abs_sum.is_finite() {
            return None;
        }
        if term == 0.0 {
            return Some(sum);
        }
        if nf > n0 {
            let rho = ratio.abs().max(z);
            if rho < 1.0 {
                let tail = term.abs() * rho / (1.0 - rho);
                if tail <= 1e-15 * sum.abs() || tail <= 1e-17 * abs_sum {
                    return Some(sum);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(close(ln_gamma(0.5), 0.572_364_942_924_700_1, 1e-14));
        assert!(close(ln_gamma(1.0), 0.0, 1e-14));
        assert!(close(ln_gamma(10.0), 12.801_827_480_081_469, 1e-14));
        assert!(close(ln_gamma(1e-8), 18.420_680_738_180_21, 1e-12));
        // Stirling for a large argument.
        let x: f64 = 1e7;
        let stirling = (x - 0.5) * x.ln() - x + 0.5 * (2.0 * PI).ln() + 1.0 / (12.0 * x);
        assert!(close(ln_gamma(x), stirling, 1e-14));
        assert!(ln_gamma(0.0).is_nan() && ln_gamma(-1.0).is_nan());
    }

    #[test]
    fn digamma_known_values() {
        assert!(close(digamma(1.0), -0.577_215_664_901_532_9, 1e-14));
        assert!(close(digamma(0.5), -1.963_510_026_021_423_5, 1e-14));
        assert!(close(digamma(100.0), 4.600_161_852_738_087, 1e-14));
        // Central difference of ln Γ.
        let h = 1e-5;
        for x in [0.3, 2.7, 45.0] {
            let d = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(close(digamma(x), d, 1e-8), "{x}");
        }
    }

    #[test]
    fn hyp2f1_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1−z)/z.
        for z in [0.1, 0.5, 0.9, 0.999] {
            let f = hyp2f1(1.0, 1.0, 2.0, z).expect("converges");
            assert!(close(f, -(1.0 - z).ln() / z, 1e-12), "{z}");
        }
        // ₂F₁(a, b; b; z) = (1−z)^(−a).
        let f = hyp2f1(0.7, 3.0, 3.0, 0.8).expect("converges");
        assert!(close(f, 0.2f64.powf(-0.7), 1e-12));
        // Terminating series: ₂F₁(−2, b; c; z) is a polynomial.
        let f = hyp2f1(-2.0, 1.5, 2.5, 0.5).expect("converges");
        let exact = 1.0 - 2.0 * 1.5 / 2.5 * 0.5 + (1.5 * 2.5) / (2.5 * 3.5) * 0.25;
        assert!(close(f, exact, 1e-14));
        assert_eq!(hyp2f1(1.0, 1.0, 0.0, 0.5), None);
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), None);
    }
}
