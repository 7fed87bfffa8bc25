//! A customer history opened for feature queries: the events table registered in DataFusion in
//! canonical form, and the customers table as profiles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use lattice_data::events::{canonical_columns, event_files, events_location, read_events};
use lattice_data::schema::{EVENT_COLUMNS, cu};
use lattice_data::write::{EventRow, EventsWriter};

use crate::aggregates::{Aggregates, DAY_US, Profile};
use crate::error::{FeatureError, Result};
use crate::sql::{GapWindow, aggregates_query_with, categories_query, labels_query};

/// DataFusion's spelling of `ts` as integer microseconds.
pub const TS_US: &str = "arrow_cast(ts, 'Int64')";

pub struct History {
    ctx: SessionContext,
    /// Where the aggregation and label queries run when not in this process: a session whose
    /// plans go to a cluster (Ballista), with the same `events` view registered. The other
    /// queries (categories, counts, contacts, engagement) stay on `ctx`.
    cluster: Option<SessionContext>,
    /// Instant of the first and last event in the whole history.
    pub first_event_us: i64,
    pub last_event_us: i64,
    pub events: u64,
    /// A canonical copy, when the input's column types needed normalising.
    _staged: Option<tempfile::TempDir>,
    /// The last few aggregation and label results: training asks for the same cutoffs more
    /// than once (the backtest's and the final fit's windows overlap).
    memo: Memo<AggregatesKey, SharedAggregates>,
    labels_memo: Memo<LabelsKey, SharedLabels>,
    /// Distinct customers with an event, counted on first use.
    customers: std::sync::OnceLock<usize>,
}

/// (as_of, categories, sample fraction as bits).
type AggregatesKey = (i64, Vec<String>, u64);
/// (as_of, horizon, affinity window, categories, sample fraction as bits).
type LabelsKey = (i64, i64, i64, Vec<String>, u64);

/// Labels of the customers who purchased after a cutoff, shared between callers.
pub type SharedLabels = Arc<HashMap<String, Labels>>;

/// The last [`MEMO_SLOTS`] results of a query, most recently used last.
struct Memo<K, V>(std::sync::Mutex<Vec<(K, V)>>);

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(std::sync::Mutex::new(Vec::new()))
    }
}

impl<K: PartialEq, V: Clone> Memo<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        let mut memo = self.0.lock().ok()?;
        let at = memo.iter().position(|(k, _)| k == key)?;
        let entry = memo.remove(at);
        let hit = entry.1.clone();
        memo.push(entry);
        Some(hit)
    }

    fn put(&self, key: K, value: V) {
        if let Ok(mut memo) = self.0.lock() {
            if memo.len() == MEMO_SLOTS {
                memo.remove(0);
            }
            memo.push((key, value));
        }
    }
}

/// Every customer's aggregates at one cutoff, sorted by id, shared between callers.
pub type SharedAggregates = Arc<Vec<(String, Aggregates)>>;

/// How many aggregation results [`History::aggregates`] keeps: the distinct cutoffs one
/// `lattice train` revisits (validation, test, end).
const MEMO_SLOTS: usize = 3;

/// Labels of one customer after `as_of`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    /// Distinct orders (a purchase line without an order id is an order of its own).
    pub purchases_in_horizon: f64,
    /// Per category: 1.0 if a purchase line of it falls in the affinity window.
    pub categories: Vec<f64>,
}

impl History {
    /// Opens the events of a data directory: validates every row against the contract (a
    /// located error at the first bad one), and registers the table for SQL.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        Self::open_events(&events_location(data_dir)).await
    }

    /// As [`History::open`], with the aggregation and label queries sent to `cluster` (a
    /// session that runs plans on a cluster; every node must see the data directory's path).
    pub async fn open_on(data_dir: &Path, cluster: Option<SessionContext>) -> Result<Self> {
        Self::open_events_on(&events_location(data_dir), cluster).await
    }

    /// As [`History::open`], for an events file or directory.
    pub async fn open_events(location: &Path) -> Result<Self> {
        Self::open_events_on(location, None).await
    }

    /// As [`History::open_on`], for an events file or directory.
    pub async fn open_events_on(location: &Path, cluster: Option<SessionContext>) -> Result<Self> {
        let files = event_files(location)?;
        let mut columns = None;
        let mut canonical = true;
        for f in &files {
            match canonical_columns(f)? {
                Some(c) if columns.as_ref().is_none_or(|prev| *prev == c) => columns = Some(c),
                _ => canonical = false,
            }
        }
        // One strict pass: validates every row, finds the time range, and stages a canonical
        // copy if the input's types differ from the contract's canonical ones.
        let staged = if canonical {
            None
        } else {
            Some(tempfile::tempdir().map_err(|e| FeatureError::Invalid(format!("temp dir: {e}")))?)
        };
        let mut writer = match &staged {
            Some(d) => Some(EventsWriter::create(&d.path().join("events.parquet"))?),
            None => None,
        };
        let (mut first, mut last, mut n) = (i64::MAX, i64::MIN, 0u64);
        read_events(location, |b| {
            let ts = b
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
            if let (Some(lo), Some(hi)) = (
                datafusion::arrow::compute::min(ts),
                datafusion::arrow::compute::max(ts),
            ) {
                first = first.min(lo);
                last = last.max(hi);
            }
            n += b.num_rows() as u64;
            if let Some(w) = writer.as_mut() {
                stage_batch(w, b)?;
            }
            Ok(())
        })?;
        if n == 0 {
            return Err(FeatureError::Invalid(format!(
                "{}: the events table has no rows",
                location.display()
            )));
        }
        if let Some(w) = writer {
            w.finish()?;
        }
        let ctx = SessionContext::new();
        ctx.register_udf(crate::sample::unit_udf());
        let (path, present): (PathBuf, Vec<&str>) = match &staged {
            Some(d) => (
                d.path().join("events.parquet"),
                EVENT_COLUMNS.iter().map(|c| c.name).collect(),
            ),
            None => (location.to_path_buf(), columns.unwrap_or_default()),
        };
        let path_str = path.to_str().ok_or_else(|| {
            FeatureError::Invalid(format!("{}: path is not UTF-8", path.display()))
        })?;
        ctx.register_parquet("events_raw", path_str, ParquetReadOptions::default())
            .await?;
        // Absent optional columns read as typed nulls so every query sees the full contract.
        let select: Vec<String> = EVENT_COLUMNS
            .iter()
            .map(|c| {
                if present.contains(&c.name) {
                    c.name.to_string()
                } else {
                    format!(
                        "CAST(NULL AS {}) AS {}",
                        sql_type(&c.kind.canonical()),
                        c.name
                    )
                }
            })
            .collect();
        let view = format!(
            "CREATE VIEW events AS SELECT {} FROM events_raw",
            select.join(", ")
        );
        ctx.sql(&view).await?;
        if let Some(c) = &cluster {
            // The cluster's session plans the same view over the same path; its executors read
            // the files themselves.
            c.register_udf(crate::sample::unit_udf());
            c.register_parquet("events_raw", path_str, ParquetReadOptions::default())
                .await?;
            c.sql(&view).await?;
        }
        Ok(History {
            ctx,
            cluster,
            first_event_us: first,
            last_event_us: last,
            events: n,
            _staged: staged,
            memo: Default::default(),
            labels_memo: Default::default(),
            customers: Default::default(),
        })
    }

    async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// Whether the aggregation and label queries run on a cluster.
    pub fn on_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// The gap window the aggregation query takes here: partitioned by customer on a cluster,
    /// so that no stage runs as a single task.
    pub fn gap_window(&self) -> GapWindow {
        if self.on_cluster() {
            GapWindow::PerCustomer
        } else {
            GapWindow::Ordered
        }
    }

    /// A query over the canonical `events` view, for streaming.
    pub(crate) async fn sql(&self, sql: &str) -> Result<datafusion::dataframe::DataFrame> {
        Ok(self.ctx.sql(sql).await?)
    }

    /// Purchase categories seen at or before `as_of`, most frequent first.
    pub async fn categories(&self, as_of_us: i64) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for b in self.query(&categories_query(as_of_us, TS_US)).await? {
            let c = utf8(b.column(0))?;
            out.extend(c.iter().flatten().map(str::to_string));
        }
        Ok(out)
    }

    /// Aggregates of every customer with at least one event at or before `as_of`, sorted by
    /// customer id.
    ///
    /// The last [`MEMO_SLOTS`] results are kept and shared, so asking again for the same
    /// cutoff and categories costs nothing.
    pub async fn aggregates(
        &self,
        as_of_us: i64,
        categories: &[String],
    ) -> Result<SharedAggregates> {
        self.sampled_aggregates(as_of_us, categories, 1.0).await
    }

    /// [`History::aggregates`] of the customers in the sample of `fraction`
    /// ([`crate::sample`]); the others' events are not aggregated at all.
    pub async fn sampled_aggregates(
        &self,
        as_of_us: i64,
        categories: &[String],
        fraction: f64,
    ) -> Result<SharedAggregates> {
        let fraction = fraction.min(1.0);
        let key = (as_of_us, categories.to_vec(), fraction.to_bits());
        if let Some(hit) = self.memo.get(&key) {
            return Ok(hit);
        }
        let batches = self
            .aggregate_batches(as_of_us, categories, fraction)
            .await?;
        let mut out = Vec::new();
        for b in &batches {
            read_aggregates(b, categories.len(), &mut out)?;
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let out = Arc::new(out);
        self.memo.put(key, out.clone());
        Ok(out)
    }

    /// The number of distinct customers with at least one event.
    pub async fn customers(&self) -> Result<usize> {
        if let Some(&n) = self.customers.get() {
            return Ok(n);
        }
        let b = self
            .query("SELECT COUNT(DISTINCT customer_id) AS n FROM events")
            .await?;
        let n = b
            .first()
            .and_then(|b| b.column(0).as_primitive_opt::<Int64Type>())
            .map_or(0, |c| c.value(0) as usize);
        Ok(*self.customers.get_or_init(|| n))
    }

    /// The raw result of the aggregation query ([`crate::sql::aggregates_query`]), one row per customer in
    /// no particular order, as DataFusion returns it: what `lattice features --query-only` times
    /// against another engine running the same SQL text. `fraction` < 1 keeps that sample of
    /// customers ([`crate::sample`]).
    pub async fn aggregate_batches(
        &self,
        as_of_us: i64,
        categories: &[String],
        fraction: f64,
    ) -> Result<Vec<RecordBatch>> {
        self.aggregate_batches_with(as_of_us, categories, fraction, self.gap_window())
            .await
    }

    /// [`History::aggregate_batches`] with the gap window of choice (the two give the same
    /// aggregates; tests compare them).
    pub async fn aggregate_batches_with(
        &self,
        as_of_us: i64,
        categories: &[String],
        fraction: f64,
        gap: GapWindow,
    ) -> Result<Vec<RecordBatch>> {
        let sql = aggregates_query_with(as_of_us, categories, TS_US, fraction, gap);
        let ctx = self.aggregation_context();
        Ok(ctx.sql(&sql).await?.collect().await?)
    }

    /// Every customer's aggregates at `as_of` as a stream of batches (read them with
    /// [`aggregates_of_batch`]), for callers that must not hold every customer at once
    /// (`lattice score --cluster`).
    pub async fn aggregate_stream(
        &self,
        as_of_us: i64,
        categories: &[String],
    ) -> Result<datafusion::execution::SendableRecordBatchStream> {
        let sql = aggregates_query_with(as_of_us, categories, TS_US, 1.0, self.gap_window());
        let ctx = self.aggregation_context();
        Ok(ctx.sql(&sql).await?.execute_stream().await?)
    }

    /// The session for [`crate::sql::aggregates_query`]: the same tables, with round-robin repartitioning
    /// off. The order-level aggregate reads the one stream that comes out of the window over
    /// orders sorted by (customer, time); split round-robin, a customer's orders could land in
    /// two partial sums, and the spend and squared-gap sums would then be added in another
    /// order than the time order, which changes their last bits from run to run.
    fn aggregation_context(&self) -> SessionContext {
        let mut state = self.cluster.as_ref().unwrap_or(&self.ctx).state();
        state
            .config_mut()
            .options_mut()
            .optimizer
            .enable_round_robin_repartition = false;
        SessionContext::new_with_state(state)
    }

    /// Labels after `as_of` for customers who purchased in the window; customers absent from
    /// the map made no purchase. Fails if the horizon runs past the end of the data.
    pub async fn labels(
        &self,
        as_of_us: i64,
        horizon_days: i64,
        affinity_days: i64,
        categories: &[String],
    ) -> Result<SharedLabels> {
        self.sampled_labels(as_of_us, horizon_days, affinity_days, categories, 1.0)
            .await
    }

    /// [`History::labels`] of the customers in the sample of `fraction`; the last few results
    /// are kept and shared.
    pub async fn sampled_labels(
        &self,
        as_of_us: i64,
        horizon_days: i64,
        affinity_days: i64,
        categories: &[String],
        fraction: f64,
    ) -> Result<SharedLabels> {
        let fraction = fraction.min(1.0);
        let key = (
            as_of_us,
            horizon_days,
            affinity_days,
            categories.to_vec(),
            fraction.to_bits(),
        );
        if let Some(hit) = self.labels_memo.get(&key) {
            return Ok(hit);
        }
        let end = as_of_us + horizon_days.max(affinity_days) * DAY_US;
        if end > self.last_event_us + DAY_US {
            return Err(FeatureError::Invalid(format!(
                "the label window of {} days after as_of {} ends {}, after the last event {}: \
                 choose an earlier --as-of or a shorter --horizon-days",
                horizon_days.max(affinity_days),
                fmt_day(as_of_us),
                fmt_day(end),
                fmt_day(self.last_event_us)
            )));
        }
        let sql = labels_query(
            as_of_us,
            horizon_days,
            affinity_days,
            categories,
            TS_US,
            fraction,
        );
        let engine = self.cluster.as_ref().unwrap_or(&self.ctx);
        let mut out = HashMap::new();
        for b in engine.sql(&sql).await?.collect().await? {
            let ids = utf8(b.column(0))?;
            let n = f64_col(&b, "purchases_in_horizon")?;
            let cats: Vec<_> = (0..categories.len())
                .map(|i| f64_col(&b, &format!("cat_{i}")))
                .collect::<Result<_>>()?;
            for r in 0..b.num_rows() {
                out.insert(
                    ids.value(r).to_string(),
                    Labels {
                        purchases_in_horizon: n.value(r),
                        categories: cats.iter().map(|c| c.value(r)).collect(),
                    },
                );
            }
        }
        let out = Arc::new(out);
        self.labels_memo.put(key, out.clone());
        Ok(out)
    }
}

/// One contact (an action sent to a customer), as the decision layer needs it for cooldowns and
/// frequency caps.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    pub action_id: Option<String>,
    pub channel: Option<String>,
    pub at_us: i64,
}

impl History {
    /// Contacts in `(from_us, to_us]` per customer, oldest first.
    pub async fn contacts(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<HashMap<String, Vec<ContactRecord>>> {
        let sql = format!(
            "SELECT customer_id, action_id, channel, {TS_US} AS t FROM events
WHERE event_type = 'contact' AND {TS_US} > {from_us} AND {TS_US} <= {to_us}
ORDER BY customer_id, t"
        );
        let mut out: HashMap<String, Vec<ContactRecord>> = HashMap::new();
        for b in self.query(&sql).await? {
            let (ids, actions, channels) =
                (utf8(b.column(0))?, utf8(b.column(1))?, utf8(b.column(2))?);
            let t = i64_col(&b, "t")?;
            for r in 0..b.num_rows() {
                out.entry(ids.value(r).to_string())
                    .or_default()
                    .push(ContactRecord {
                        action_id: opt_s(&actions, r).map(str::to_string),
                        channel: opt_s(&channels, r).map(str::to_string),
                        at_us: t.value(r),
                    });
            }
        }
        Ok(out)
    }
}

pub fn fmt_day(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| us.to_string())
}

fn sql_type(dt: &DataType) -> &'static str {
    match dt {
        DataType::Float64 => "DOUBLE",
        DataType::Boolean => "BOOLEAN",
        _ => "VARCHAR",
    }
}

fn stage_batch(w: &mut EventsWriter, b: &RecordBatch) -> lattice_data::Result<()> {
    use datafusion::arrow::datatypes::TimestampMicrosecondType;
    let s = |i: usize| b.column(i).as_string::<i32>();
    let f = |i: usize| b.column(i).as_primitive::<Float64Type>();
    let (id, ty, ch, cat, oid, act, eid) = (s(0), s(2), s(3), s(4), s(7), s(9), s(10));
    let (amount, qty, sent) = (f(5), f(6), f(8));
    let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
    for r in 0..b.num_rows() {
        w.push(&EventRow {
            customer_id: id.value(r),
            ts_us: ts.value(r),
            event_type: ty.value(r),
            channel: opt_s(ch, r),
            category: opt_s(cat, r),
            amount: opt_f(amount, r),
            quantity: opt_f(qty, r),
            order_id: opt_s(oid, r),
            sentiment: opt_f(sent, r),
            action_id: opt_s(act, r),
            event_id: opt_s(eid, r),
        })?;
    }
    Ok(())
}

/// Query results carry strings as Utf8View (DataFusion's default); read them as Utf8.
fn utf8(a: &datafusion::arrow::array::ArrayRef) -> Result<datafusion::arrow::array::StringArray> {
    let c = datafusion::arrow::compute::cast(a, &DataType::Utf8)
        .map_err(|e| FeatureError::Invalid(format!("string column: {e}")))?;
    Ok(c.as_string::<i32>().clone())
}

fn opt_s(a: &datafusion::arrow::array::StringArray, r: usize) -> Option<&str> {
    (!a.is_null(r)).then(|| a.value(r))
}

fn opt_f(a: &datafusion::arrow::array::Float64Array, r: usize) -> Option<f64> {
    (!a.is_null(r)).then(|| a.value(r))
}

fn f64_col<'a>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<&'a datafusion::arrow::array::Float64Array> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| FeatureError::Invalid(format!("query result lacks column {name}")))?;
    c.as_primitive_opt::<Float64Type>().ok_or_else(|| {
        FeatureError::Invalid(format!("column {name} is {}, not f64", c.data_type()))
    })
}

fn i64_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a datafusion::arrow::array::Int64Array> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| FeatureError::Invalid(format!("query result lacks column {name}")))?;
    c.as_primitive_opt::<Int64Type>().ok_or_else(|| {
        FeatureError::Invalid(format!("column {name} is {}, not i64", c.data_type()))
    })
}

/// The aggregates of one batch of the aggregation query's result ([`History::aggregate_stream`]),
/// for `categories` categories, in the batch's order.
pub fn aggregates_of_batch(
    b: &RecordBatch,
    categories: usize,
) -> Result<Vec<(String, Aggregates)>> {
    let mut out = Vec::with_capacity(b.num_rows());
    read_aggregates(b, categories, &mut out)?;
    Ok(out)
}

fn read_aggregates(b: &RecordBatch, k: usize, out: &mut Vec<(String, Aggregates)>) -> Result<()> {
    let ids = utf8(b.column(0))?;
    let f = |n: &str| f64_col(b, n);
    let i = |n: &str| i64_col(b, n);
    let (first_ev, last_ev, first_o, last_o, last_neg) = (
        i("first_event_us")?,
        i("last_event_us")?,
        i("first_order_us")?,
        i("last_order_us")?,
        i("last_negative_us")?,
    );
    let names = [
        "orders",
        "revenue",
        "orders_30d",
        "orders_90d",
        "orders_365d",
        "orders_prev_90d",
        "spend_365d",
        "gap_sq_sum_days",
        "purchase_lines",
        "returns",
        "email_contacts",
        "email_opens",
        "email_clicks",
        "push_contacts",
        "push_opens",
        "sms_contacts",
        "sms_clicks",
        "contacts",
        "redemptions",
        "views_30d",
        "carts_30d",
        "app_opens_30d",
        "support_90d",
        "sentiment_sum_90d",
        "sentiment_n_90d",
        "first_order_amount",
        "purchase_days",
        "first_day_amount",
    ];
    let cols: Vec<_> = names.iter().map(|n| f(n)).collect::<Result<_>>()?;
    let lines: Vec<_> = (0..k)
        .map(|c| f(&format!("cat_lines_{c}")))
        .collect::<Result<_>>()?;
    let views: Vec<_> = (0..k)
        .map(|c| f(&format!("cat_views_{c}")))
        .collect::<Result<_>>()?;
    let per_category = |prefix: &str| -> Result<Vec<_>> {
        (0..k).map(|c| f(&format!("cat_{prefix}_{c}"))).collect()
    };
    let (c_orders, c_30, c_90, c_365, c_spend) = (
        per_category("orders")?,
        per_category("orders_30d")?,
        per_category("orders_90d")?,
        per_category("orders_365d")?,
        per_category("spend_365d")?,
    );
    let (c_first, c_last) = (
        (0..k)
            .map(|c| i(&format!("cat_first_{c}")))
            .collect::<Result<Vec<_>>>()?,
        (0..k)
            .map(|c| i(&format!("cat_last_{c}")))
            .collect::<Result<Vec<_>>>()?,
    );
    let opt_i =
        |a: &datafusion::arrow::array::Int64Array, r: usize| (!a.is_null(r)).then(|| a.value(r));
    // Customers without a purchase in a category come out of its LEFT JOIN as nulls.
    let or0 = |a: &datafusion::arrow::array::Float64Array, r: usize| {
        if a.is_null(r) { 0.0 } else { a.value(r) }
    };
    for r in 0..b.num_rows() {
        // Customers without orders come out of the LEFT JOIN with null order columns.
        let v = |c: usize| {
            if cols[c].is_null(r) {
                0.0
            } else {
                cols[c].value(r)
            }
        };
        out.push((
            ids.value(r).to_string(),
            Aggregates {
                first_event_us: first_ev.value(r),
                last_event_us: last_ev.value(r),
                orders: v(0),
                first_order_us: opt_i(first_o, r),
                last_order_us: opt_i(last_o, r),
                revenue: v(1),
                orders_30d: v(2),
                orders_90d: v(3),
                orders_365d: v(4),
                orders_prev_90d: v(5),
                spend_365d: v(6),
                gap_sq_sum_days: v(7),
                first_order_amount: v(25),
                purchase_days: v(26),
                first_day_amount: v(27),
                purchase_lines: v(8),
                returns: v(9),
                email_contacts: v(10),
                email_opens: v(11),
                email_clicks: v(12),
                push_contacts: v(13),
                push_opens: v(14),
                sms_contacts: v(15),
                sms_clicks: v(16),
                contacts: v(17),
                redemptions: v(18),
                views_30d: v(19),
                carts_30d: v(20),
                app_opens_30d: v(21),
                support_90d: v(22),
                sentiment_sum_90d: v(23),
                sentiment_n_90d: v(24),
                last_negative_us: opt_i(last_neg, r),
                category_lines: lines.iter().map(|c| c.value(r)).collect(),
                category_views: views.iter().map(|c| c.value(r)).collect(),
                category_orders: c_orders.iter().map(|c| or0(c, r)).collect(),
                category_orders_30d: c_30.iter().map(|c| or0(c, r)).collect(),
                category_orders_90d: c_90.iter().map(|c| or0(c, r)).collect(),
                category_orders_365d: c_365.iter().map(|c| or0(c, r)).collect(),
                category_first_us: c_first.iter().map(|c| opt_i(c, r)).collect(),
                category_last_us: c_last.iter().map(|c| opt_i(c, r)).collect(),
                category_spend_365d: c_spend.iter().map(|c| or0(c, r)).collect(),
            },
        ));
    }
    Ok(())
}

/// Profiles from `customers.parquet` in `data_dir`, keyed by customer id (empty if absent).
pub fn load_profiles(data_dir: &Path) -> Result<HashMap<String, Profile>> {
    let path = lattice_data::customers::customers_location(data_dir);
    let mut out = HashMap::new();
    if !path.exists() {
        return Ok(out);
    }
    let b = lattice_data::customers::read_customers(&path)?;
    let s = |i: usize| b.column(i).as_string::<i32>();
    let ids = s(cu::CUSTOMER_ID);
    let signup = b
        .column(cu::SIGNUP_TS)
        .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
    let birth = b
        .column(cu::BIRTH_DATE)
        .as_primitive::<datafusion::arrow::datatypes::Date32Type>();
    let (tier, tz) = (s(cu::TIER), s(cu::TIMEZONE));
    let points = b.column(cu::POINTS_BALANCE).as_primitive::<Float64Type>();
    let consent = |i: usize, r: usize| {
        let c = b.column(i).as_boolean();
        !c.is_null(r) && c.value(r)
    };
    for r in 0..b.num_rows() {
        out.insert(
            ids.value(r).to_string(),
            Profile {
                signup_us: (!signup.is_null(r)).then(|| signup.value(r)),
                birth_date: (!birth.is_null(r)).then(|| birth.value(r)),
                tier: (!tier.is_null(r)).then(|| tier.value(r).to_string()),
                points_balance: (!points.is_null(r)).then(|| points.value(r)),
                timezone: (!tz.is_null(r)).then(|| tz.value(r).to_string()),
                consent_email: consent(cu::CONSENT_EMAIL, r),
                consent_sms: consent(cu::CONSENT_SMS, r),
                consent_push: consent(cu::CONSENT_PUSH, r),
            },
        );
    }
    Ok(out)
}
