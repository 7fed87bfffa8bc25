//! What learning adds to a decision over a 30-action catalog (compare with lattice-decide's
//! `rank 30 actions, limit 5`): posterior means, control-group membership, and choosing with
//! the logged probability, greedy and by Thompson sampling (the probability integrated, or
//! from cached shares).
//!
//! `cargo bench -p lattice-learn`

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lattice_learn::{Arm, Holdouts, Posteriors, Segment, choose};

fn bench_learn(c: &mut Criterion) {
    let n = 30;
    let ids: Vec<String> = (0..n).map(|i| format!("action_{i:02}")).collect();
    let mut post = Posteriors::new(n, 12);
    for a in 0..n {
        for k in 0..(200 + 37 * a) {
            post.record(a, Segment(5), 0.1, k % (5 + a % 7) == 0);
        }
    }
    let arms: Vec<Arm<'_>> = (0..n)
        .map(|a| Arm {
            id: &ids[a],
            posterior: post.posterior(a, Segment(5), 0.1),
            value: 20.0 + a as f64,
            weight: 1.0,
            cost: 0.1,
        })
        .collect();
    // A universal control and holdouts on a third of the actions.
    let holdouts = Holdouts::new(
        0.05,
        (0..n).map(|a| if a % 3 == 0 { 0.1 } else { 0.0 }).collect(),
    )
    .unwrap();

    c.bench_function("posterior means, 30 actions", |b| {
        b.iter(|| {
            (0..n)
                .map(|a| post.mean(a, black_box(Segment(5)), 0.1))
                .sum::<f64>()
        })
    });
    c.bench_function("control groups, 30 actions", |b| {
        b.iter(|| holdouts.control_for(black_box("C0000042"), ids.iter().map(String::as_str)))
    });
    c.bench_function("choose among 30, greedy", |b| {
        b.iter(|| choose(black_box(&arms), "d-42", 0.0))
    });
    let shares = lattice_learn::thompson::thompson_shares(&arms, "seed");
    let mut j = 0u64;
    c.bench_function("choose among 30, Thompson with cached shares", |b| {
        b.iter(|| {
            j += 1;
            lattice_learn::thompson::choose_with_shares(
                black_box(&arms),
                &format!("d-{j}"),
                1.0,
                &shares,
            )
        })
    });
    let mut i = 0u64;
    c.bench_function(
        "choose among 30, Thompson with integrated probability",
        |b| {
            b.iter(|| {
                i += 1;
                choose(black_box(&arms), &format!("d-{i}"), 1.0)
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench_learn
}
criterion_main!(benches);
