//! Each built-in kind: when it applies, its payload, its reason codes.

use chrono::TimeDelta;
use serde_json::json;

use crate::common::*;

/// Ranks a one-action catalog; `Ok(payload)` when ranked, `Err(detail)` when excluded.
fn one(
    kind: &str,
    extra: &str,
    c: &lattice_decide::Customer<'_>,
) -> Result<serde_json::Value, String> {
    let catalog = compile(&action("x", kind, extra)).unwrap();
    let d = decide(&catalog, c);
    match d.actions.first() {
        Some(a) => Ok(a.payload.clone()),
        None => Err(exclusion(&d, "x")
            .map(|(r, d)| format!("{r}: {d}"))
            .unwrap()),
    }
}

fn reasons(kind: &str, extra: &str, c: &lattice_decide::Customer<'_>) -> Vec<String> {
    let catalog = compile(&action("x", kind, extra)).unwrap();
    decide(&catalog, c).actions[0].reasons.clone()
}

#[test]
fn early_access_follows_category_affinity() {
    let v = values(&[]);
    let aff = [0.41, 0.05, 0.01];
    let c = customer(&v, &aff);
    let p = one("early_access", "category = \"outerwear\"", &c).unwrap();
    assert_eq!(p["category"], "outerwear");
    assert_eq!(
        reasons("early_access", "category = \"outerwear\"", &c),
        ["affinity_outerwear=0.41"]
    );
    // Below the minimum affinity, even when it is the top category.
    let low = [0.01, 0.005, 0.001];
    let e = one(
        "early_access",
        "category = \"outerwear\"",
        &customer(&v, &low),
    )
    .unwrap_err();
    assert!(e.starts_with("not_eligible: early_access rule"), "{e}");
    // Without a category: the customer's strongest.
    let p = one("early_access", "", &customer(&v, &[0.05, 0.3, 0.1])).unwrap();
    assert_eq!(p["category"], "footwear");
}

#[test]
fn early_access_needs_a_top_category() {
    let v = values(&[]);
    // With three categories every one is in a top 3: tighten it to the top 1.
    let toml = action("x", "early_access", "category = \"home\"");
    let catalog = lattice_decide::Catalog::compile_with(
        &parse(&toml),
        &settings(),
        &variables(),
        &categories(),
        lattice_decide::Tuning {
            top_categories: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let aff = [0.4, 0.3, 0.2];
    let d = decide(&catalog, &customer(&v, &aff));
    let (rule, detail) = exclusion(&d, "x").unwrap();
    assert_eq!(rule, "not_eligible");
    assert!(detail.contains("top categories"), "{detail}");
}

#[test]
fn insider_preview_is_for_top_tiers() {
    let v = values(&[]);
    let aff = [0.3, 0.1, 0.05];
    let mut c = customer(&v, &aff);
    c.spend_365d = 300.0; // silver
    let e = one("insider_preview", "category = \"outerwear\"", &c).unwrap_err();
    assert!(e.contains("top tiers"), "{e}");
    c.tier = Some("gold");
    let p = one("insider_preview", "category = \"outerwear\"", &c).unwrap();
    assert_eq!(p, json!({"category": "outerwear", "tier": "gold"}));
}

#[test]
fn discovery_offers_a_category_not_yet_bought() {
    let aff = [0.1, 0.3, 0.05];
    let v = values(&[("share_footwear", 0.05), ("share_outerwear", 0.9)]);
    let c = customer(&v, &aff);
    let p = one("discovery", "category = \"footwear\"", &c).unwrap();
    assert_eq!(p["category"], "footwear");
    assert_eq!(
        p["top_categories"],
        json!(["footwear", "outerwear", "home"])
    );
    let e = one("discovery", "category = \"outerwear\"", &c).unwrap_err();
    assert!(e.contains("already buys"), "{e}");
}

#[test]
fn progress_nudge_when_close_to_the_next_tier() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.spend_365d = 700.0; // silver; gold at 750, gap 500: 50 to go
    let p = one("progress_nudge", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"tier": "silver", "next_tier": "gold", "amount_to_go": 50.0,
               "currency": "EUR", "reward": "early access"})
    );
    assert_eq!(
        reasons("progress_nudge", "", &c),
        ["close_to_next_tier", "to_next_tier=50"]
    );
    c.spend_365d = 400.0; // 350 to go: not close
    assert!(
        one("progress_nudge", "", &c)
            .unwrap_err()
            .contains("not close")
    );
    c.spend_365d = 2500.0; // platinum: nowhere to go
    assert!(
        one("progress_nudge", "", &c)
            .unwrap_err()
            .contains("no next tier")
    );
}

#[test]
fn surprise_delight_for_silent_advocates() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.scores.clv = 900.0;
    c.scores.p_alive = 0.9;
    c.last_purchase_at = Some(now() - TimeDelta::days(75));
    let p = one("surprise_delight", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"suggested_points": 450.0, "days_since_purchase": 75.0})
    );
    c.last_purchase_at = Some(now() - TimeDelta::days(20));
    assert!(
        one("surprise_delight", "", &c)
            .unwrap_err()
            .contains("bought recently")
    );
    c.last_purchase_at = Some(now() - TimeDelta::days(75));
    c.scores.clv = 50.0;
    assert!(one("surprise_delight", "", &c).unwrap_err().contains("CLV"));
}

#[test]
fn tier_experience_above_the_entry_tier() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.tier = Some("gold");
    let p = one("tier_experience", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"tier": "gold", "tier_reward": "early access", "next_tier": "platinum"})
    );
    c.tier = Some("bronze");
    c.spend_365d = 10.0;
    assert!(
        one("tier_experience", "", &c)
            .unwrap_err()
            .contains("above the entry tier")
    );
}

#[test]
fn cart_reminder_follows_up_on_another_channel() {
    let v = values(&[
        ("carts_30d", 1.0),
        ("views_30d", 4.0),
        ("days_since_last_event", 1.0),
        ("view_share_home", 0.6),
        ("view_share_footwear", 0.2),
    ]);
    let c = customer(&v, &[]);
    let p = one("cart_reminder", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"category": "home", "carts_30d": 1.0, "views_30d": 4.0})
    );

    let catalog = compile(&action("x", "cart_reminder", "")).unwrap();
    let mut ctx = lattice_decide::Context::at(now());
    ctx.channel = Some(lattice_decide::Channel::Email);
    ctx.category = Some("footwear");
    let d = lattice_decide::rank(&catalog, &c, &ctx, &explain(5));
    assert_eq!(d.actions[0].channel, lattice_decide::Channel::Push);
    assert_eq!(d.actions[0].payload["category"], "footwear");
    // An email-only reminder cannot follow up an email visit.
    let catalog =
        compile(&action("x", "cart_reminder", "").replace("\"email\", \"push\"", "\"email\""))
            .unwrap();
    let d = lattice_decide::rank(&catalog, &c, &ctx, &explain(5));
    let (rule, detail) = exclusion(&d, "x").unwrap();
    assert_eq!(rule, "channel_filtered");
    assert!(detail.contains("another channel"), "{detail}");

    let idle = values(&[("carts_30d", 1.0), ("days_since_last_event", 20.0)]);
    assert!(
        one("cart_reminder", "", &customer(&idle, &[]))
            .unwrap_err()
            .contains("no recent activity")
    );
    let none = values(&[("views_30d", 1.0)]);
    assert!(
        one("cart_reminder", "", &customer(&none, &[]))
            .unwrap_err()
            .contains("no cart")
    );
}

#[test]
fn post_purchase_is_a_check_in() {
    let v = values(&[("share_footwear", 0.7), ("share_home", 0.3)]);
    let mut c = customer(&v, &[]);
    c.last_purchase_at = Some(now() - TimeDelta::days(3));
    let p = one("post_purchase", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"message": "check_in", "days_since_purchase": 3.0, "favourite_category": "footwear"})
    );
    c.last_purchase_at = Some(now() - TimeDelta::days(40));
    assert!(one("post_purchase", "", &c).unwrap_err().contains("window"));
}

#[test]
fn win_back_for_drifting_customers() {
    let v = values(&[]);
    let aff = [0.01, 0.02, 0.2];
    let mut c = customer(&v, &aff);
    c.scores.churn_probability = 0.72;
    c.scores.p_alive = 0.4;
    c.last_purchase_at = Some(now() - TimeDelta::days(120));
    let p = one("win_back", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"days_since_purchase": 120.0, "favourite_category": "home"})
    );
    assert_eq!(
        reasons("win_back", "", &c),
        ["churn_probability=0.72", "p_alive=0.40"]
    );
    c.scores.churn_probability = 0.3;
    assert!(
        one("win_back", "", &c)
            .unwrap_err()
            .contains("churn probability")
    );
    c.scores.churn_probability = 0.72;
    c.last_purchase_at = None;
    assert!(one("win_back", "", &c).unwrap_err().contains("no purchase"));
}

#[test]
fn points_expiry_for_churn_risk_with_points() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.scores.churn_probability = 0.8;
    c.points_balance = 1200.0;
    let p = one("points_expiry", "", &c).unwrap();
    assert_eq!(p, json!({"points_balance": 1200.0}));
    assert_eq!(
        reasons("points_expiry", "", &c),
        [
            "points_balance=1200",
            "churn_probability=0.80",
            "p_alive=0.80"
        ]
    );
    c.points_balance = 0.0;
    assert!(
        one("points_expiry", "", &c)
            .unwrap_err()
            .contains("no points")
    );
}

#[test]
fn birthday_in_the_local_birth_month() {
    let v = values(&[("share_outerwear", 1.0)]);
    let mut c = customer(&v, &[]);
    c.tier = Some("gold");
    c.birth_date = Some(date("1990-06-20"));
    let p = one("birthday", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"reward_points": 300.0, "tier": "gold", "favourite_category": "outerwear"})
    );
    c.birth_date = Some(date("1990-07-01"));
    assert!(one("birthday", "", &c).unwrap_err().contains("birth month"));
    // 1 July 03:00 UTC is still 30 June in Los Angeles.
    let catalog = compile(&action("x", "birthday", "")).unwrap();
    c.tz = chrono_tz::America::Los_Angeles;
    let july = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2025, 7, 1, 3, 0, 0).unwrap();
    let d = lattice_decide::rank(
        &catalog,
        &c,
        &lattice_decide::Context::at(july),
        &explain(5),
    );
    assert!(d.actions.is_empty());
    c.tz = chrono_tz::Europe::Paris;
    let d = lattice_decide::rank(
        &catalog,
        &c,
        &lattice_decide::Context::at(july),
        &explain(5),
    );
    assert_eq!(ranked_ids(&d), ["x"]);
}

#[test]
fn gratitude_on_the_signup_anniversary() {
    let v = values(&[("frequency", 14.0), ("share_home", 0.5)]);
    let mut c = customer(&v, &[]);
    c.signup_date = Some(date("2021-05-30")); // anniversary 3 days before now
    let p = one("gratitude", "", &c).unwrap();
    assert_eq!(
        p,
        json!({"years": 4, "orders": 14.0, "favourite_category": "home"})
    );
    c.signup_date = Some(date("2021-03-01"));
    assert!(
        one("gratitude", "", &c)
            .unwrap_err()
            .contains("anniversary")
    );
    c.signup_date = Some(date("2025-05-30")); // joined days ago
    assert!(one("gratitude", "", &c).is_err());
}

#[test]
fn service_recovery_after_a_negative_moment() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    assert!(
        one("service_recovery", "", &c)
            .unwrap_err()
            .contains("no recent negative")
    );
    c.last_negative_at = Some(now() - TimeDelta::days(2));
    let p = one("service_recovery", "payload = { subject = \"Sorry\" }", &c).unwrap();
    assert_eq!(p, json!({"days_since_negative": 2.0, "subject": "Sorry"}));
    assert_eq!(
        reasons("service_recovery", "", &c),
        ["recent_negative_moment", "days_since_negative=2"]
    );
}

#[test]
fn custom_is_only_its_expression() {
    let v = values(&[("recency_days", 40.0)]);
    let c = customer(&v, &[]);
    let p = one(
        "custom",
        "eligible = \"recency_days > 30\"\npayload = { subject = \"Hi\" }",
        &c,
    )
    .unwrap();
    assert_eq!(p, json!({"subject": "Hi"}));
    assert_eq!(
        reasons("custom", "eligible = \"recency_days > 30\"", &c),
        ["recency_days=40"]
    );
    let e = one("custom", "eligible = \"recency_days > 60\"", &c).unwrap_err();
    assert_eq!(e, "not_eligible: eligible `recency_days > 60` is false");
    one("custom", "", &c).unwrap();
}

#[test]
fn an_explicit_expression_narrows_a_kind() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.birth_date = Some(date("1990-06-20"));
    c.tier = Some("silver");
    assert!(one("birthday", "eligible = \"tier == 'gold'\"", &c).is_err());
    c.tier = Some("gold");
    one("birthday", "eligible = \"tier == 'gold'\"", &c).unwrap();
    // ... and never widens it.
    c.birth_date = Some(date("1990-01-20"));
    assert!(
        one("birthday", "eligible = \"true\"", &c)
            .unwrap_err()
            .contains("birth month")
    );
}

#[test]
fn the_catalog_payload_wins_on_a_shared_key() {
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.spend_365d = 700.0;
    let p = one(
        "progress_nudge",
        "payload = { reward = \"double points\", subject = \"So close\" }",
        &c,
    )
    .unwrap();
    assert_eq!(p["reward"], "double points");
    assert_eq!(p["subject"], "So close");
    assert_eq!(p["amount_to_go"], 50.0);
}
