//! Catalog compile errors name the action, the field and the position in the expression.

use lattice_decide::{Catalog, CatalogErrorKind, Position};

use crate::common::*;

fn eligible_error(expr: &str) -> lattice_decide::CatalogError {
    let toml = action("vip", "custom", &format!("eligible = {expr:?}"));
    compile(&toml).unwrap_err()
}

#[test]
fn invalid_cel_reports_line_and_column() {
    let e = eligible_error("churn_probability > ");
    assert_eq!(e.kind, CatalogErrorKind::InvalidCel);
    assert_eq!(e.action.as_deref(), Some("vip"));
    assert_eq!(e.field, "eligible");
    assert_eq!(
        e.position,
        Some(Position {
            line: 1,
            column: 21
        })
    );
    let text = e.to_string();
    assert!(
        text.starts_with("action \"vip\": eligible, line 1, column 21:"),
        "{text}"
    );

    let e = eligible_error("churn_probability > 0.5 &&\n  recency_days >> 3");
    assert_eq!(e.kind, CatalogErrorKind::InvalidCel);
    assert_eq!(
        e.position,
        Some(Position {
            line: 2,
            column: 17
        })
    );
}

#[test]
fn unknown_identifier_with_position_and_suggestion() {
    let e = eligible_error("recency_days > 30 && churn_prob > 0.5");
    assert_eq!(e.kind, CatalogErrorKind::UnknownIdentifier);
    assert_eq!(
        e.position,
        Some(Position {
            line: 1,
            column: 22
        })
    );
    assert!(e.message.contains("`churn_prob`"), "{e}");
    assert!(
        e.message.contains("did you mean `churn_probability`"),
        "{e}"
    );
    // A score of a category the model does not have.
    let e = eligible_error("affinity_garden > 0.2");
    assert_eq!(e.kind, CatalogErrorKind::UnknownIdentifier);
}

#[test]
fn known_names_compile() {
    for expr in [
        "recency_days > 30 && orders_90d == 0",
        "churn_probability * clv > 50.0 || p_alive < 0.1 || expected_purchases >= 1",
        "affinity_outerwear > 0.2 && share_home < 0.5",
        "tier == 'gold' || tier == null",
        "has(context.category) && context.category == action.category",
        "context.channel == 'email' || !has(context.channel)",
        "action.kind == 'custom' && action.value > action.cost * 10.0",
        "['outerwear', 'home'].exists(c, c == action.id)",
        "has(context.page) && context.page.matches('^/sale')",
    ] {
        let toml = action("ok", "custom", &format!("eligible = {expr:?}"));
        compile(&toml).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
}

#[test]
fn unknown_function_and_field() {
    let e = eligible_error("recency_days > 1 && lookup(recency_days)");
    assert_eq!(e.kind, CatalogErrorKind::UnknownFunction);
    assert_eq!(
        e.position,
        Some(Position {
            line: 1,
            column: 21
        })
    );
    let e = eligible_error("context.weather == 'rain'");
    assert_eq!(e.kind, CatalogErrorKind::UnknownField);
    assert!(e.message.contains("context.weather"), "{e}");
    let e = eligible_error("action.colour == 'red'");
    assert_eq!(e.kind, CatalogErrorKind::UnknownField);
}

#[test]
fn type_errors_and_non_boolean_expressions() {
    let e = eligible_error("recency_days > 'a month'");
    assert_eq!(e.kind, CatalogErrorKind::TypeError);
    assert!(e.message.contains("type error"), "{e}");
    let e = eligible_error("recency_days + 1.0");
    assert_eq!(e.kind, CatalogErrorKind::TypeError);
    assert!(
        e.message.contains("evaluates to a double, expected a bool"),
        "{e}"
    );
}

#[test]
fn unknown_category() {
    let e = compile(&action("garden", "early_access", "category = \"garden\"")).unwrap_err();
    assert_eq!(e.kind, CatalogErrorKind::UnknownCategory);
    assert_eq!(e.action.as_deref(), Some("garden"));
    assert_eq!(e.field, "category");
    assert!(e.message.contains("outerwear, footwear, home"), "{e}");
    // The slug of a category name matches too.
    compile(&action("ok", "early_access", "category = \"Outerwear\"")).unwrap();
}

// `ActionCatalog::parse` already rejects these; a catalog built in code must be checked too.
#[test]
fn unknown_channel_and_duplicate_id_in_a_catalog_built_in_code() {
    let mut c = parse(&action("a", "custom", ""));
    c.actions[0].channels.push("fax".into());
    let e = Catalog::compile(&c, &settings(), &variables(), &categories()).unwrap_err();
    assert_eq!(e.kind, CatalogErrorKind::UnknownChannel);
    assert_eq!(e.action.as_deref(), Some("a"));
    assert!(e.message.contains("\"fax\""), "{e}");

    let mut c = parse(&action("a", "custom", ""));
    c.actions.push(c.actions[0].clone());
    let e = Catalog::compile(&c, &settings(), &variables(), &categories()).unwrap_err();
    assert_eq!(e.kind, CatalogErrorKind::DuplicateId);
    assert!(e.message.contains("actions #1 and #2"), "{e}");

    let mut c = parse(&action("a", "custom", ""));
    c.policy.max_contacts_per_7d.insert("fax".into(), 2);
    let e = Catalog::compile(&c, &settings(), &variables(), &categories()).unwrap_err();
    assert_eq!(e.kind, CatalogErrorKind::UnknownChannel);
    assert_eq!(e.action, None);
    assert!(e.to_string().starts_with("[policy]"), "{e}");

    let mut c = parse(&action("a", "custom", ""));
    c.actions[0].kind = "spam".into();
    let e = Catalog::compile(&c, &settings(), &variables(), &categories()).unwrap_err();
    assert_eq!(e.kind, CatalogErrorKind::UnknownKind);
}

#[test]
fn a_kind_needing_a_missing_feature_is_rejected() {
    let c = parse(&action("cart", "cart_reminder", ""));
    let vars: Vec<String> = vec!["recency_days".into()];
    let e = Catalog::compile(&c, &settings(), &vars, &categories()).unwrap_err();
    assert_eq!(e.kind, CatalogErrorKind::MissingFeature);
    assert!(e.message.contains("carts_30d"), "{e}");
}

#[test]
fn compiles_against_whatever_the_model_provides() {
    // A model without categories or most features still compiles kinds that do not need them.
    let toml = [
        action("wb", "win_back", "eligible = \"ltv > 10.0\""),
        action("bd", "birthday", ""),
    ]
    .concat();
    let c = parse(&toml);
    let vars: Vec<String> = vec!["ltv".into()];
    let catalog = Catalog::compile(&c, &settings(), &vars, &[]).unwrap();
    assert_eq!(catalog.len(), 2);
    assert_eq!(catalog.action_ids().collect::<Vec<_>>(), ["wb", "bd"]);
    assert_eq!(catalog.variables(), vars.as_slice());
}
