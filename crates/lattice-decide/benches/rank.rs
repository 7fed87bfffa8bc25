//! `rank` over a 30-action catalog: the sample catalog's 16 actions plus 14 more, several with
//! CEL expressions, for a customer with recent contacts and send-time profiles (`fixture/`).
//!
//! `cargo bench -p lattice-decide` (target: under 5 µs per call). A recorded decision with
//! learning on the same input: `cargo bench -p lattice-runtime --bench recorded`.

#![allow(clippy::unwrap_used)] // tests and benchmarks may unwrap

use criterion::{Criterion, criterion_group, criterion_main};
use lattice_decide::{Catalog, RankOptions, rank};
use std::hint::black_box;

mod fixture;

/// The `lattice` binary's allocator, so the figures are what the server's ranking costs
/// (glibc's malloc and free were a fifth of this bench's instructions).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bench_rank(c: &mut Criterion) {
    let f = fixture::Fixture::new(0.0, 0.0);
    let (catalog, actions, settings) = (&f.catalog, &f.actions, &f.settings);
    let (variables, categories, now, profile) = (&f.variables, &f.categories, f.now, &f.profile);
    let customer = f.customer("c0042");
    let context = f.context();
    let options = f.options;
    let decision = rank(catalog, &customer, &context, &options);
    assert_eq!(decision.actions.len(), 5);

    c.bench_function("rank 30 actions, limit 5", |b| {
        b.iter(|| {
            rank(
                black_box(catalog),
                black_box(&customer),
                black_box(&context),
                &options,
            )
        })
    });
    c.bench_function("rank 30 actions, limit 5, written as JSON", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(4096);
            catalog.rank_json(
                black_box(&customer),
                black_box(&context),
                &options,
                &mut out,
            );
            out
        })
    });
    // Each action screened on its own, as audiences ask. (A recorded decision used to pay this
    // on top of ranking for its chooser's arms; it now shares the ranking's `Screening`.)
    let n = catalog.actions().count();
    c.bench_function("assess each of 30 actions", |b| {
        b.iter(|| {
            (0..n)
                .filter_map(|i| {
                    catalog
                        .assess(i, black_box(&customer), black_box(&context), None)
                        .ok()
                })
                .count()
        })
    });
    let explain = RankOptions {
        explain: true,
        ..options
    };
    c.bench_function("rank 30 actions, limit 5, explain", |b| {
        b.iter(|| {
            rank(
                black_box(catalog),
                black_box(&customer),
                black_box(&context),
                &explain,
            )
        })
    });
    // The slot scan of one send time: the week ahead, outside the catalog's quiet hours.
    c.bench_function("send_at, a week ahead", |b| {
        b.iter(|| {
            catalog.send_at(
                black_box(now),
                chrono_tz::America::New_York,
                Some(black_box(profile)),
                false,
            )
        })
    });
    c.bench_function("compile 30 actions", |b| {
        b.iter(|| Catalog::compile(black_box(actions), settings, variables, categories))
    });
}

criterion_group!(benches, bench_rank);
criterion_main!(benches);
