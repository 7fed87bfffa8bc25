//! Selecting audiences: ranking, each filter, each size option, the holdout, action targets,
//! and every bad request named by its field. Hand-made worlds where every number is known,
//! and the demo model for what depends on a real backtest.

use crate::common;

use common::{C, DAY_US, as_of, demo, world};
use lattice_audience::{Audience, holdout, select};
use serde_json::json;

fn ids(a: &Audience, w: &common::World) -> Vec<String> {
    a.rows()
        .map(|(_, p)| w.snapshot.customers[p.index as usize].id.clone())
        .collect()
}

fn funnel(a: &Audience) -> Vec<(String, usize, usize)> {
    a.summary
        .funnel
        .iter()
        .map(|s| (s.step.clone(), s.before, s.after))
        .collect()
}

/// Ten customers with outerwear affinity 0.10, 0.20, … 1.00 in reverse order (c9 is best).
fn ladder() -> Vec<C> {
    (0..10)
        .map(|k| C::new(&format!("c{k}"), (k + 1) as f64 / 10.0))
        .collect()
}

#[test]
fn top_n_ranks_by_the_category_score() {
    let w = world(&ladder());
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"top": 3}})),
    );
    assert_eq!(ids(&a, &w), ["c9", "c8", "c7"]);
    let ranks: Vec<usize> = a.rows().map(|(r, _)| r).collect();
    assert_eq!(ranks, [1, 2, 3]);
    // No backtest: the probabilities are the model's own.
    let p: Vec<f64> = a.rows().map(|(_, p)| p.probability).collect();
    assert_eq!(p, [1.0, 0.9, 0.8]);
    assert!((a.summary.expected_conversions.mean - 2.7).abs() < 1e-12);
    // Expected value: probability × mean order value (50).
    assert!((a.summary.expected_value - 2.7 * 50.0).abs() < 1e-9);
    assert_eq!(
        funnel(&a),
        [("customers".into(), 10, 10), ("size".into(), 10, 3)]
    );
    // Lift against all customers: mean 0.9 over mean 0.55.
    assert!((a.summary.lift.estimated.unwrap() - 0.9 / 0.55).abs() < 1e-12);
    assert!(a.summary.lift.backtest.is_none());
    // Category names match case-insensitively through their slug.
    let b = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "OuterWear"}, "size": {"top": 3}})),
    );
    assert_eq!(ids(&b, &w), ids(&a, &w));
}

#[test]
fn ties_keep_snapshot_order_and_sizes_larger_than_the_pool_take_everyone() {
    let w = world(&[C::new("a", 0.5), C::new("b", 0.7), C::new("c", 0.5)]);
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"top": 100}})),
    );
    assert_eq!(ids(&a, &w), ["b", "a", "c"]);
    assert_eq!(a.summary.size, 3);
}

#[test]
fn each_filter_removes_exactly_its_customers() {
    let mut cs = ladder();
    cs[0].tier = Some("gold");
    cs[1].tier = None;
    cs[2].consent = [false, true, false];
    cs[3].churn = 0.95;
    cs[4].churn = 0.05;
    cs[5].clv = 10.0;
    cs[6].days_since_purchase = Some(200);
    cs[7].days_since_purchase = None;
    cs[8].contacts = vec![("newsletter", "email", 3)];
    cs[9].contacts = vec![("newsletter", "email", 30)];
    let w = world(&cs);
    let all = |filters: serde_json::Value| {
        let a = select(
            &w.source(),
            &w.plan(
                json!({"target": {"category": "outerwear"}, "size": {"top": 100},
                           "filters": filters}),
            ),
        );
        let mut v = ids(&a, &w);
        v.sort();
        (v, funnel(&a))
    };
    let without = |gone: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = (0..10)
            .map(|k| format!("c{k}"))
            .filter(|id| !gone.contains(&id.as_str()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(all(json!({"tiers": ["gold"]})).0, ["c0"]);
    assert_eq!(all(json!({"tiers": ["bronze"]})).0, without(&["c0", "c1"]));
    assert_eq!(all(json!({"channel": "email"})).0, without(&["c2"]));
    assert_eq!(all(json!({"channel": "sms"})).0, ["c2"]);
    assert_eq!(all(json!({"min_churn_probability": 0.9})).0, ["c3"]);
    assert_eq!(all(json!({"max_churn_probability": 0.1})).0, ["c4"]);
    assert_eq!(all(json!({"min_clv": 50})).0, without(&["c5"]));
    // Never bought: neither "within" nor "older than".
    assert_eq!(
        all(json!({"last_purchase_within_days": 60})).0,
        without(&["c6", "c7"])
    );
    assert_eq!(all(json!({"last_purchase_older_than_days": 60})).0, ["c6"]);
    assert_eq!(
        all(json!({"exclude_contacted_within_days": 7})).0,
        without(&["c8"])
    );
    assert_eq!(
        all(json!({"exclude_contacted_within_days": 90})).0,
        without(&["c8", "c9"])
    );

    // Several at once: the funnel counts each step in order.
    let (kept, f) = all(json!({"tiers": ["bronze", "gold"], "channel": "email",
                               "min_clv": 50, "exclude_contacted_within_days": 7}));
    assert_eq!(kept, without(&["c1", "c2", "c5", "c8"]));
    assert_eq!(
        f,
        [
            ("customers".into(), 10, 10),
            ("tiers".into(), 10, 9),
            ("channel".into(), 9, 8),
            ("min_clv".into(), 8, 7),
            ("exclude_contacted_within_days".into(), 7, 6),
            ("size".into(), 6, 6),
        ]
    );
}

#[test]
fn threshold_and_budget_sizes() {
    let w = world(&ladder());
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"min_probability": 0.75}})),
    );
    assert_eq!(ids(&a, &w), ["c9", "c8", "c7"]);
    // 1.00 buys 4 contacts at 0.25; 0.99 buys 3.
    let b = |budget: f64| {
        let a = select(
            &w.source(),
            &w.plan(json!({"target": {"category": "outerwear"},
                           "size": {"budget": budget, "cost_per_contact": 0.25}})),
        );
        a.summary.size
    };
    assert_eq!(b(1.0), 4);
    assert_eq!(b(0.99), 3);
    assert_eq!(b(0.0), 0);
    // An action target's budget defaults to the action's cost (0.5).
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"action": "coats"}, "size": {"budget": 1.5}})),
    );
    assert_eq!(a.summary.size, 3);
}

#[test]
fn churn_target_ranks_by_churn_and_values_clv_at_risk() {
    let mut cs = ladder();
    for (k, c) in cs.iter_mut().enumerate() {
        c.churn = k as f64 / 10.0;
        c.clv = 100.0 + k as f64;
    }
    let w = world(&cs);
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"churn": true}, "size": {"top": 2}})),
    );
    assert_eq!(ids(&a, &w), ["c9", "c8"]);
    let first = a.rows().next().unwrap().1;
    assert!((first.expected_value - 0.9 * 109.0).abs() < 1e-9);
    assert!(
        a.summary
            .target
            .event
            .contains("no purchase within 60 days")
    );
}

#[test]
fn action_targets_keep_eligible_customers_ranked_by_propensity() {
    let mut cs = ladder();
    // Outerwear below denim for c0..c2 but still top 3 of 2 categories: the early-access rule
    // needs an affinity of at least 0.02, so c0 (0.1) qualifies; make one customer too weak.
    cs[0].affinity = [0.01, 0.5];
    // Consent on none of the action's channels.
    cs[1].consent = [false, true, false];
    // Reached by this action 3 days ago: cooldown (14 days).
    cs[2].contacts = vec![("coats", "email", 3)];
    let w = world(&cs);
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"action": "coats"}, "size": {"top": 100}})),
    );
    let mut got = ids(&a, &w);
    got.sort();
    assert_eq!(got, ["c3", "c4", "c5", "c6", "c7", "c8", "c9"]);
    assert_eq!(ids(&a, &w)[0], "c9");
    let f = funnel(&a);
    assert_eq!(f[1], ("eligible".into(), 10, 7));
    // The propensity of an early-access action is its category's affinity.
    let top = a.rows().next().unwrap().1;
    assert_eq!((top.score, top.probability), (1.0, 1.0));
    assert!((top.expected_value - 60.0).abs() < 1e-12);
    assert_eq!(a.summary.target.category.as_deref(), Some("outerwear"));

    // On push, nobody has consent.
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"action": "coats"}, "size": {"top": 100},
                       "filters": {"channel": "push"}})),
    );
    assert_eq!(a.summary.size, 0);

    // A win-back is eligible after 30+ days without a purchase and churn ≥ 0.6; its
    // propensity (churn × p_alive) is not calibrated.
    let mut cs = ladder();
    cs[0].churn = 0.8;
    cs[1].churn = 0.9;
    cs[1].days_since_purchase = Some(10);
    let w = world(&cs);
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"action": "win_back"}, "size": {"top": 10}})),
    );
    assert_eq!(ids(&a, &w), ["c0"]);
    assert!((a.rows().next().unwrap().1.score - 0.4).abs() < 1e-12);
    assert!(a.summary.calibration.starts_with("not calibrated"));
    assert!(a.summary.lift.backtest.is_none() && a.summary.lift.estimated.is_none());
}

#[test]
fn the_holdout_is_deterministic_comparable_and_excluded_from_the_size() {
    let cs: Vec<C> = (0..5000)
        .map(|k| C::new(&format!("c{k:05}"), ((k * 7919) % 5000) as f64 / 5000.0))
        .collect();
    let w = world(&cs);
    let req = json!({"audience_id": "spring-coats", "target": {"category": "outerwear"},
                     "size": {"top": 1000}, "holdout": {"share": 0.2, "include": true}});
    let a = select(&w.source(), &w.plan(req.clone()));
    let b = select(&w.source(), &w.plan(req));
    assert_eq!(a.picks, b.picks);
    assert_eq!(a.summary.size, 1000);
    // About 0.2 / 0.8 × 1000 = 250 held-out customers would have made the cut.
    assert!(
        (200..=300).contains(&a.summary.control_size),
        "{}",
        a.summary.control_size
    );
    let h = holdout::audience_hash("spring-coats");
    let mut last_treated = f64::INFINITY;
    for (_, p) in a.rows() {
        let id = &w.snapshot.customers[p.index as usize].id;
        assert_eq!(
            p.control,
            holdout::is_control(holdout::customer_hash(id), h, 0.2),
            "{id}"
        );
        if !p.control {
            last_treated = p.score;
        }
    }
    // Every control customer scores at least as high as the audience's last customer.
    assert!(
        a.rows()
            .filter(|(_, p)| p.control)
            .all(|(_, p)| p.score >= last_treated)
    );
    assert!(a.rows().filter(|(_, p)| !p.control).count() == 1000);
    // Not included: the same audience without the control rows, ranks unchanged.
    let c = select(
        &w.source(),
        &w.plan(
            json!({"audience_id": "spring-coats", "target": {"category": "outerwear"},
                       "size": {"top": 1000}, "holdout": {"share": 0.2}}),
        ),
    );
    let treated: Vec<(usize, u32)> = a
        .rows()
        .filter(|(_, p)| !p.control)
        .map(|(r, p)| (r, p.index))
        .collect();
    let listed: Vec<(usize, u32)> = c.rows().map(|(r, p)| (r, p.index)).collect();
    assert_eq!(treated, listed);
    assert_eq!(c.summary.rows, 1000);
    assert_eq!(
        c.summary.funnel.last().unwrap().before,
        c.summary.funnel[c.summary.funnel.len() - 2].after
    );
    // Another audience id: another split.
    let d = select(
        &w.source(),
        &w.plan(
            json!({"audience_id": "autumn-coats", "target": {"category": "outerwear"},
                       "size": {"top": 1000}, "holdout": {"share": 0.2, "include": true}}),
        ),
    );
    assert_ne!(a.picks, d.picks);
    // Without an id, the id comes from the request: the same request splits the same way.
    let anon = json!({"target": {"category": "outerwear"}, "size": {"top": 1000},
                      "holdout": {"share": 0.2}});
    let e = w.plan(anon.clone());
    assert!(e.audience_id.starts_with("aud-"));
    assert_eq!(e.audience_id, w.plan(anon).audience_id);
}

#[test]
fn bad_requests_name_the_field() {
    let w = world(&ladder());
    let err = |req: serde_json::Value| w.try_plan(req).unwrap_err();
    let e = err(json!({"target": {"category": "socks"}, "size": {"top": 1}}));
    assert_eq!(e.field, "target.category");
    assert!(e.detail.contains("outerwear, denim"), "{}", e.detail);
    let e = err(json!({"target": {"category": "denim", "churn": true}, "size": {"top": 1}}));
    assert_eq!(e.field, "target");
    let e = err(json!({"size": {"top": 1}}));
    assert_eq!(e.field, "target");
    let e = err(json!({"target": {"action": "nope"}, "size": {"top": 1}}));
    assert_eq!(e.field, "target.action");
    assert!(e.detail.contains("coats, win_back"), "{}", e.detail);
    let e = err(json!({"target": {"churn": false}, "size": {"top": 1}}));
    assert_eq!(e.field, "target.churn");
    for (size, field) in [
        (json!({"top": 5, "min_probability": 0.3}), "size"),
        (json!({}), "size"),
        (json!({"top": 0}), "size.top"),
        (json!({"min_probability": 1.5}), "size.min_probability"),
        (
            json!({"budget": -5.0, "cost_per_contact": 1.0}),
            "size.budget",
        ),
        (json!({"budget": 100.0}), "size.cost_per_contact"),
        (
            json!({"budget": 100.0, "cost_per_contact": 0.0}),
            "size.cost_per_contact",
        ),
        (
            json!({"top": 5, "cost_per_contact": 1.0}),
            "size.cost_per_contact",
        ),
    ] {
        let e = err(json!({"target": {"category": "denim"}, "size": size}));
        assert_eq!(e.field, field, "{size}: {}", e.detail);
    }
    for (filters, field) in [
        (json!({"tiers": ["bronze", "diamond"]}), "filters.tiers[1]"),
        (json!({"channel": "fax"}), "filters.channel"),
        (
            json!({"min_churn_probability": -0.1}),
            "filters.min_churn_probability",
        ),
        (
            json!({"min_churn_probability": 0.8, "max_churn_probability": 0.2}),
            "filters.max_churn_probability",
        ),
        (
            json!({"exclude_contacted_within_days": 91}),
            "filters.exclude_contacted_within_days",
        ),
        (
            json!({"last_purchase_within_days": 30, "last_purchase_older_than_days": 60}),
            "filters.last_purchase_older_than_days",
        ),
    ] {
        let e = err(json!({"target": {"category": "denim"}, "size": {"top": 1},
                           "filters": filters}));
        assert_eq!(e.field, field, "{filters}: {}", e.detail);
    }
    let e = err(json!({"target": {"category": "denim"}, "size": {"top": 1},
                       "holdout": {"share": 1.0}}));
    assert_eq!(e.field, "holdout.share");
    let e = err(json!({"target": {"category": "denim"}, "size": {"top": 1},
                       "audience_id": "a b"}));
    assert_eq!(e.field, "audience_id");
    // An action not sent on the channel asked for.
    let e = err(json!({"target": {"action": "win_back"}, "size": {"top": 1},
                       "filters": {"channel": "push"}}));
    assert_eq!(e.field, "filters.channel");
    assert!(e.detail.contains("email"), "{}", e.detail);
    // A negative size does not even parse: serde names the path (the server turns it into a
    // 422 naming `size.top`).
    let e = serde_json::from_value::<lattice_audience::AudienceRequest>(
        json!({"target": {"category": "denim"}, "size": {"top": -5}}),
    )
    .unwrap_err();
    assert!(e.to_string().contains("-5"), "{e}");
}

#[test]
fn the_demo_model_is_recalibrated_and_lift_comes_from_its_backtest() {
    let w = demo();
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"top": 500}})),
    );
    let s = &a.summary;
    assert_eq!(s.size, 500);
    assert!(
        s.calibration.starts_with("recalibrated"),
        "{}",
        s.calibration
    );
    // The top tenth of 5,000 customers: the backtest's first decile lift.
    assert!((s.lift.depth - 0.1).abs() < 1e-12);
    let curve = &s.lift.curve;
    assert_eq!(curve.len(), 10);
    // (The first decile holds 484 of 4,848 backtest customers: 0.1 is just past it.)
    assert!((s.lift.backtest.unwrap() - curve[0].lift).abs() < 0.02 * curve[0].lift);
    assert!(curve[0].lift > 2.0, "{curve:?}");
    // Ranked by the model's score; recalibration keeps the order.
    let rows: Vec<_> = a.rows().map(|(_, p)| *p).collect();
    assert!(rows.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(
        rows.windows(2)
            .all(|w| w[0].probability >= w[1].probability)
    );
    let sum: f64 = rows.iter().map(|p| p.probability).sum();
    assert!((s.expected_conversions.mean - sum).abs() < 1e-9);
    assert!(s.expected_conversions.low < sum && sum < s.expected_conversions.high);
    // Mean probability in the audience well above the customer base's.
    assert!(s.lift.estimated.unwrap() > 2.0);
    // The backtest's best-decile rate is what the top customers are recalibrated towards.
    let top_decile = lattice_audience::read_backtest(&common::demo_dir())
        .0
        .unwrap();
    let outer = top_decile
        .affinity
        .iter()
        .find(|m| m.category == "outerwear")
        .unwrap();
    let d1 = &outer.metrics.deciles[0];
    let mean_p = sum / 500.0;
    assert!(
        (mean_p - d1.positive_rate).abs() < 0.5 * d1.positive_rate.max(0.01),
        "{mean_p} vs {}",
        d1.positive_rate
    );
    let _ = (as_of(), DAY_US);
}
