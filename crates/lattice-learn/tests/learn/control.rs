//! Control groups: stable, of the asked size, independent between actions.

use lattice_learn::Holdouts;

#[test]
fn membership_is_stable_and_of_the_asked_share() {
    let h = Holdouts::new(0.05, vec![0.0, 0.2]).unwrap();
    let ids: Vec<String> = (0..20_000).map(|i| format!("C{i:06}")).collect();
    let universal = ids.iter().filter(|c| h.universal_control(c)).count();
    assert!(
        (universal as f64 / 20_000.0 - 0.05).abs() < 0.006,
        "{universal}"
    );
    let second = ids.iter().filter(|c| h.held_out(c, 1, "b")).count();
    // Universal 5% plus 20% of the rest: 24%.
    assert!((second as f64 / 20_000.0 - 0.24).abs() < 0.01, "{second}");
    // The first action has no holdout of its own: only the universal control.
    let first = ids.iter().filter(|c| h.held_out(c, 0, "a")).count();
    assert_eq!(first, universal);
    // Stable: the same answer every time, and a hash, not a table (a fixed customer).
    let again = Holdouts::new(0.05, vec![0.0, 0.2]).unwrap();
    for c in &ids[..500] {
        assert_eq!(
            h.control_for(c, ["a", "b"]),
            again.control_for(c, ["a", "b"])
        );
    }
    assert_eq!(
        Holdouts::new(1.0, vec![])
            .unwrap()
            .control_for("anyone", ["a"]),
        [true]
    );
    assert_eq!(Holdouts::default().control_for("anyone", ["a"]), [false]);
}

#[test]
fn bad_shares_name_the_field() {
    let e = Holdouts::new(1.5, vec![]).unwrap_err();
    assert!(e.contains("universal holdout = 1.5"), "{e}");
    let e = Holdouts::new(0.1, vec![0.1, f64::NAN]).unwrap_err();
    assert!(e.contains("action #2"), "{e}");
}
