//! End-to-end: `lattice simulate` at its defaults (10,000 customers, 60 days, seed 7) meets the
//! issue's bars, and its JSON report says the same as its text.

use crate::common::{lattice, s, text};

#[test]
fn simulate_meets_the_bars_at_its_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sim.json");
    let o = lattice(&["simulate", "--json", s(&json)]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    for policy in ["static", "greedy", "thompson", "frozen_greedy"] {
        assert!(out.contains(policy), "{out}");
    }
    assert!(
        out.contains("bars: Thompson regret ≤ 0.5 × static: met"),
        "{out}"
    );
    assert!(
        out.contains("coverage ≥ 90% of cells with ≥ 200 contacts: met"),
        "{out}"
    );
    assert!(
        out.contains("DR interval holds the measured value: met"),
        "{out}"
    );
    assert!(
        out.contains("static from thompson's logs refused: no support"),
        "{out}"
    );

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["customers"], 10_000);
    assert_eq!(r["days"], 60);
    let policies = r["policies"].as_array().unwrap();
    let regret = |name: &str| {
        policies.iter().find(|p| p["policy"] == name).unwrap()["regret"]
            .as_f64()
            .unwrap()
    };
    assert!(regret("thompson") <= 0.5 * regret("static"));
    let thompson = policies.iter().find(|p| p["policy"] == "thompson").unwrap();
    assert_eq!(thompson["regret_by_day"].as_array().unwrap().len(), 60);
    assert_eq!(thompson["disagreements"], 0);
    let ope = &r["ope"];
    let dr = &ope["evaluation"]["estimate"]["dr"];
    let measured = ope["measured"].as_f64().unwrap();
    assert!(dr["low"].as_f64().unwrap() <= measured && measured <= dr["high"].as_f64().unwrap());
    assert!(r["ope_static"]["evaluation"]["refused"].is_string());

    // Bad input names the flag.
    let o = lattice(&["simulate", "--customers", "0"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("--customers = 0"), "{:?}", text(&o));
}
