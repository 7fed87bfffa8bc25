//! Writing a large audience keeps memory flat: the writers hold one row (CSV, JSON) or one row
//! group (Parquet) at a time, whatever the number of rows. Measured with a counting allocator
//! (this test binary's only test, so nothing else allocates meanwhile).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use common::{C, world};
use lattice_audience::{Format, select, write};
use serde_json::json;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                grew(new_size - layout.size());
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts bytes and drops them, like a socket.
struct Sink(usize);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// (bytes written, peak extra heap while writing).
fn stream(w: &common::World, rows: usize, format: Format) -> (usize, usize) {
    let a = select(
        &w.source(),
        &w.plan(json!({"target": {"category": "outerwear"}, "size": {"top": rows}})),
    );
    assert_eq!(a.summary.size, rows);
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let sink = write(&a, w.source(), format, Sink(0)).unwrap();
    (sink.0, PEAK.load(Relaxed) - base)
}

#[test]
fn memory_stays_flat_while_a_large_audience_is_written() {
    let n = 300_000;
    let cs: Vec<C> = (0..n)
        .map(|k| {
            C::new(
                &format!("customer-{k:08}"),
                ((k * 7919) % n) as f64 / n as f64,
            )
        })
        .collect();
    let w = world(&cs);
    for format in [Format::Json, Format::Csv, Format::Parquet] {
        let (small_bytes, small_peak) = stream(&w, 30_000, format);
        let (bytes, peak) = stream(&w, n, format);
        eprintln!(
            "{format:?}: {small_bytes} bytes with {small_peak} bytes of heap; \
             {bytes} bytes with {peak} bytes of heap"
        );
        assert!(
            bytes > 9 * small_bytes,
            "{format:?}: {bytes} vs {small_bytes}"
        );
        // Ten times the rows, (almost) the same memory: nothing grows with the audience.
        assert!(
            peak < small_peak + small_peak / 4 + 64 * 1024,
            "{format:?}: {peak} bytes of heap for {n} rows vs {small_peak} for 30,000"
        );
        match format {
            // Text: far less than the output (buffering it would need at least as much).
            Format::Json | Format::Csv => {
                assert!(
                    peak * 4 < bytes,
                    "{format:?}: {peak} bytes of heap for {bytes} out"
                )
            }
            // Parquet compresses ~10x, so compare with one row group's worth instead.
            Format::Parquet => assert!(peak < 16 << 20, "{peak} bytes of heap"),
        }
    }
}
