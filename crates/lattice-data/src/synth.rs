//! `lattice generate`: a synthetic retail loyalty world with planted truth.
//!
//! Each customer is simulated from their own random streams (seeded from the run's seed and
//! the customer's index), so the output depends only on the seed and the options: worker
//! threads generate chunks of customers in any order and the writer puts them back in order.
//! The generative process and its parameters are documented in docs/synthetic-data.md.

mod catalog;
mod model;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, mpsc};

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, ListBuilder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

pub use catalog::{CATEGORIES, CATEGORY_SHARES, TIERS, TIMEZONES, actions_toml, lattice_toml};
pub use model::{
    BGNBD_A, BGNBD_ALPHA, BGNBD_B, BGNBD_R, GG_GAMMA, GG_P, GG_Q, PREF_CONCENTRATION,
    SUPPORT_DROPOUT_PROB, SUPPORT_DROPOUT_SENTIMENT,
};

use crate::error::{DataError, Result};
use crate::output::{GENERATED_DIR, OutputDir};
use crate::schema::{customers_schema, events_schema, ts_type};
use catalog::ACTIONS;
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use model::{Customer, Ev, N_KINDS, World};

/// Customers per unit of work; fixed so the output does not depend on the thread count.
const CHUNK: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub customers: u64,
    pub seed: u64,
    /// First day of the history (UTC).
    pub start: NaiveDate,
    /// Last day of the history (UTC); nothing after `end` 23:59:59 is written.
    pub end: NaiveDate,
    /// Worker threads; 0 means one per available core. The output is the same for any value.
    pub threads: usize,
    /// Replace `out_dir` even when it is not a generated data directory.
    pub force: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            customers: 10_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid date"),
            end: NaiveDate::from_ymd_opt(2025, 6, 30).expect("valid date"),
            threads: 2,
            force: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateSummary {
    pub customers: u64,
    pub events: u64,
    /// Purchase orders (an order has 1–3 `purchase` lines).
    pub orders: u64,
    pub alive_at_end: u64,
    /// Sum of purchase amounts, before returns.
    pub revenue: f64,
    /// Rows per event type.
    pub event_types: BTreeMap<String, u64>,
    /// The files written, in the order written.
    pub files: Vec<PathBuf>,
}

static TRUTH_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let f64_col = |name: &str| Field::new(name, DataType::Float64, false);
    let mut fields = vec![
        Field::new("customer_id", DataType::Utf8, false),
        f64_col("true_purchase_rate_per_year"),
        f64_col("true_dropout_prob"),
        Field::new("dropout_ts", ts_type(), true),
        Field::new("alive_at_end", DataType::Boolean, false),
        f64_col("true_mean_spend"),
        f64_col("engagement"),
    ];
    fields.extend(CATEGORIES.iter().map(|c| f64_col(&format!("pref_{c}"))));
    fields.extend([
        Field::new("true_best_hour_of_week", DataType::Int32, false),
        Field::new(
            "true_top3_hours_of_week",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            false,
        ),
        Field::new("timezone", DataType::Utf8, false),
        Field::new("first_purchase_ts", ts_type(), false),
        Field::new("dropout_cause", DataType::Utf8, true),
        Field::new("true_top_category", DataType::Utf8, false),
        Field::new("true_best_hour_of_day", DataType::Int32, false),
    ]);
    Arc::new(Schema::new(fields))
});

/// Schema of `truth.parquet`: one row per customer with the planted parameters.
pub fn truth_schema() -> SchemaRef {
    TRUTH_SCHEMA.clone()
}

/// Generates a synthetic world into `out_dir` (created if missing): `events.parquet`,
/// `customers.parquet`, `truth.parquet`, `actions.toml` and `lattice.toml`.
pub fn generate(opts: &GenerateOptions, out_dir: &Path) -> Result<GenerateSummary> {
    generate_with_progress(opts, out_dir, &mut |_, _| {})
}

/// [`generate`], calling `progress(customers_written, customers_total)` after each chunk.
pub fn generate_with_progress(
    opts: &GenerateOptions,
    out_dir: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<GenerateSummary> {
    if opts.customers == 0 {
        return Err(DataError::invalid(
            out_dir,
            "--customers must be at least 1",
        ));
    }
    if opts.end < opts.start + chrono::Duration::days(60) {
        return Err(DataError::invalid(
            out_dir,
            format!(
                "end date {} must be at least 60 days after start date {} (signups stop 30 days \
                 before the end)",
                opts.end, opts.start
            ),
        ));
    }
    // The world is written beside `out_dir` and swapped in whole at the end.
    let output = OutputDir::create(out_dir, GENERATED_DIR, opts.force)?;
    let tmp = output.path();

    let actions_text = actions_toml();
    let actions_path = tmp.join("actions.toml");
    // The generated catalog must satisfy the contract it is an example of.
    ActionCatalog::parse(&actions_text)
        .map_err(|m| DataError::invalid(&actions_path, format!("generated catalog: {m}")))?;
    let settings_text = lattice_toml();
    let settings_path = tmp.join("lattice.toml");
    let settings = Settings::parse(&settings_text)
        .map_err(|m| DataError::invalid(&settings_path, format!("generated settings: {m}")))?;
    write_text(&actions_path, &actions_text)?;
    write_text(&settings_path, &settings_text)?;

    let world = World::new(opts.seed, opts.customers, opts.start, opts.end, settings);
    let names = [
        "events.parquet",
        "customers.parquet",
        "truth.parquet",
        "actions.toml",
        "lattice.toml",
    ];
    let paths = [names[0], names[1], names[2]].map(|n| tmp.join(n));
    // On error the temporary directory is dropped with everything in it.
    let mut summary = write_tables(&world, opts, &paths, progress)?;
    output.commit()?;
    summary.files = names.iter().map(|n| out_dir.join(n)).collect();
    Ok(summary)
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| DataError::io(path, e))
}

/// Per-chunk counters, summed into the summary.
#[derive(Default)]
struct Stats {
    kinds: [u64; N_KINDS],
    orders: u64,
    alive: u64,
    revenue: f64,
}

struct Chunk {
    events: RecordBatch,
    customers: RecordBatch,
    truth: RecordBatch,
    stats: Stats,
}

/// Hands out chunk numbers to workers, at most `window` ahead of the writer, so memory stays
/// bounded however uneven the workers are.
struct Claims {
    state: Mutex<ClaimState>,
    cv: Condvar,
    chunks: u64,
    window: u64,
}

struct ClaimState {
    next: u64,
    written: u64,
    abort: bool,
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClaimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn claim(&self) -> Option<u64> {
        let mut s = self.lock();
        loop {
            if s.abort || s.next >= self.chunks {
                return None;
            }
            if s.next < s.written + self.window {
                s.next += 1;
                return Some(s.next - 1);
            }
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
    fn written(&self) {
        self.lock().written += 1;
        self.cv.notify_all();
    }
    fn abort(&self) {
        self.lock().abort = true;
        self.cv.notify_all();
    }
}

fn write_tables(
    world: &World,
    opts: &GenerateOptions,
    paths: &[PathBuf; 3],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<GenerateSummary> {
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let chunks = opts.customers.div_ceil(CHUNK);
    let claims = Claims {
        state: Mutex::new(ClaimState {
            next: 0,
            written: 0,
            abort: false,
        }),
        cv: Condvar::new(),
        chunks,
        window: 2 * threads as u64 + 2,
    };
    let mut events = crate::write::ParquetFile::create(&paths[0], events_schema())?;
    let mut customers = crate::write::ParquetFile::create(&paths[1], customers_schema())?;
    let mut truth = crate::write::ParquetFile::create(&paths[2], truth_schema())?;
    let mut summary = GenerateSummary::default();
    let mut kinds = [0u64; N_KINDS];

    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::channel::<(u64, Chunk)>();
        for _ in 0..threads {
            let tx = tx.clone();
            let claims = &claims;
            scope.spawn(move || {
                while let Some(i) = claims.claim() {
                    if tx.send((i, make_chunk(world, opts.customers, i))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut ready: BTreeMap<u64, Chunk> = BTreeMap::new();
        let mut next = 0u64;
        let mut write_all = || -> Result<()> {
            for (i, chunk) in rx.iter() {
                ready.insert(i, chunk);
                while let Some(c) = ready.remove(&next) {
                    events.write(&c.events)?;
                    customers.write(&c.customers)?;
                    truth.write(&c.truth)?;
                    summary.customers += c.customers.num_rows() as u64;
                    summary.events += c.events.num_rows() as u64;
                    summary.orders += c.stats.orders;
                    summary.alive_at_end += c.stats.alive;
                    summary.revenue += c.stats.revenue;
                    for (k, n) in kinds.iter_mut().zip(c.stats.kinds) {
                        *k += n;
                    }
                    next += 1;
                    claims.written();
                    progress(summary.customers, opts.customers);
                }
            }
            Ok(())
        };
        let result = write_all();
        if result.is_err() {
            claims.abort();
        }
        result
    })?;
    if summary.customers != opts.customers {
        // Only possible if a worker died; its panic is re-raised by the scope, so this is a
        // guard rather than an expected path.
        return Err(DataError::invalid(
            &paths[0],
            format!(
                "generated {} of {} customers",
                summary.customers, opts.customers
            ),
        ));
    }
    events.finish()?;
    customers.finish()?;
    truth.finish()?;
    for (i, n) in kinds.iter().enumerate() {
        if *n > 0 {
            summary
                .event_types
                .insert(crate::schema::KNOWN_EVENT_TYPES[i].to_string(), *n);
        }
    }
    Ok(summary)
}

/// Simulates chunk `i` and builds its three batches.
fn make_chunk(world: &World, total: u64, i: u64) -> Chunk {
    let lo = i * CHUNK;
    let hi = (lo + CHUNK).min(total);
    let n = (hi - lo) as usize;
    let mut ev_cols = EventCols::with_capacity(n * 24);
    let mut cu_cols = CustomerCols::with_capacity(n);
    let mut tr_cols = TruthCols::with_capacity(n);
    let mut stats = Stats::default();
    let mut evs: Vec<Ev> = Vec::with_capacity(256);
    for idx in lo..hi {
        let c = world.simulate(idx, &mut evs);
        ev_cols.push(&c, &evs, &mut stats);
        cu_cols.push(&c);
        tr_cols.push(&c, world.end);
        stats.orders += c.orders;
        stats.revenue += c.revenue;
        stats.alive += u64::from(c.dropout.is_none());
    }
    Chunk {
        events: ev_cols.finish(),
        customers: cu_cols.finish(),
        truth: tr_cols.finish(),
        stats,
    }
}

struct EventCols {
    customer_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    event_type: StringBuilder,
    channel: StringBuilder,
    category: StringBuilder,
    amount: Float64Builder,
    quantity: Float64Builder,
    order_id: StringBuilder,
    sentiment: Float64Builder,
    action_id: StringBuilder,
    event_id: StringBuilder,
    buf: String,
}

impl EventCols {
    fn with_capacity(n: usize) -> Self {
        EventCols {
            customer_id: StringBuilder::with_capacity(n, n * 8),
            ts: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            event_type: StringBuilder::with_capacity(n, n * 8),
            channel: StringBuilder::with_capacity(n, n * 5),
            category: StringBuilder::with_capacity(n, n * 6),
            amount: Float64Builder::with_capacity(n),
            quantity: Float64Builder::with_capacity(n),
            order_id: StringBuilder::with_capacity(n, n * 4),
            sentiment: Float64Builder::with_capacity(n),
            action_id: StringBuilder::with_capacity(n, n * 4),
            event_id: StringBuilder::with_capacity(n, 0),
            buf: String::new(),
        }
    }

    fn push(&mut self, c: &Customer, evs: &[Ev], stats: &mut Stats) {
        for e in evs {
            stats.kinds[e.kind as usize] += 1;
            self.customer_id.append_value(&c.id);
            self.ts.append_value(e.ts);
            self.event_type.append_value(e.kind.name());
            self.channel.append_option(e.channel.map(|c| c.name()));
            self.category
                .append_option(e.category.map(|k| CATEGORIES[k as usize]));
            self.amount.append_option(e.amount);
            self.quantity.append_option(e.quantity);
            match e.order {
                Some(o) => {
                    self.buf.clear();
                    // Writing to a String cannot fail.
                    let _ = write!(self.buf, "{}-{o}", c.id);
                    self.order_id.append_value(&self.buf);
                }
                None => self.order_id.append_null(),
            }
            self.sentiment.append_option(e.sentiment);
            self.action_id
                .append_option(e.action.map(|a| ACTIONS[a as usize].id));
            self.event_id.append_null();
        }
    }

    fn finish(mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.customer_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.order_id.finish()),
            Arc::new(self.sentiment.finish()),
            Arc::new(self.action_id.finish()),
            Arc::new(self.event_id.finish()),
        ];
        RecordBatch::try_new(events_schema(), cols).expect("builders match the events schema")
    }
}

struct CustomerCols {
    customer_id: StringBuilder,
    signup_ts: TimestampMicrosecondBuilder,
    birth_date: Date32Builder,
    tier: StringBuilder,
    points_balance: Float64Builder,
    timezone: StringBuilder,
    consent: [BooleanBuilder; 3],
}

impl CustomerCols {
    fn with_capacity(n: usize) -> Self {
        CustomerCols {
            customer_id: StringBuilder::with_capacity(n, n * 8),
            signup_ts: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            birth_date: Date32Builder::with_capacity(n),
            tier: StringBuilder::with_capacity(n, n * 6),
            points_balance: Float64Builder::with_capacity(n),
            timezone: StringBuilder::with_capacity(n, n * 16),
            consent: std::array::from_fn(|_| BooleanBuilder::with_capacity(n)),
        }
    }

    fn push(&mut self, c: &Customer) {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        self.customer_id.append_value(&c.id);
        self.signup_ts.append_value(c.signup);
        self.birth_date
            .append_value((c.birth_date - epoch).num_days() as i32);
        self.tier.append_value(c.tier);
        self.points_balance.append_value(c.points);
        self.timezone.append_value(c.tz_name);
        for (i, b) in self.consent.iter_mut().enumerate() {
            b.append_value(c.final_consent(i));
        }
    }

    fn finish(mut self) -> RecordBatch {
        let [email, sms, push] = &mut self.consent;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.customer_id.finish()),
            Arc::new(self.signup_ts.finish()),
            Arc::new(self.birth_date.finish()),
            Arc::new(self.tier.finish()),
            Arc::new(self.points_balance.finish()),
            Arc::new(self.timezone.finish()),
            Arc::new(email.finish()),
            Arc::new(sms.finish()),
            Arc::new(push.finish()),
        ];
        RecordBatch::try_new(customers_schema(), cols).expect("builders match the customers schema")
    }
}

struct TruthCols {
    customer_id: StringBuilder,
    rate: Float64Builder,
    dropout_prob: Float64Builder,
    dropout_ts: TimestampMicrosecondBuilder,
    alive: BooleanBuilder,
    mean_spend: Float64Builder,
    engagement: Float64Builder,
    prefs: [Float64Builder; 8],
    best_hour: Int32Builder,
    top3: ListBuilder<Int32Builder>,
    timezone: StringBuilder,
    first_purchase: TimestampMicrosecondBuilder,
    dropout_cause: StringBuilder,
    top_category: StringBuilder,
    best_hour_of_day: Int32Builder,
}

impl TruthCols {
    fn with_capacity(n: usize) -> Self {
        TruthCols {
            customer_id: StringBuilder::with_capacity(n, n * 8),
            rate: Float64Builder::with_capacity(n),
            dropout_prob: Float64Builder::with_capacity(n),
            dropout_ts: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            alive: BooleanBuilder::with_capacity(n),
            mean_spend: Float64Builder::with_capacity(n),
            engagement: Float64Builder::with_capacity(n),
            prefs: std::array::from_fn(|_| Float64Builder::with_capacity(n)),
            best_hour: Int32Builder::with_capacity(n),
            top3: ListBuilder::with_capacity(Int32Builder::with_capacity(3 * n), n),
            timezone: StringBuilder::with_capacity(n, n * 16),
            first_purchase: TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
            dropout_cause: StringBuilder::with_capacity(n, n * 8),
            top_category: StringBuilder::with_capacity(n, n * 8),
            best_hour_of_day: Int32Builder::with_capacity(n),
        }
    }

    fn push(&mut self, c: &Customer, end: i64) {
        self.customer_id.append_value(&c.id);
        self.rate.append_value(c.lambda);
        self.dropout_prob.append_value(c.p);
        // Dropouts are always at or before the end: they happen at written events.
        let dropout = c.dropout.filter(|d| d.0 <= end);
        self.dropout_ts.append_option(dropout.map(|d| d.0));
        self.alive.append_value(dropout.is_none());
        self.mean_spend.append_value(c.mean_spend);
        self.engagement.append_value(c.engagement);
        for (b, t) in self.prefs.iter_mut().zip(c.theta) {
            b.append_value(t);
        }
        let top = c.top_slots(3);
        self.best_hour.append_value(top[0]);
        for s in &top {
            self.top3.values().append_value(*s);
        }
        self.top3.append(true);
        self.timezone.append_value(c.tz_name);
        self.first_purchase.append_value(c.first_purchase);
        self.dropout_cause
            .append_option(dropout.map(|d| d.1.name()));
        self.top_category.append_value(CATEGORIES[c.top_category()]);
        self.best_hour_of_day.append_value(c.best_hour_of_day());
    }

    fn finish(mut self) -> RecordBatch {
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(self.customer_id.finish()),
            Arc::new(self.rate.finish()),
            Arc::new(self.dropout_prob.finish()),
            Arc::new(self.dropout_ts.finish()),
            Arc::new(self.alive.finish()),
            Arc::new(self.mean_spend.finish()),
            Arc::new(self.engagement.finish()),
        ];
        for b in &mut self.prefs {
            cols.push(Arc::new(b.finish()));
        }
        cols.push(Arc::new(self.best_hour.finish()));
        cols.push(Arc::new(self.top3.finish()));
        cols.push(Arc::new(self.timezone.finish()));
        cols.push(Arc::new(self.first_purchase.finish()));
        cols.push(Arc::new(self.dropout_cause.finish()));
        cols.push(Arc::new(self.top_category.finish()));
        cols.push(Arc::new(self.best_hour_of_day.finish()));
        RecordBatch::try_new(truth_schema(), cols).expect("builders match the truth schema")
    }
}
