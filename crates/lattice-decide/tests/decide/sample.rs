//! The real sample catalog against the demo model's feature names.

use std::path::PathBuf;

use chrono::{TimeDelta, TimeZone, Utc};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use lattice_decide::{Catalog, Channel, Context, Customer, PerChannel, RankOptions, Scores, rank};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

/// Feature names and categories from the demo model's manifest, plus the score names.
fn demo_model() -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(repo("models/demo/manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut names: Vec<String> = manifest["feature_schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    let categories: Vec<String> = manifest["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    names.extend(["churn_probability", "p_alive", "expected_purchases", "clv"].map(String::from));
    names.extend(
        categories
            .iter()
            .map(|c| format!("affinity_{}", lattice_decide::slug(c))),
    );
    (names, categories)
}

#[test]
fn the_sample_catalog_compiles_and_ranks() {
    let actions = ActionCatalog::from_file(&repo("training-data/sample/actions.toml")).unwrap();
    let settings = Settings::load_or_default(&repo("training-data/sample/lattice.toml")).unwrap();
    let (variables, categories) = demo_model();
    let catalog = Catalog::compile(&actions, &settings, &variables, &categories).unwrap();
    assert_eq!(catalog.len(), 16);

    let now = Utc.with_ymd_and_hms(2025, 6, 30, 18, 0, 0).unwrap();
    let mut values = vec![0.0; variables.len()];
    let mut set = |name: &str, x: f64| {
        let i = variables.iter().position(|v| v == name).unwrap();
        values[i] = x;
    };
    set("recency_days", 20.0);
    set("frequency", 9.0);
    set("carts_30d", 1.0);
    set("views_30d", 6.0);
    set("days_since_last_event", 1.0);
    set("share_outerwear", 0.6);
    set("view_share_outerwear", 0.5);
    // accessories, footwear, denim, beauty, outerwear, home, knitwear, kids
    let affinity = [0.01, 0.12, 0.02, 0.0, 0.41, 0.03, 0.05, 0.0];
    for (c, a) in categories.iter().zip(affinity) {
        set(&format!("affinity_{c}"), a);
    }
    set("churn_probability", 0.3);
    set("p_alive", 0.9);
    set("clv", 650.0);
    let contacts = [lattice_decide::Contact {
        action_id: "early_access_footwear",
        channel: Channel::Email,
        at: now - TimeDelta::days(5),
    }];
    let customer = Customer {
        id: "c0042",
        values: &values,
        scores: Scores {
            churn_probability: 0.3,
            p_alive: 0.9,
            expected_purchases: 2.0,
            clv: 650.0,
            affinity: &affinity,
        },
        spend_365d: 700.0,
        points_balance: 800.0,
        tz: chrono_tz::America::New_York,
        consent: PerChannel {
            email: true,
            sms: false,
            push: true,
        },
        birth_date: Some(chrono::NaiveDate::from_ymd_opt(1988, 6, 14).unwrap()),
        last_purchase_at: Some(now - TimeDelta::days(20)),
        contacts: &contacts,
        ..Customer::default()
    };
    let mut context = Context::at(now);
    context.channel = Some(Channel::Push);
    context.category = Some("outerwear");
    let options = RankOptions {
        limit: 5,
        channel: None,
        explain: true,
    };
    let d = rank(&catalog, &customer, &context, &options);

    let ids: Vec<&str> = d.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids[0], "early_access_outerwear", "{ids:?}");
    assert!(ids.contains(&"cart_reminder"), "{ids:?}");
    assert!(ids.contains(&"tier_progress"), "{ids:?}");
    let top = &d.actions[0];
    assert_eq!(top.channel, Channel::Push);
    assert_eq!(
        top.send_at,
        now.with_timezone(&chrono_tz::America::New_York)
            .fixed_offset()
    );
    assert_eq!(top.payload["subject"], "Your early access to the coat edit");
    assert!(
        top.reasons.contains(&"affinity_outerwear=0.41".to_string()),
        "{:?}",
        top.reasons
    );
    let cart = d.actions.iter().find(|a| a.id == "cart_reminder").unwrap();
    assert_eq!(
        cart.channel,
        Channel::Email,
        "a cart reminder follows up on another channel"
    );
    let nudge = d.actions.iter().find(|a| a.id == "tier_progress").unwrap();
    assert_eq!(nudge.payload["amount_to_go"], 50.0);
    assert_eq!(nudge.payload["reward"], "Early access to every drop");

    let excluded = d.excluded.as_ref().unwrap();
    let rule_of = |id: &str| {
        excluded
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.rule.as_str())
    };
    assert_eq!(rule_of("early_access_footwear"), Some("cooldown"));
    assert_eq!(rule_of("win_back"), Some("not_eligible"));
    assert_eq!(rule_of("service_recovery"), Some("not_eligible"));
    let json = serde_json::to_string_pretty(&d).unwrap();
    assert!(json.contains("\"rule\": \"cooldown\""), "{json}");

    // A bad support call yesterday: the apology leads, nothing promotional follows.
    let unhappy = Customer {
        last_negative_at: Some(now - TimeDelta::days(1)),
        ..customer
    };
    let d = rank(&catalog, &unhappy, &context, &options);
    let ids: Vec<&str> = d.actions.iter().map(|a| a.id.as_str()).collect();
    // thank_you (gratitude) is not promotional either, but it is not the anniversary.
    assert_eq!(ids, ["service_recovery"]);
    let rule_of = |id: &str| {
        let list = d.excluded.as_ref().unwrap();
        list.iter().find(|e| e.id == id).map(|e| e.rule.as_str())
    };
    assert_eq!(
        rule_of("early_access_outerwear"),
        Some("suppressed_after_negative")
    );
    assert_eq!(rule_of("cart_reminder"), Some("suppressed_after_negative"));
}
