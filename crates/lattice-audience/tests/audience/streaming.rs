//! Writing a large audience keeps memory flat: the writers hold one row (CSV, JSON) or one row
//! group (Parquet) at a time, whatever the number of rows. Measured with an allocator that
//! counts per thread: the writer runs on the test's thread, and the other tests of this binary
//! allocate on theirs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Write};

use crate::common::{self, C, world};
use lattice_audience::{Format, select, write};
use serde_json::json;

struct Counting;

thread_local! {
    // Bytes this thread holds (signed: it may free what another thread allocated) and its peak.
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn moved(by: isize) {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + by;
        c.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            moved(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        moved(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            moved(new_size as isize - layout.size() as isize);
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
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let sink = write(&a, w.source(), format, Sink(0)).unwrap();
    (sink.0, (PEAK.with(Cell::get) - base) as usize)
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
