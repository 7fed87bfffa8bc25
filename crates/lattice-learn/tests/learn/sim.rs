//! The simulator at a smaller scale than `lattice simulate` (which the e2e test runs at its
//! defaults): the bars, and a run reproduces exactly.

use lattice_learn::sim::{Config, Policy, run};

#[test]
fn learning_meets_the_bars_in_a_small_world() {
    let config = Config {
        customers: 3_000,
        days: 60,
        seed: 11,
    };
    let r = run(&config).unwrap();
    let regret = |p: Policy| r.policy(p).unwrap().regret;
    assert!(
        regret(Policy::Thompson) <= 0.5 * regret(Policy::Static),
        "thompson {} vs static {}",
        regret(Policy::Thompson),
        regret(Policy::Static)
    );
    for p in [Policy::Greedy, Policy::Thompson, Policy::FrozenGreedy] {
        assert_eq!(r.policy(p).unwrap().disagreements, 0, "{p:?}");
    }
    let t = r.policy(Policy::Thompson).unwrap();
    assert!(t.cells_checked > 0);
    assert!(
        t.cells_covered as f64 >= 0.8 * t.cells_checked as f64,
        "{}/{}",
        t.cells_covered,
        t.cells_checked
    );
    // Thompson's probabilities support the frozen greedy policy, not the static one.
    let e = r.ope.evaluation.as_ref().unwrap();
    assert!(e.ess > 100.0);
    assert!(r.ope_static.evaluation.is_err());
    // The same seed, the same run.
    let again = run(&config).unwrap();
    assert_eq!(again.policies[2].regret, t.regret);
    assert_eq!(again.ope, r.ope);
}

#[test]
fn bad_configurations_are_refused() {
    let e = run(&Config {
        customers: 0,
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("--customers = 0"), "{e}");
    let e = run(&Config {
        days: 0,
        ..Config::default()
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("--days = 0"), "{e}");
}
