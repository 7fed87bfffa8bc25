//! Ranking: the rules, explain, channels, caps, ties, send times, JSON.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use lattice_decide::{
    Channel, Contact, Context, HOURS_PER_WEEK, Learned, PerChannel, RankOptions, SendTimeProfile,
    rank, rank_with,
};
use serde_json::json;

use crate::common::*;

const POLICY: &str = "[policy]\nmax_contacts_per_7d = { email = 2, sms = 1, push = 3 }\nquiet_hours_start = 21\nquiet_hours_end = 8\nsuppression_days = 14\n\n";

fn catalog_of(actions: &[String]) -> lattice_decide::Catalog {
    compile(&format!("{POLICY}{}", actions.concat())).unwrap()
}

#[test]
fn explain_lists_every_excluded_action_with_its_rule() {
    let catalog = catalog_of(&[
        action("ok", "custom", ""),
        action("old", "custom", "valid_to = 2025-05-31"),
        action("sms_only", "custom", "").replace("\"email\", \"push\"", "\"sms\""),
        action("cooling", "custom", "cooldown_days = 14"),
        action("promo", "custom", "promotional = true"),
        action("rule", "custom", "eligible = \"recency_days > 30\""),
        action("broken", "custom", "eligible = \"context.page == 'home'\""),
        action("kind", "birthday", ""),
    ]);
    let v = values(&[("recency_days", 5.0)]);
    let mut c = customer(&v, &[]);
    c.consent.sms = false;
    let contacts = [Contact {
        action_id: "cooling",
        channel: Channel::Email,
        at: now() - TimeDelta::days(3),
    }];
    c.contacts = &contacts;
    let d = decide(&catalog, &c);
    assert_eq!(ranked_ids(&d), ["ok", "promo"]);
    let rules: Vec<(&str, &str)> = d
        .excluded
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.id.as_str(), e.rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [
            ("old", "outside_validity"),
            ("sms_only", "no_consent"),
            ("cooling", "cooldown"),
            ("rule", "not_eligible"),
            ("broken", "eligibility_error"),
            ("kind", "not_eligible"),
        ]
    );
    assert_eq!(
        exclusion(&d, "old").unwrap().1,
        "valid … to 2025-05-31; the customer's local date is 2025-06-02"
    );
    assert_eq!(
        exclusion(&d, "rule").unwrap().1,
        "eligible `recency_days > 30` is false"
    );
    assert_eq!(
        exclusion(&d, "broken").unwrap().1,
        "eligible `context.page == 'home'` failed: context.page is absent (test it with has(context.page))"
    );
    assert_eq!(
        exclusion(&d, "kind").unwrap().1,
        "birthday rule: no birth date"
    );
    assert!(
        exclusion(&d, "cooling")
            .unwrap()
            .1
            .contains("cooldown 14 days")
    );

    // Without explain: the same ranking, no list.
    let quiet = rank(
        &catalog,
        &c,
        &Context::at(now()),
        &RankOptions {
            limit: 50,
            ..Default::default()
        },
    );
    assert_eq!(quiet.actions, d.actions);
    assert!(quiet.excluded.is_none());
}

#[test]
fn learned_propensities_and_control_groups() {
    let catalog = catalog_of(&[
        action("promo", "custom", ""),
        action("other", "custom", ""),
        action("thanks", "post_purchase", ""),
    ]);
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.last_purchase_at = Some(now() - TimeDelta::days(3));
    let options = explain(10);
    // Learned propensities re-rank: `other` learned to respond far better than `promo`.
    let learned = Learned {
        propensities: &[Some(0.01), Some(0.9)],
        control: &[],
        observed: &[Some((140, 12)), Some((50, 45))],
    };
    let d = rank_with(&catalog, &c, &Context::at(now()), &options, &learned);
    assert_eq!(ranked_ids(&d), ["other", "thanks", "promo"]);
    assert_eq!(d.actions[0].propensity, 0.9);
    assert!(
        d.actions[0]
            .reasons
            .contains(&"observed 45 of 50".to_string())
    );
    // The JSON writer says the same.
    let mut json = Vec::new();
    lattice_decide::rank_json_with(
        &catalog,
        &c,
        &Context::at(now()),
        &options,
        &learned,
        &mut json,
    );
    assert!(
        String::from_utf8(json)
            .unwrap()
            .contains("\"observed 45 of 50\"")
    );
    assert!((d.actions[0].score - (0.9 * 50.0 - 0.1)).abs() < 1e-12);

    // A control group holds out promotional actions only, and says so.
    let learned = Learned {
        propensities: &[],
        control: &[true, false, true],
        observed: &[],
    };
    let d = rank_with(&catalog, &c, &Context::at(now()), &options, &learned);
    assert!(!ranked_ids(&d).contains(&"promo"));
    assert!(ranked_ids(&d).contains(&"thanks"));
    let (rule, detail) = exclusion(&d, "promo").unwrap();
    assert_eq!(rule, "control_group");
    assert!(detail.contains("control group"), "{detail}");
}

#[test]
fn suppression_after_a_negative_moment() {
    let catalog = catalog_of(&[
        action("promo", "early_access", "category = \"outerwear\""),
        action("win_back", "win_back", "promotional = false"),
        action("sorry", "service_recovery", ""),
        action("thanks", "post_purchase", ""),
    ]);
    let v = values(&[]);
    let aff = [0.4, 0.0, 0.0];
    let mut c = customer(&v, &aff);
    c.scores.churn_probability = 0.9;
    c.last_purchase_at = Some(now() - TimeDelta::days(10));
    c.last_negative_at = Some(now() - TimeDelta::days(1));
    let d = decide(&catalog, &c);
    assert_eq!(ranked_ids(&d), ["sorry", "thanks"]);
    let (rule, detail) = exclusion(&d, "promo").unwrap();
    assert_eq!(rule, "suppressed_after_negative");
    assert!(
        detail.contains("1 days after a negative moment"),
        "{detail}"
    );
    // Even flagged non-promotional, a win-back never follows a bad support call.
    let (rule, detail) = exclusion(&d, "win_back").unwrap();
    assert_eq!(rule, "suppressed_after_negative");
    assert!(detail.contains("never follows"), "{detail}");

    // Past the suppression window the promotion is back, the apology gone.
    c.last_negative_at = Some(now() - TimeDelta::days(20));
    let d = decide(&catalog, &c);
    assert!(ranked_ids(&d).contains(&"promo"));
    assert!(!ranked_ids(&d).contains(&"sorry"));
}

#[test]
fn frequency_caps_count_recent_contacts_and_higher_ranked_actions() {
    let email_only = |id: &str, value: f64| {
        action(id, "custom", "")
            .replace("\"email\", \"push\"", "\"email\"")
            .replace("value = 50.0", &format!("value = {value}"))
    };
    let catalog = catalog_of(&[
        email_only("a", 30.0),
        email_only("b", 20.0),
        email_only("c", 10.0),
    ]);
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    // One email 2 days ago, one 8 days ago (outside the window): one of two left.
    let contacts = [
        Contact {
            action_id: "x",
            channel: Channel::Email,
            at: now() - TimeDelta::days(2),
        },
        Contact {
            action_id: "x",
            channel: Channel::Email,
            at: now() - TimeDelta::days(8),
        },
    ];
    c.contacts = &contacts;
    let d = decide(&catalog, &c);
    assert_eq!(ranked_ids(&d), ["a"]);
    let (rule, detail) = exclusion(&d, "b").unwrap();
    assert_eq!(rule, "frequency_cap");
    assert!(detail.contains("higher-ranked"), "{detail}");

    // At the cap already: every email action is excluded up front.
    let full = [
        contacts[0],
        Contact {
            at: now() - TimeDelta::hours(1),
            ..contacts[0]
        },
    ];
    c.contacts = &full;
    let d = decide(&catalog, &c);
    assert!(d.actions.is_empty());
    assert_eq!(
        exclusion(&d, "a").unwrap(),
        ("frequency_cap", "email: 2 of 2 contacts in 7 days")
    );
}

#[test]
fn channel_choice_prefers_the_current_channel_then_catalog_order() {
    let catalog = catalog_of(&[action("a", "custom", "")]);
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    let d = decide(&catalog, &c);
    assert_eq!(d.actions[0].channel, Channel::Email);
    let mut ctx = Context::at(now());
    ctx.channel = Some(Channel::Push);
    let d = rank(&catalog, &c, &ctx, &explain(5));
    assert_eq!(d.actions[0].channel, Channel::Push);
    assert!(d.actions[0].reasons.contains(&"on_channel_now".to_string()));
    // No consent on push: email after all.
    c.consent.push = false;
    let d = rank(&catalog, &c, &ctx, &explain(5));
    assert_eq!(d.actions[0].channel, Channel::Email);
    // The filter.
    let only_sms = RankOptions {
        channel: Some(Channel::Sms),
        ..explain(5)
    };
    let d = rank(&catalog, &c, &ctx, &only_sms);
    assert_eq!(exclusion(&d, "a").unwrap().0, "channel_filtered");
    let only_email = RankOptions {
        channel: Some(Channel::Email),
        ..explain(5)
    };
    assert_eq!(
        rank(&catalog, &c, &ctx, &only_email).actions[0].channel,
        Channel::Email
    );
}

#[test]
fn scores_sort_descending_and_ties_break_by_id() {
    let catalog = catalog_of(&[
        action("zeta", "custom", ""),
        action("alpha", "custom", ""),
        action("mid", "custom", "").replace("value = 50.0", "value = 80.0"),
        action("weighted", "custom", "weight = 3.0"),
    ]);
    let v = values(&[]);
    let c = customer(&v, &[]);
    let d = decide(&catalog, &c);
    assert_eq!(ranked_ids(&d), ["weighted", "mid", "alpha", "zeta"]);
    let a = &d.actions[0];
    // custom without category: 0.1 × p_alive (0.8).
    assert!((a.propensity - 0.08).abs() < 1e-12);
    assert!((a.expected_value - 4.0).abs() < 1e-12);
    assert!((a.score - (4.0 * 3.0 - 0.1)).abs() < 1e-12);
    let two = rank(
        &catalog,
        &c,
        &Context::at(now()),
        &RankOptions {
            limit: 2,
            ..Default::default()
        },
    );
    assert_eq!(ranked_ids(&two), ["weighted", "mid"]);
    let none = rank(
        &catalog,
        &c,
        &Context::at(now()),
        &RankOptions {
            limit: 0,
            ..Default::default()
        },
    );
    assert!(none.actions.is_empty());
}

#[test]
fn context_and_action_in_expressions() {
    let catalog = catalog_of(&[
        action(
            "shoes",
            "custom",
            "category = \"footwear\"\neligible = \"has(context.category) && context.category == action.category\"",
        ),
        action(
            "coats",
            "custom",
            "category = \"outerwear\"\neligible = \"has(context.category) && context.category == action.category\"",
        ),
        action(
            "home_page",
            "custom",
            "eligible = \"has(context.page) && context.page.startsWith('/home')\"",
        ),
    ]);
    let v = values(&[]);
    let aff = [0.1, 0.1, 0.1];
    let c = customer(&v, &aff);
    let mut ctx = Context::at(now());
    ctx.category = Some("footwear");
    ctx.page = Some("/home/new");
    let d = rank(&catalog, &c, &ctx, &explain(5));
    let mut ids = ranked_ids(&d);
    ids.sort();
    assert_eq!(ids, ["home_page", "shoes"]);
    let d = rank(&catalog, &c, &Context::at(now()), &explain(5));
    assert!(d.actions.is_empty());
    assert_eq!(exclusion(&d, "shoes").unwrap().0, "not_eligible");
}

#[test]
fn variables_may_carry_the_scores() {
    // A value row that already holds churn_probability: the row wins over `Scores`.
    let toml = action("x", "custom", "eligible = \"churn_probability > 0.5\"");
    let vars: Vec<String> = vec!["churn_probability".into()];
    let catalog = lattice_decide::Catalog::compile(&parse(&toml), &settings(), &vars, &[]).unwrap();
    let row = [0.9];
    let c = customer(&row, &[]); // Scores say 0.2
    assert_eq!(ranked_ids(&decide(&catalog, &c)), ["x"]);
}

fn profile_peaking_at(how: usize) -> Box<SendTimeProfile> {
    let mut p = Box::new([0.1; HOURS_PER_WEEK]);
    p[how] = 1.0;
    p
}

#[test]
fn send_at_is_outside_quiet_hours_across_a_dst_change() {
    let catalog = catalog_of(&[action("a", "custom", "")]);
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    c.tz = chrono_tz::Europe::Berlin;
    // Saturday 29 March 2025, 23:00 CET; clocks go from 02:00 to 03:00 CEST on Sunday.
    let now = Utc.with_ymd_and_hms(2025, 3, 29, 22, 0, 0).unwrap();
    // Best hour: Sunday 02:00 local, in quiet hours (and skipped that night): never chosen.
    // Second best: Sunday 09:00 local, which is 07:00 UTC after the change (08:00 before).
    let mut profile = profile_peaking_at(6 * 24 + 2);
    profile[6 * 24 + 9] = 0.9;
    c.send_time = PerChannel {
        email: Some(&profile),
        ..PerChannel::default()
    };
    let d = rank(&catalog, &c, &Context::at(now), &explain(5));
    let at = d.actions[0].send_at;
    assert_eq!(at.to_rfc3339(), "2025-03-30T09:00:00+02:00");
    assert_eq!(
        at.with_timezone(&Utc),
        Utc.with_ymd_and_hms(2025, 3, 30, 7, 0, 0).unwrap()
    );
    let json = serde_json::to_value(&d.actions[0]).unwrap();
    assert_eq!(json["send_at"], "2025-03-30T09:00:00+02:00");

    // On the channel now, in the daytime: now.
    let noon = Utc.with_ymd_and_hms(2025, 3, 31, 10, 0, 0).unwrap();
    let mut ctx = Context::at(noon);
    ctx.channel = Some(Channel::Email);
    let d = rank(&catalog, &c, &ctx, &explain(5));
    assert_eq!(
        d.actions[0].send_at,
        noon.with_timezone(&chrono_tz::Europe::Berlin)
            .fixed_offset()
    );
}

#[test]
fn decisions_serialise_as_snake_case_json() {
    let catalog = catalog_of(&[
        action("ok", "custom", "payload = { subject = \"Hello\" }"),
        action("no", "custom", "eligible = \"recency_days > 30\""),
    ]);
    let v = values(&[]);
    let c = customer(&v, &[]);
    let d = decide(&catalog, &c);
    let j = serde_json::to_value(&d).unwrap();
    let at: DateTime<chrono::FixedOffset> = d.actions[0].send_at;
    assert_eq!(
        j,
        json!({
            "customer_id": "c1",
            "actions": [{
                "id": "ok", "name": "ok", "kind": "custom", "channel": "email",
                "propensity": d.actions[0].propensity,
                "expected_value": d.actions[0].expected_value,
                "score": d.actions[0].score,
                "payload": {"subject": "Hello"},
                "send_at": at.to_rfc3339(),
                "reasons": [],
            }],
            "excluded": [{"id": "no", "rule": "not_eligible", "detail": "eligible `recency_days > 30` is false"}],
        })
    );
    // 10:00 in New York on a Monday, no profile, not on the channel: now.
    assert_eq!(at.to_rfc3339(), "2025-06-02T10:00:00-04:00");
}

#[test]
fn huge_numbers_in_the_catalog_do_not_panic() {
    // actions.toml refuses a cooldown longer than the contact history kept (issue 21, class
    // 6); the decision layer must still survive one built in code.
    let toml = format!(
        "{POLICY}{}{}",
        action("forever", "custom", "cooldown_days = 4294967295"),
        action(
            "value",
            "custom",
            "eligible = \"action.value > 10.0 && action.weight == 1\"",
        )
    );
    let refused = lattice_catalog::actions::ActionCatalog::parse(&toml).unwrap_err();
    assert!(refused.contains("cooldown_days"), "{refused}");
    let mut parsed = parse(&toml.replace("cooldown_days = 4294967295", ""));
    parsed.actions[0].cooldown_days = Some(u32::MAX);
    let catalog =
        lattice_decide::Catalog::compile(&parsed, &settings(), &variables(), &categories())
            .unwrap();
    let v = values(&[]);
    let mut c = customer(&v, &[]);
    let contacts = [Contact {
        action_id: "forever",
        channel: Channel::Push,
        at: Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).unwrap(),
    }];
    c.contacts = &contacts;
    let d = decide(&catalog, &c);
    assert_eq!(exclusion(&d, "forever").unwrap().0, "cooldown");
    assert_eq!(ranked_ids(&d), ["value"]);
}

#[test]
fn learning_settings_reach_the_compiled_catalog() {
    let catalog = compile(&format!(
        "[policy]\nexplore = 0.1\ncontrol_share = 0.05\n\n{}{}",
        action("promo", "custom", "holdout = 0.2"),
        action(
            "thanks",
            "post_purchase",
            "[action.response]\nevent = \"app_open\"\nwindow_days = 3"
        ),
    ))
    .unwrap();
    assert_eq!((catalog.explore(), catalog.control_share()), (0.1, 0.05));
    let promo = catalog.action("promo").unwrap();
    assert_eq!(promo.holdout, 0.2);
    assert!(promo.promotional);
    // The kind's default response: custom without a category answers with any purchase.
    assert_eq!(
        promo.response.event,
        lattice_catalog::actions::ResponseEvent::Purchase
    );
    assert_eq!(promo.response.window_days, 14);
    let thanks = catalog.action("thanks").unwrap();
    assert_eq!(thanks.response.window_days, 3);
    assert!(!thanks.promotional);
}
