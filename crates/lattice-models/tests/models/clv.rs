//! CLV models: reproduction of the published CDNOW fits, holdout accuracy, robustness on messy
//! input and the shape of the predictions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use lattice_data::schema::ev;
use lattice_models::clv::{
    BgNbd, ClvError, Discount, FitOptions, GammaGamma, Purchase, RfmRow, TimeUnit, clv, ln_gamma,
    purchase_days_between, rfm_row,
};

fn training_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../training-data")
        .join(rel)
}

fn day_us(y: i32, m: u32, d: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

/// Purchases per customer of the CDNOW 1/10 sample.
fn cdnow_purchases() -> &'static HashMap<String, Vec<Purchase>> {
    static DATA: OnceLock<HashMap<String, Vec<Purchase>>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = training_data("cdnow-sample");
        let imported = dir.join("events.parquet");
        // Until the converted file is in place, convert the shipped text file with the real
        // importer into a scratch directory.
        let scratch = std::env::temp_dir().join(format!("lattice-clv-test-{}", std::process::id()));
        let path = if imported.exists() {
            imported
        } else {
            lattice_data::cdnow::import_cdnow(&dir.join("CDNOW_sample.txt"), &scratch, false)
                .unwrap();
            scratch.join("events.parquet")
        };
        let mut map: HashMap<String, Vec<Purchase>> = HashMap::new();
        lattice_data::events::read_events(&path, |batch| {
            let ids = batch.column(ev::CUSTOMER_ID).as_string::<i32>();
            let ts = batch
                .column(ev::TS)
                .as_primitive::<TimestampMicrosecondType>();
            let types = batch.column(ev::EVENT_TYPE).as_string::<i32>();
            let amount = batch.column(ev::AMOUNT).as_primitive::<Float64Type>();
            for i in 0..batch.num_rows() {
                if types.value(i) == "purchase" {
                    map.entry(ids.value(i).to_string())
                        .or_default()
                        .push(Purchase {
                            ts_us: ts.value(i),
                            amount: amount.value(i),
                        });
                }
            }
            Ok(())
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&scratch);
        map
    })
}

struct Cdnow {
    rows: Vec<RfmRow>,
    /// Actual purchase days in the holdout, per row.
    holdout: Vec<usize>,
}

/// The standard split: calibration to 1997-09-30 inclusive, holdout 1997-10-01..1998-06-30
/// (39 weeks), weeks as the unit.
fn cdnow() -> &'static Cdnow {
    static DATA: OnceLock<Cdnow> = OnceLock::new();
    DATA.get_or_init(|| {
        let cal_end = day_us(1997, 9, 30);
        let holdout_end = day_us(1998, 6, 30);
        let mut ids: Vec<&String> = cdnow_purchases().keys().collect();
        ids.sort();
        let mut rows = Vec::new();
        let mut holdout = Vec::new();
        for id in ids {
            let p = &cdnow_purchases()[id];
            let row = rfm_row(p, cal_end, TimeUnit::Weeks).unwrap().unwrap();
            rows.push(row);
            holdout.push(purchase_days_between(p, cal_end, holdout_end));
        }
        Cdnow { rows, holdout }
    })
}

fn within(actual: f64, expected: f64, rel: f64) -> bool {
    (actual - expected).abs() <= rel * expected.abs()
}

#[test]
fn cdnow_summary_matches_the_papers_data() {
    let d = cdnow();
    assert_eq!(d.rows.len(), 2_357);
    let repeaters = d.rows.iter().filter(|r| r.frequency > 0.0).count();
    assert_eq!(repeaters, 946);
    // Customer 4 (first in the file): x = 2, t_x = 30.43, T = 38.86, m = mean(29.73, 14.96).
    let first = rfm_row(
        &cdnow_purchases()["4"],
        day_us(1997, 9, 30),
        TimeUnit::Weeks,
    )
    .unwrap()
    .unwrap();
    assert_eq!(first.frequency, 2.0);
    assert!((first.recency - 30.428_571).abs() < 1e-5);
    assert!((first.age - 38.857_143).abs() < 1e-5);
    assert!((first.monetary - 22.345).abs() < 1e-9);
}

#[test]
fn cdnow_bgnbd_reproduces_fader_hardie_lee() {
    let d = cdnow();
    let m = BgNbd::fit(&d.rows).unwrap();
    let ll = m.log_likelihood(&d.rows).unwrap();
    eprintln!("BG/NBD on CDNOW sample: {m:?}, log-likelihood {ll:.3}");
    assert!(within(m.r, 0.243, 0.01), "r = {}", m.r);
    assert!(within(m.alpha, 4.414, 0.01), "alpha = {}", m.alpha);
    assert!(within(m.a, 0.793, 0.01), "a = {}", m.a);
    assert!(within(m.b, 2.426, 0.01), "b = {}", m.b);
    assert!((ll - -9_582.4).abs() < 0.5, "log-likelihood {ll}");
    // The published parameters are no better than ours.
    let published = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    assert!(published.log_likelihood(&d.rows).unwrap() <= ll + 1e-9);
}

/// Sum over customers of the conditional expectation for the 39-week holdout against the
/// actual repeat purchase days there. The BG/NBD under-forecasts this sample's holdout by about
/// 12 % in aggregate (1,653 vs 1,882; the error is in the model, not the arithmetic: see
/// `expected_purchases_match_numerical_integration`), so the bar is 15 %.
#[test]
fn cdnow_bgnbd_holdout_purchases() {
    let d = cdnow();
    let m = BgNbd::fit(&d.rows).unwrap();
    let mut predicted = 0.0;
    // By calibration frequency 0..=6 and 7+, as the paper's Figure 5.
    let mut bins = [(0usize, 0.0f64, 0usize); 8];
    for (r, &actual) in d.rows.iter().zip(&d.holdout) {
        let e = m
            .expected_purchases(39.0, r.frequency, r.recency, r.age)
            .unwrap();
        assert!(e.is_finite() && e >= 0.0);
        predicted += e;
        let bin = &mut bins[(r.frequency as usize).min(7)];
        bin.0 += 1;
        bin.1 += e;
        bin.2 += actual;
    }
    let actual = d.holdout.iter().sum::<usize>() as f64;
    eprintln!(
        "CDNOW sample holdout (39 weeks): predicted {predicted:.1} repeat purchases, actual {actual}"
    );
    for (x, (n, e, a)) in bins.iter().enumerate() {
        eprintln!(
            "  x = {x}{}: {n} customers, mean predicted {:.3}, mean actual {:.3}",
            if x == 7 { "+" } else { "" },
            e / *n as f64,
            *a as f64 / *n as f64
        );
    }
    assert!(within(predicted, actual, 0.15), "{predicted} vs {actual}");
}

#[test]
fn cdnow_gamma_gamma_reproduces_lifetimes_quickstart() {
    let d = cdnow();
    let pairs: Vec<(f64, f64)> = d.rows.iter().map(|r| (r.frequency, r.monetary)).collect();
    let m = GammaGamma::fit(&pairs).unwrap();
    let ll = m.log_likelihood(&pairs).unwrap();
    eprintln!("Gamma-Gamma on CDNOW sample: {m:?}, log-likelihood {ll:.3}");
    assert!(within(m.p, 6.25, 0.01), "p = {}", m.p);
    assert!(within(m.q, 3.74, 0.01), "q = {}", m.q);
    assert!(within(m.v, 15.45, 0.01), "v = {}", m.v);
    // Same fit through the RFM-row entry point.
    assert_eq!(
        GammaGamma::fit_rows(&d.rows, &FitOptions::default()).unwrap(),
        m
    );
    // The lifetimes quickstart's first customers: 24.66 and 18.93 (approximately).
    let spend = m
        .expected_spend(d.rows[0].frequency, d.rows[0].monetary)
        .unwrap();
    assert!(spend.is_finite() && spend > 0.0);
    let mean = m.mean_spend().unwrap();
    eprintln!("Gamma-Gamma population mean spend per purchase: {mean:.2}");
}

#[test]
fn cdnow_clv_is_finite_and_discounting_lowers_it() {
    let d = cdnow();
    let bg = BgNbd::fit(&d.rows).unwrap();
    let pairs: Vec<(f64, f64)> = d.rows.iter().map(|r| (r.frequency, r.monetary)).collect();
    let gg = GammaGamma::fit(&pairs).unwrap();
    let horizon = 52.0;
    let mut total = 0.0;
    for r in &d.rows {
        let plain = clv(&bg, &gg, r, horizon, None).unwrap();
        let zero = clv(
            &bg,
            &gg,
            r,
            horizon,
            Some(Discount::monthly(0.0, TimeUnit::Weeks)),
        )
        .unwrap();
        let disc = clv(
            &bg,
            &gg,
            r,
            horizon,
            Some(Discount::monthly(0.01, TimeUnit::Weeks)),
        )
        .unwrap();
        assert!(plain.is_finite() && plain >= 0.0);
        assert!(
            (zero - plain).abs() <= 1e-9 * plain.max(1.0),
            "{zero} vs {plain}"
        );
        assert!(disc <= plain && disc >= plain / 1.01f64.powi(13));
        total += plain;
    }
    eprintln!("CDNOW sample: total 52-week CLV {total:.0} dollars");
}

#[test]
fn serde_round_trip() {
    let bg = BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap();
    let gg = GammaGamma::new(6.25, 3.74, 15.45).unwrap();
    let json = serde_json::to_string(&bg).unwrap();
    assert!(json.contains("\"alpha\":4.414"), "{json}");
    assert_eq!(serde_json::from_str::<BgNbd>(&json).unwrap(), bg);
    let json = serde_json::to_string(&gg).unwrap();
    assert_eq!(serde_json::from_str::<GammaGamma>(&json).unwrap(), gg);
}

// ---------------------------------------------------------------------------------------------
// Shape of the predictions
// ---------------------------------------------------------------------------------------------

fn published() -> BgNbd {
    BgNbd::new(0.243, 4.414, 0.793, 2.426).unwrap()
}

#[test]
fn p_alive_is_one_without_repeat_purchases() {
    let m = published();
    for age in [0.0, 1.0, 38.0, 500.0] {
        assert_eq!(m.p_alive(0.0, 0.0, age).unwrap(), 1.0);
    }
    // A repeat buyer who went quiet is less likely alive than one who bought recently.
    let quiet = m.p_alive(5.0, 5.0, 38.0).unwrap();
    let recent = m.p_alive(5.0, 37.0, 38.0).unwrap();
    assert!(0.0 < quiet && quiet < recent && recent <= 1.0);
}

#[test]
fn p_no_purchase_is_a_probability_decreasing_in_the_horizon() {
    let m = published();
    for &(x, tx, age) in &[(0.0, 0.0, 38.0), (2.0, 30.4, 38.9), (20.0, 5.0, 38.0)] {
        let mut prev = 1.0;
        for t in [0.0, 1.0, 4.0, 13.0, 39.0, 104.0, 520.0] {
            let p = m.p_no_purchase(t, x, tx, age).unwrap();
            assert!((0.0..=1.0).contains(&p), "{p}");
            assert!(p <= prev + 1e-15, "not decreasing at t = {t}: {p} > {prev}");
            prev = p;
        }
        assert_eq!(m.p_no_purchase(0.0, x, tx, age).unwrap(), 1.0);
        // Never below the probability of being dead already.
        assert!(prev >= 1.0 - m.p_alive(x, tx, age).unwrap() - 1e-12);
    }
}

#[test]
fn expected_purchases_increase_with_the_horizon() {
    let m = published();
    for &(x, tx, age) in &[(0.0, 0.0, 38.0), (2.0, 30.4, 38.9), (20.0, 37.0, 38.0)] {
        let mut prev = 0.0;
        for t in [0.0, 0.5, 1.0, 4.0, 13.0, 39.0, 104.0, 520.0, 5_200.0] {
            let e = m.expected_purchases(t, x, tx, age).unwrap();
            assert!(e.is_finite() && e >= prev, "t = {t}: {e} < {prev}");
            prev = e;
        }
    }
    assert_eq!(m.expected_purchases(0.0, 3.0, 2.0, 10.0).unwrap(), 0.0);
    let new = m.expected_purchases_new(39.0).unwrap();
    assert_eq!(new, m.expected_purchases(39.0, 0.0, 0.0, 0.0).unwrap());
    assert!(new > 0.0);
}

/// Eq. 10 checked against an independent computation: P(alive) times the posterior mean of
/// (1/p)(1 − (1 + p·t/(α+T))^−(r+x)) over p ~ Beta(a, b+x), by quadrature.
#[test]
fn expected_purchases_match_numerical_integration() {
    for m in [
        published(),
        BgNbd::new(1.3, 20.0, 2.5, 6.0).unwrap(),
        BgNbd::new(0.5, 2.0, 1.0, 3.0).unwrap(), // a = 1: the removable singularity
    ] {
        for &(t, x, tx, age) in &[
            (39.0, 0.0, 0.0, 38.0),
            (39.0, 2.0, 30.4, 38.9),
            (10.0, 15.0, 30.0, 31.0),
            (300.0, 1.0, 1.0, 2.0),
        ] {
            let (a, beta) = (m.a, m.b + x);
            let k = t / (m.alpha + age);
            let s = m.r + x;
            let g = |p: f64| {
                if p < 1e-12 {
                    s * k
                } else {
                    -(-s * (p * k).ln_1p()).exp_m1() / p
                }
            };
            // p = u^(4/a) turns p^(a−1) dp into (4/a) u^3 du: a smooth integrand for the
            // midpoint rule.
            let n = 400_000;
            let mut sum = 0.0;
            for i in 0..n {
                let u = (i as f64 + 0.5) / n as f64;
                let p = u.powf(4.0 / a);
                sum += g(p) * (1.0 - p).powf(beta - 1.0) * u.powi(3);
            }
            let ln_beta = ln_gamma(a) + ln_gamma(beta) - ln_gamma(a + beta);
            let integral = sum / n as f64 * 4.0 / a / ln_beta.exp();
            let expected = m.p_alive(x, tx, age).unwrap() * integral;
            let got = m.expected_purchases(t, x, tx, age).unwrap();
            assert!(
                (got - expected).abs() <= 1e-8 * expected,
                "{m:?} t={t} x={x}: {got} vs {expected}"
            );
        }
    }
}

#[test]
fn extreme_customers_get_finite_answers() {
    let m = published();
    // A daily buyer for 20 years, one who just arrived, one long gone.
    for &(x, tx, age) in &[
        (7_000.0, 1_040.0, 1_040.0),
        (7_000.0, 100.0, 1_040.0),
        (0.0, 0.0, 0.0),
        (1.0, 0.1, 5_000.0),
    ] {
        for t in [1.0, 52.0, 1_000.0] {
            let e = m.expected_purchases(t, x, tx, age).unwrap();
            let p = m.p_no_purchase(t, x, tx, age).unwrap();
            let a = m.p_alive(x, tx, age).unwrap();
            assert!(e.is_finite() && e >= 0.0, "{x} {tx} {age} {t}: {e}");
            assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&a));
        }
    }
    // The log-likelihood too, and a fit that includes such customers converges.
    let mut rows = cdnow().rows.clone();
    rows.push(RfmRow {
        frequency: 7_000.0,
        recency: 1_040.0,
        age: 1_040.0,
        monetary: 1e6,
    });
    assert!(m.log_likelihood(&rows).unwrap().is_finite());
    let fitted = BgNbd::fit(&rows).unwrap();
    assert!(fitted.r.is_finite() && fitted.b.is_finite());
    // A huge spender among the repeaters: Gamma-Gamma still fits with finite parameters.
    let pairs: Vec<(f64, f64)> = rows.iter().map(|r| (r.frequency, r.monetary)).collect();
    let gg = GammaGamma::fit(&pairs).unwrap();
    let spend = gg.expected_spend(7_000.0, 1e6).unwrap();
    assert!(spend.is_finite() && spend > 0.0);
}

// ---------------------------------------------------------------------------------------------
// Robustness: clear errors, never NaN
// ---------------------------------------------------------------------------------------------

fn row(frequency: f64, recency: f64, age: f64, monetary: f64) -> RfmRow {
    RfmRow {
        frequency,
        recency,
        age,
        monetary,
    }
}

#[test]
fn all_zero_frequencies_fail_clearly() {
    let rows: Vec<RfmRow> = (0..100).map(|i| row(0.0, 0.0, i as f64, 0.0)).collect();
    let err = BgNbd::fit(&rows).unwrap_err();
    assert!(matches!(err, ClvError::Fit { .. }));
    assert!(
        err.to_string()
            .contains("no customer has a repeat purchase"),
        "{err}"
    );
    let pairs: Vec<(f64, f64)> = rows.iter().map(|r| (r.frequency, r.monetary)).collect();
    let err = GammaGamma::fit(&pairs).unwrap_err().to_string();
    assert!(err.contains("no customer has a repeat purchase"), "{err}");
    let err = BgNbd::fit(&[]).unwrap_err().to_string();
    assert!(err.contains("no customers"), "{err}");
}

#[test]
fn invalid_rows_are_named() {
    let good = row(2.0, 10.0, 20.0, 15.0);
    let cases = [
        (row(f64::NAN, 10.0, 20.0, 15.0), "row 3: frequency is NaN"),
        (row(2.0, f64::NAN, 20.0, 15.0), "row 3: recency is NaN"),
        (row(2.0, 10.0, f64::INFINITY, 15.0), "row 3: age is inf"),
        (row(-1.0, 10.0, 20.0, 15.0), "row 3: frequency is -1"),
        (row(1.5, 10.0, 20.0, 15.0), "row 3: frequency is 1.5"),
        (
            row(2.0, 30.0, 20.0, 15.0),
            "row 3: recency 30 exceeds age 20",
        ),
        (
            row(0.0, 3.0, 20.0, 0.0),
            "row 3: recency is 3 with frequency 0",
        ),
        (row(2.0, 10.0, 20.0, -5.0), "row 3: monetary is -5"),
    ];
    for (bad, msg) in cases {
        let rows = [good, good, good, bad, good];
        let err = BgNbd::fit(&rows).unwrap_err();
        assert!(matches!(err, ClvError::InvalidRow { row: 3, .. }), "{err}");
        assert!(err.to_string().starts_with(msg), "{err} (expected {msg})");
    }
    let err = GammaGamma::fit(&[(2.0, 10.0), (1.0, f64::NAN)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "row 1: monetary is NaN; expected a finite value ≥ 0"
    );
    let err = GammaGamma::fit(&[(2.0, 10.0), (3.0, 0.0)]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("row 1: monetary is 0 with frequency 3"),
        "{err}"
    );
    // Purchases: a NaN amount is named by its index.
    let err = rfm_row(
        &[
            Purchase {
                ts_us: 0,
                amount: 1.0,
            },
            Purchase {
                ts_us: 1,
                amount: f64::NAN,
            },
        ],
        10,
        TimeUnit::Days,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("row 1: amount is NaN"), "{err}");
}

#[test]
fn invalid_prediction_arguments_are_errors_not_nan() {
    let m = published();
    let err = m.p_alive(2.0, 30.0, 20.0).unwrap_err().to_string();
    assert!(
        err.contains("recency = 30") && err.contains("exceeds age 20"),
        "{err}"
    );
    assert!(m.expected_purchases(f64::NAN, 1.0, 1.0, 2.0).is_err());
    assert!(m.expected_purchases(-1.0, 1.0, 1.0, 2.0).is_err());
    assert!(m.p_no_purchase(1.0, f64::NAN, 1.0, 2.0).is_err());
    let broken = BgNbd {
        r: f64::NAN,
        ..published()
    };
    let err = broken.p_alive(1.0, 1.0, 2.0).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid BG/NBD parameters: r = NaN; expected a finite value > 0"
    );
    assert!(BgNbd::new(0.2, 0.0, 1.0, 1.0).is_err());
}

#[test]
fn gamma_gamma_q_at_most_one_is_an_error() {
    let err = GammaGamma::new(6.0, 0.9, 15.0).unwrap_err().to_string();
    assert!(err.contains("q = 0.9 ≤ 1"), "{err}");
    assert!(GammaGamma::new(6.0, 1.0, 15.0).is_err());
    // Hand-built (e.g. deserialised) parameters are checked on use too.
    let gg = GammaGamma {
        p: 6.0,
        q: 1.0,
        v: 15.0,
    };
    assert!(gg.expected_spend(2.0, 20.0).is_err());
    assert!(gg.mean_spend().is_err());
    let bg = published();
    assert!(clv(&bg, &gg, &row(2.0, 10.0, 20.0, 20.0), 52.0, None).is_err());

    // Spend so heavy-tailed that the maximum likelihood q is below 1: a clear fit error (or,
    // if the optimum is just above 1, finite parameters).
    let mut pairs = Vec::new();
    for i in 0..400 {
        let u = (i as f64 + 0.5) / 400.0;
        // Pareto(0.6) customer means: infinite population mean.
        pairs.push((1.0 + (i % 5) as f64, 10.0 * (1.0 - u).powf(-1.0 / 0.6)));
    }
    match GammaGamma::fit(&pairs) {
        Err(e) => {
            eprintln!("Pareto spend: {e}");
            assert!(e.to_string().contains("≤ 1"), "{e}")
        }
        Ok(gg) => {
            eprintln!("Pareto spend: {gg:?}");
            assert!(gg.q > 1.0 && gg.mean_spend().unwrap().is_finite(), "{gg:?}")
        }
    }
}

#[test]
fn tiny_data_converges_or_fails_clearly() {
    let datasets: [(&str, Vec<RfmRow>); 3] = [
        ("one customer", vec![row(2.0, 30.0, 38.0, 20.0)]),
        (
            "two customers",
            vec![row(1.0, 5.0, 10.0, 10.0), row(0.0, 0.0, 10.0, 0.0)],
        ),
        // Everyone bought every day up to now: no sign of dropout at all.
        (
            "no dropout",
            (1..=30)
                .map(|i| row(i as f64, i as f64, i as f64, 10.0))
                .collect(),
        ),
    ];
    for (name, rows) in &datasets {
        for penalizer in [0.0, 0.1] {
            let opts = FitOptions {
                penalizer,
                ..FitOptions::default()
            };
            match BgNbd::fit_with(rows, &opts) {
                Ok(m) => {
                    eprintln!("{name}, penalizer {penalizer}: {m:?}");
                    for v in [m.r, m.alpha, m.a, m.b] {
                        assert!(v.is_finite() && v > 0.0, "{m:?}");
                    }
                    let e = m.expected_purchases(10.0, 1.0, 1.0, 2.0).unwrap();
                    assert!(e.is_finite());
                }
                Err(e) => {
                    eprintln!("{name}, penalizer {penalizer}: {e}");
                    let msg = e.to_string();
                    assert!(msg.starts_with("BG/NBD fit failed: "), "{msg}");
                    // A penalizer makes every one of these well posed.
                    assert_eq!(penalizer, 0.0, "{msg}");
                }
            }
        }
    }
    // One repeat customer for Gamma-Gamma.
    match GammaGamma::fit(&[(3.0, 25.0)]) {
        Ok(gg) => {
            eprintln!("Gamma-Gamma, one customer: {gg:?}");
            assert!(gg.expected_spend(3.0, 25.0).unwrap().is_finite())
        }
        Err(e) => {
            eprintln!("Gamma-Gamma, one customer: {e}");
            assert!(e.to_string().starts_with("Gamma-Gamma fit failed: "), "{e}")
        }
    }
    let opts = FitOptions {
        penalizer: 0.1,
        ..FitOptions::default()
    };
    let gg = GammaGamma::fit_with(&[(3.0, 25.0)], &opts).unwrap();
    eprintln!("Gamma-Gamma, one customer, penalizer 0.1: {gg:?}");
    assert!(gg.expected_spend(3.0, 25.0).unwrap().is_finite());
}

#[test]
fn rfm_rows_follow_the_lifetimes_convention() {
    let day = 86_400_000_000i64;
    let p = |d: i64, amount: f64| Purchase {
        ts_us: d * day + 3_600_000_000,
        amount,
    };
    // Unsorted, two purchases on day 10 (one occasion worth 30), one after the end.
    let purchases = [
        p(10, 5.0),
        p(3, 100.0),
        p(10, 25.0),
        p(17, 12.0),
        p(40, 99.0),
    ];
    let end = 31 * day - 1; // inclusive end on day 30
    let r = rfm_row(&purchases, end, TimeUnit::Days).unwrap().unwrap();
    assert_eq!(r, row(2.0, 14.0, 27.0, 21.0));
    let w = rfm_row(&purchases, end, TimeUnit::Weeks).unwrap().unwrap();
    assert_eq!(w, row(2.0, 2.0, 27.0 / 7.0, 21.0));
    assert_eq!(rfm_row(&purchases, 2 * day, TimeUnit::Days).unwrap(), None);
    let one = rfm_row(&purchases[1..2], end, TimeUnit::Days)
        .unwrap()
        .unwrap();
    assert_eq!(one, row(0.0, 0.0, 27.0, 0.0));
    assert_eq!(purchase_days_between(&purchases, end, 41 * day), 1);
    assert_eq!(purchase_days_between(&purchases, 0, end), 3);
}

// ---------------------------------------------------------------------------------------------
// Recovery of planted parameters
// ---------------------------------------------------------------------------------------------

/// splitmix64: a tiny deterministic generator, enough for simulation in tests.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Gamma(shape, scale 1) by Marsaglia & Tsang.
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            return self.gamma(shape + 1.0) * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

/// Simulates BG/NBD customers (λ ~ Gamma(r, α), p ~ Beta(a, b), dropout with probability p
/// after each purchase) observed for T ~ U(10, 80), with Gamma-Gamma spend.
fn simulate(truth: &BgNbd, spend: &GammaGamma, n: usize, seed: u64) -> Vec<RfmRow> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let lambda = rng.gamma(truth.r) / truth.alpha;
            let (ga, gb) = (rng.gamma(truth.a), rng.gamma(truth.b));
            let p = ga / (ga + gb);
            let nu = rng.gamma(spend.q) / spend.v;
            let age = 10.0 + 70.0 * rng.uniform();
            let (mut x, mut t_x, mut total) = (0.0, 0.0, 0.0);
            loop {
                let next = t_x - rng.uniform().ln() / lambda;
                if next > age {
                    break;
                }
                x += 1.0;
                t_x = next;
                total += rng.gamma(spend.p) / nu;
                if rng.uniform() < p {
                    break;
                }
            }
            row(x, t_x, age, if x > 0.0 { total / x } else { 0.0 })
        })
        .collect()
}

#[test]
fn planted_parameters_are_recovered() {
    let truth = BgNbd::new(0.5, 5.0, 0.8, 3.0).unwrap();
    let spend = GammaGamma::new(4.0, 5.0, 60.0).unwrap();
    let rows = simulate(&truth, &spend, 20_000, 7);
    let started = std::time::Instant::now();
    let bg = BgNbd::fit(&rows).unwrap();
    let bg_time = started.elapsed();
    let pairs: Vec<(f64, f64)> = rows.iter().map(|r| (r.frequency, r.monetary)).collect();
    let started = std::time::Instant::now();
    let gg = GammaGamma::fit(&pairs).unwrap();
    let gg_time = started.elapsed();
    eprintln!("planted {truth:?}, fitted {bg:?} in {bg_time:?}");
    eprintln!("planted {spend:?}, fitted {gg:?} in {gg_time:?}");
    for (name, got, want) in [
        ("r", bg.r, truth.r),
        ("alpha", bg.alpha, truth.alpha),
        ("a", bg.a, truth.a),
        ("b", bg.b, truth.b),
        ("p", gg.p, spend.p),
        ("q", gg.q, spend.q),
        ("v", gg.v, spend.v),
    ] {
        assert!(
            within(got, want, 0.15),
            "{name}: fitted {got}, planted {want}"
        );
    }
    // The planted model is no more likely than the fit.
    assert!(truth.log_likelihood(&rows).unwrap() <= bg.log_likelihood(&rows).unwrap());
}
