//! A small work-sharing map over all cores, for independent fits and for scoring chunks.

/// `f` over `items` on all cores, results in the order of `items`.
pub fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let n = items.len();
    let slots: Vec<Mutex<Option<T>>> = items.into_iter().map(|t| Mutex::new(Some(t))).collect();
    let out: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let item = slots[i].lock().ok().and_then(|mut s| s.take());
                    if let Some(item) = item {
                        let r = f(item);
                        if let Ok(mut o) = out[i].lock() {
                            *o = Some(r);
                        }
                    }
                }
            });
        }
    });
    out.into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .expect("every job ran to completion")
        })
        .collect()
}
