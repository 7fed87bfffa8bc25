//! Issue 18's speed bar: a recorded decision over the 30-action catalog with learning and
//! exploration on (`[policy] explore = 0.1`, control groups, every cell with closed decisions),
//! measured beside today's plain ranking of the same customer in the same run, so the ratio
//! is not at the mercy of this machine's drift between runs.
//!
//! `cargo bench -p lattice-runtime --bench recorded` (bar: recorded ≤ 1.5 × plain).

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use std::hint::black_box;

use chrono::TimeDelta;
use criterion::{Criterion, criterion_group, criterion_main};
use lattice_decide::rank;
use lattice_runtime::{Learning, Recorded};

// Some fields serve only lattice-decide's bench.
#[allow(dead_code)]
#[path = "../../lattice-decide/benches/fixture/mod.rs"]
mod fixture;

/// The `lattice` binary's allocator, so the figures are the server's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Closed decisions per action in the customer's segment: enough that every cell has counted
/// some (the steady state of a server that has been learning for a while).
/// `unseen`: an action whose cell gets no decisions, so its prior is centred on each
/// customer's own propensity and no Thompson probability can be cached.
fn learned(f: &fixture::Fixture, unseen: Option<usize>) -> Learning {
    let learning = Learning::new(&f.catalog, &f.settings);
    let customer = f.customer("c0042");
    let segment = learning.segment(&customer);
    let start = f.now - TimeDelta::days(200);
    let mut ids = Vec::new();
    for a in (0..f.catalog.len()).filter(|&a| Some(a) != unseen) {
        for k in 0..(20 + 3 * a) {
            ids.push((format!("d{a}-{k}"), format!("c{a}-{k}"), a));
        }
    }
    for (decision_id, customer_id, action) in &ids {
        learning.opened(
            &f.catalog,
            Recorded {
                decision_id,
                customer_id,
                action: *action,
                at: start,
                segment,
                prior: 0.1,
            },
        );
    }
    // A purchase after every fifth decision: responses for the actions that count purchases.
    let events: Vec<lattice_events::Event> = ids
        .iter()
        .step_by(5)
        .map(|(_, customer_id, _)| lattice_events::Event {
            customer_id: customer_id.clone(),
            ts_us: (start + TimeDelta::days(1)).timestamp_micros(),
            event_type: "purchase".into(),
            channel: None,
            category: Some("outerwear".into()),
            amount: Some(50.0),
            quantity: Some(1.0),
            order_id: None,
            sentiment: None,
            action_id: None,
            event_id: None,
            decision_id: None,
        })
        .collect();
    let refs: Vec<&lattice_events::Event> = events.iter().collect();
    learning.observe(&refs, f.now - TimeDelta::days(1));
    learning
}

fn bench(c: &mut Criterion) {
    let f = fixture::Fixture::new(0.1, 0.05);
    let learning = learned(&f, None);
    // A customer outside the universal control, so the ranking has promotional actions to rank.
    let ids: Vec<String> = (42..).take(100).map(|i| format!("c{i:04}")).collect();
    let id = ids
        .iter()
        .find(|id| !learning.holdouts.universal_control(id))
        .unwrap();
    let customer = f.customer(id);
    let context = f.context();
    let options = f.options;
    let (decision, chosen, _) = learning.decide(&f.catalog, &customer, &context, &options, "d-0");
    assert_eq!(decision.actions.len(), 5);
    assert!(chosen.action.is_some());
    assert!(chosen.observed.iter().flatten().count() > 10);
    // The same, less the cell of the greedy pick: every decision computes its probability.
    let unseen = learned(&f, chosen.action.map(|a| a.0));
    let (_, cold, _) = unseen.decide(&f.catalog, &customer, &context, &options, "d-0");
    assert!(cold.action.is_some());

    c.bench_function("rank 30 actions, limit 5 (today's)", |b| {
        b.iter(|| {
            rank(
                black_box(&f.catalog),
                black_box(&customer),
                black_box(&context),
                &options,
            )
        })
    });
    // A new decision id each time, as each request has: a tenth explore.
    for (name, learning) in [
        (
            "recorded decision, 30 actions, learning + explore 0.1 (cached probabilities)",
            &learning,
        ),
        (
            "recorded decision, 30 actions, learning + explore 0.1 (uncached: a cell with no closed decision)",
            &unseen,
        ),
    ] {
        let mut i = 0u64;
        let mut id = String::new();
        c.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                id.clear();
                std::fmt::Write::write_fmt(&mut id, format_args!("{i:032x}")).unwrap();
                learning.decide(
                    black_box(&f.catalog),
                    black_box(&customer),
                    black_box(&context),
                    &options,
                    &id,
                )
            })
        });
    }
    assert_eq!(unseen.cached_sets(), 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
