//! lattice-runtime as the server and the CLI use it: a model directory that cannot be served is
//! refused with a typed error naming the file, and events build online state on a loaded model.

use std::path::PathBuf;

use lattice_decide::{Context, RankOptions};
use lattice_events::Event;
use lattice_runtime::learn::Segment;
use lattice_runtime::{CACHED_SETS, LoadError, Recorded, Runtime, Scratch};

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo")
}

#[test]
fn a_directory_that_cannot_be_served_is_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let Err(e) = Runtime::load(dir.path(), None) else {
        panic!("an empty directory loaded");
    };
    assert!(matches!(e, LoadError::Artifact(_)), "{e:?}");
    assert!(e.to_string().contains("manifest.json"), "{e}");

    // A catalog that does not parse: the configuration file is named.
    let actions = dir.path().join("actions.toml");
    std::fs::write(&actions, "[[action]]\nid = 3\n").unwrap();
    let Err(e) = Runtime::load(&demo(), Some(&actions)) else {
        panic!("a broken catalog loaded");
    };
    assert!(matches!(e, LoadError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("actions.toml"), "{e}");

    // A catalog that parses but does not fit the model: named too.
    std::fs::write(
        &actions,
        "[[action]]\nid = \"a\"\nname = \"A\"\nkind = \"win_back\"\nchannels = [\"email\"]\n\
         value = 1.0\neligible = \"no_such_feature > 1\"\n",
    )
    .unwrap();
    let Err(e) = Runtime::load(&demo(), Some(&actions)) else {
        panic!("a catalog with an unknown variable loaded");
    };
    assert!(matches!(e, LoadError::Catalog { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("actions.toml") && text.contains("no_such_feature"),
        "{text}"
    );
}

#[test]
fn events_build_online_state_that_the_decision_layer_reads() {
    let rt = Runtime::load(&demo(), None).unwrap();
    assert!(rt.online.is_empty());
    let known = rt.record(0).id.clone();
    let at = rt.as_of_us() + 3_600_000_000;
    let purchase = |customer: &str| Event {
        customer_id: customer.to_string(),
        ts_us: at,
        event_type: "purchase".into(),
        amount: Some(25.0),
        order_id: Some(format!("o-{customer}")),
        ..Event::default()
    };
    let (a, b) = (purchase(&known), purchase("someone-new"));
    let before = Event {
        ts_us: rt.as_of_us(),
        ..purchase(&known)
    };
    let applied = rt.online.apply(&rt, &[&a, &b, &before]);
    assert_eq!(applied.events, 2);
    assert_eq!(
        applied.before_as_of, 1,
        "an event at as_of is the snapshot's"
    );
    assert_eq!(applied.new_customers, 1);
    assert_eq!(rt.online.len(), 2);

    let c = rt.online.get(&known).unwrap();
    assert!(c.in_snapshot);
    assert_eq!(c.at_us, at);
    assert_eq!(c.record.last_purchase_us, Some(at));
    let mut scratch = Scratch::default();
    let customer = c.customer(&rt, &mut scratch);
    assert_eq!(customer.id, known);
    assert_eq!(customer.values.len(), rt.snapshot.variables.len());

    let new = rt.online.get("someone-new").unwrap();
    assert!(!new.in_snapshot);
    assert_eq!(new.values.len(), rt.snapshot.variables.len());
}

#[test]
fn the_thompson_cache_keeps_at_most_its_limit_of_sets() {
    let rt = Runtime::load(&demo(), None).unwrap();
    let m = &rt.model;
    let mut learning = lattice_runtime::Learning::new(&m.catalog, &m.settings);
    assert_eq!(learning.cache_limit, CACHED_SETS);
    learning.explore = 0.5;
    learning.cache_limit = 3;
    // A closed decision in every cell: every posterior is shared, so every set is cacheable.
    let now = chrono::DateTime::from_timestamp_micros(rt.as_of_us()).unwrap();
    let ids: Vec<(String, String)> = (0..m.catalog.len() * learning.segments.len())
        .map(|k| (format!("d{k}"), format!("c{k}")))
        .collect();
    for (k, (decision_id, customer_id)) in ids.iter().enumerate() {
        learning.opened(
            &m.catalog,
            Recorded {
                decision_id,
                customer_id,
                action: k % m.catalog.len(),
                at: now - chrono::TimeDelta::days(400),
                segment: Segment(k / m.catalog.len()),
                prior: 0.2,
            },
        );
    }
    learning.close_until(now);
    let context = Context::at(now);
    let options = RankOptions::default();
    let (mut most, mut sets) = (0, std::collections::HashSet::new());
    for i in 0..m.customers().min(400) {
        let mut scratch = Scratch::default();
        let customer = m.customer(i, &mut scratch);
        let id = format!("x{i}");
        let (_, chosen, segment) = learning.decide(&m.catalog, &customer, &context, &options, &id);
        // Different segments are different sets (and so may be different eligible actions).
        sets.insert(segment);
        most = most.max(learning.cached_sets());
        // What a full cache evicted is computed again, to the same probability.
        let (_, again, _) = learning.decide(&m.catalog, &customer, &context, &options, &id);
        assert_eq!(again.action, chosen.action);
    }
    assert!(
        sets.len() > 3,
        "only {} segments met: the limit was not exceeded",
        sets.len()
    );
    assert_eq!(most, 3);
}
