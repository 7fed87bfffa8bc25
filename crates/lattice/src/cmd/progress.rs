//! Progress of a multi-step command: a spinner naming the running step (on a terminal), and a
//! table of step timings at the end.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Steps {
    names: &'static [&'static str],
    bar: ProgressBar,
    /// (step, started) of each step run so far.
    times: Mutex<Vec<(usize, Instant)>>,
}

impl Steps {
    pub fn new(names: &'static [&'static str]) -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed:>4}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Steps {
            names,
            bar,
            times: Mutex::new(Vec::new()),
        }
    }

    pub fn start(&self, i: usize) {
        let n = self.names.len();
        let name = self.names.get(i).copied().unwrap_or("");
        self.bar.set_message(format!("{}/{n} {name}", i + 1));
        if let Ok(mut t) = self.times.lock() {
            t.push((i, Instant::now()));
        }
    }

    /// Clears the spinner and prints how long each step took.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        let Ok(t) = self.times.lock() else { return };
        let end = Instant::now();
        println!("{:<52} {:>9}", "step", "seconds");
        for (k, (i, start)) in t.iter().enumerate() {
            let stop = t.get(k + 1).map_or(end, |n| n.1);
            println!(
                "{:<52} {:>9.1}",
                self.names.get(*i).copied().unwrap_or(""),
                (stop - *start).as_secs_f64()
            );
        }
    }
}
