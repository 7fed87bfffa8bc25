//! `snapshot.parquet` of a model directory: one row per customer with the features at the
//! model's as_of, the scores of `lattice score`, and what decisioning needs about the customer
//! (current-state attributes, recent contacts, engagement counts for send time). Written by
//! `lattice train`, read whole by the server and streamed by `lattice score`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use lattice_data::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder,
    ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use lattice_data::arrow::datatypes::{
    DataType, Date32Type, Field, Float64Type, Int32Type, Schema, TimeUnit, TimestampMicrosecondType,
};
use lattice_data::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lattice_data::write::ParquetFile;
use lattice_features::features::slug;
use lattice_features::history::ContactRecord;
use lattice_features::{Aggregates, Profile};

use crate::ModelError;
use crate::pipeline::Snapshot;
use crate::score::Models;
use crate::sendtime::{Channel, CustomerCounts, ProfileSource, SendTimeCounts};

/// Score columns after the features, before the affinities.
pub const SCORE_COLUMNS: [&str; 4] = ["churn_probability", "p_alive", "expected_purchases", "clv"];

/// The columns `lattice score` outputs: the id, the scores, the churn reasons and send times.
pub fn is_score_column(name: &str) -> bool {
    name == "customer_id"
        || name == "churn_reasons"
        || SCORE_COLUMNS.contains(&name)
        || name.starts_with("affinity_")
        || name.starts_with("best_hour_of_")
        || name.starts_with("top3_hours_of_")
}

/// Contacts older than this before as_of are not kept: longer than any sensible cooldown.
pub const CONTACT_DAYS: i64 = lattice_catalog::CONTACT_HISTORY_DAYS as i64;

const HOURS: i32 = 168;

fn err<E: std::fmt::Display>(e: E) -> ModelError {
    ModelError::Data(e.to_string())
}

fn list_field(name: &str, item: DataType) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", item, true))),
        true,
    )
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn list_i32(values: &[u8]) -> Vec<Option<i32>> {
    values.iter().map(|&v| Some(i32::from(v))).collect()
}

/// What train hands over to write the snapshot.
pub struct SnapshotInputs<'a> {
    pub models: &'a Models,
    pub snap: &'a Snapshot,
    pub counts: &'a SendTimeCounts,
    pub profiles: &'a HashMap<String, Profile>,
    pub contacts: &'a HashMap<String, Vec<ContactRecord>>,
    /// Tier names by index (`tier_index` feature), for customers without a stored tier.
    pub tier_names: &'a [String],
    pub default_timezone: &'a str,
}

/// Writes one row per customer: features at as_of, the score columns of `lattice score`, then
/// the decisioning columns.
pub fn write(path: &Path, inp: &SnapshotInputs<'_>) -> Result<(), ModelError> {
    let (models, snap) = (inp.models, inp.snap);
    let f = &models.fitted;
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    fields.extend(
        f.feature_names
            .iter()
            .map(|n| Field::new(n, DataType::Float64, false)),
    );
    fields.extend(
        SCORE_COLUMNS
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, false)),
    );
    let cats: Vec<String> = f
        .context
        .categories
        .iter()
        .map(|c| format!("affinity_{}", slug(c)))
        .collect();
    fields.extend(cats.iter().map(|n| Field::new(n, DataType::Float64, false)));
    fields.push(list_field("churn_reasons", DataType::Utf8));
    // Overall send times (all channels pooled, via the "any" profile), then per channel where
    // the channel has the customer's own data (null otherwise).
    for suffix in ["", "_email", "_sms", "_push"] {
        fields.push(Field::new(
            format!("best_hour_of_day{suffix}"),
            DataType::Int32,
            true,
        ));
        fields.push(list_field(
            &format!("top3_hours_of_day{suffix}"),
            DataType::Int32,
        ));
        fields.push(Field::new(
            format!("best_hour_of_week{suffix}"),
            DataType::Int32,
            true,
        ));
        fields.push(list_field(
            &format!("top3_hours_of_week{suffix}"),
            DataType::Int32,
        ));
    }
    fields.extend([
        Field::new("tier", DataType::Utf8, true),
        Field::new("points_balance", DataType::Float64, true),
        Field::new("consent_email", DataType::Boolean, false),
        Field::new("consent_sms", DataType::Boolean, false),
        Field::new("consent_push", DataType::Boolean, false),
        Field::new("timezone", DataType::Utf8, false),
        Field::new("birth_date", DataType::Date32, true),
        Field::new("signup_at", ts_type(), true),
        Field::new("last_purchase_at", ts_type(), true),
        Field::new("last_negative_at", ts_type(), true),
        list_field("contact_action_ids", DataType::Utf8),
        list_field("contact_channels", DataType::Utf8),
        list_field("contact_at", ts_type()),
        list_field("engagement_slots", DataType::Int32),
        list_field("engagement_counts", DataType::Int32),
    ]);
    // The aggregates behind the features, so a server can apply events to them.
    fields.extend(
        aggregate_columns(cats.len())
            .into_iter()
            .map(|n| Field::new(n, DataType::Float64, true)),
    );
    let schema = Arc::new(Schema::new(fields));
    let mut file = ParquetFile::create(path, schema.clone()).map_err(err)?;
    // Scored in chunks on all cores, written in order: memory stays at a few chunks.
    let n = snap.len();
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunks: Vec<std::ops::Range<usize>> = (0..n)
        .step_by(CHUNK_ROWS)
        .map(|s| s..(s + CHUNK_ROWS).min(n))
        .collect();
    for group in chunks.chunks(threads) {
        let batches =
            crate::parallel::map(group.to_vec(), |rows| chunk(inp, &schema, cats.len(), rows));
        for b in batches {
            file.write(&b?).map_err(err)?;
        }
    }
    file.finish().map_err(err)?;
    Ok(())
}

/// Rows per scored chunk of the snapshot.
const CHUNK_ROWS: usize = 64 * 1024;

/// The snapshot rows `rows` as one batch of `schema`.
fn chunk(
    inp: &SnapshotInputs<'_>,
    schema: &Arc<Schema>,
    categories: usize,
    rows: std::ops::Range<usize>,
) -> Result<RecordBatch, ModelError> {
    let (models, snap) = (inp.models, inp.snap);
    let f = &models.fitted;
    let n = rows.len();
    let mut ids = StringBuilder::new();
    let mut feat: Vec<Float64Builder> = (0..snap.width)
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut scores: Vec<Float64Builder> = (0..SCORE_COLUMNS.len() + categories)
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut reasons = ListBuilder::new(StringBuilder::new());
    let mut ints: Vec<Int32Builder> = (0..8).map(|_| Int32Builder::with_capacity(n)).collect();
    let mut lists: Vec<ListBuilder<Int32Builder>> = (0..8)
        .map(|_| ListBuilder::new(Int32Builder::new()))
        .collect();
    let mut tier = StringBuilder::new();
    let mut points = Float64Builder::with_capacity(n);
    let mut consent: [BooleanBuilder; 3] = std::array::from_fn(|_| BooleanBuilder::new());
    let mut tz = StringBuilder::new();
    let mut birth = Date32Builder::with_capacity(n);
    let utc = || TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let (mut signup, mut last_purchase, mut last_negative) = (utc(), utc(), utc());
    let mut c_actions = ListBuilder::new(StringBuilder::new());
    let mut c_channels = ListBuilder::new(StringBuilder::new());
    let mut c_at = ListBuilder::new(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
        .with_field(Arc::new(Field::new("item", ts_type(), true)));
    let mut e_slots = ListBuilder::new(Int32Builder::new());
    let mut e_counts = ListBuilder::new(Int32Builder::new());
    let mut aggs: Vec<Float64Builder> = (0..aggregate_columns(categories).len())
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut agg_row = Vec::with_capacity(aggs.len());

    let mut scratch = vec![0.0; snap.width];
    let channels = [Channel::Any, Channel::Email, Channel::Sms, Channel::Push];
    let tier_index = f.feature_names.iter().position(|x| x == "tier_index");
    let no_profile = Profile::default();
    let no_contacts = Vec::new();
    for i in rows {
        let id = snap.id(i);
        ids.append_value(id);
        let row = snap.row(i);
        for (b, v) in feat.iter_mut().zip(row) {
            b.append_value(*v);
        }
        let s = models.score(row, snap.aggregate(i), &mut scratch);
        let vals = [s.churn_probability, s.p_alive, s.expected_purchases, s.clv];
        for (b, v) in scores.iter_mut().zip(vals.iter().chain(&s.affinity)) {
            b.append_value(*v);
        }
        for r in &s.churn_reasons {
            reasons.values().append_value(&r.feature);
        }
        reasons.append(true);
        let cc = inp.counts.customer(i).unwrap_or(CustomerCounts::EMPTY);
        for (k, ch) in channels.iter().enumerate() {
            let rec = models.send_time.recommend(&cc, *ch);
            // Per-channel columns only when the customer has data on that channel.
            let own = k == 0 || rec.source == ProfileSource::Channel;
            let (d, w) = (2 * k, 2 * k + 1);
            if own {
                ints[d].append_value(i32::from(rec.best_hour_of_day()));
                lists[d].append_value(list_i32(&rec.top3_hours_of_day()));
                ints[w].append_value(i32::from(rec.best_hour_of_week()));
                lists[w].append_value(list_i32(&rec.top3_hours_of_week()));
            } else {
                ints[d].append_null();
                lists[d].append_null();
                ints[w].append_null();
                lists[w].append_null();
            }
        }

        let p = inp.profiles.get(id).unwrap_or(&no_profile);
        let derived = tier_index
            .and_then(|j| usize::try_from(row[j] as i64).ok())
            .and_then(|t| inp.tier_names.get(t));
        tier.append_option(p.tier.as_deref().or(derived.map(String::as_str)));
        points.append_option(p.points_balance);
        for (b, v) in consent
            .iter_mut()
            .zip([p.consent_email, p.consent_sms, p.consent_push])
        {
            b.append_value(v);
        }
        tz.append_value(p.timezone.as_deref().unwrap_or(inp.default_timezone));
        birth.append_option(p.birth_date);
        signup.append_option(p.signup_us);
        let a = snap.aggregate(i);
        last_purchase.append_option(a.last_order_us);
        last_negative.append_option(a.last_negative_us);
        for c in inp.contacts.get(id).unwrap_or(&no_contacts) {
            c_actions.values().append_option(c.action_id.as_deref());
            c_channels.values().append_option(c.channel.as_deref());
            c_at.values().append_value(c.at_us);
        }
        c_actions.append(true);
        c_channels.append(true);
        c_at.append(true);
        for (k, ch) in Channel::ALL.iter().enumerate() {
            for &(slot, count) in cc.channel(*ch) {
                e_slots
                    .values()
                    .append_value(k as i32 * HOURS + i32::from(slot));
                e_counts.values().append_value(i32::from(count));
            }
        }
        e_slots.append(true);
        e_counts.append(true);
        agg_row.clear();
        a.to_row(&mut agg_row);
        for (b, v) in aggs.iter_mut().zip(&agg_row) {
            b.append_option(v.is_finite().then_some(*v));
        }
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(ids.finish())];
    cols.extend(feat.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols.extend(scores.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols.push(Arc::new(reasons.finish()));
    for k in 0..4 {
        let (d, w) = (2 * k, 2 * k + 1);
        cols.push(Arc::new(ints[d].finish()));
        cols.push(Arc::new(lists[d].finish()));
        cols.push(Arc::new(ints[w].finish()));
        cols.push(Arc::new(lists[w].finish()));
    }
    cols.push(Arc::new(tier.finish()));
    cols.push(Arc::new(points.finish()));
    for b in &mut consent {
        cols.push(Arc::new(b.finish()));
    }
    cols.push(Arc::new(tz.finish()));
    cols.push(Arc::new(birth.finish()));
    cols.push(Arc::new(signup.finish()));
    cols.push(Arc::new(last_purchase.finish()));
    cols.push(Arc::new(last_negative.finish()));
    cols.push(Arc::new(c_actions.finish()));
    cols.push(Arc::new(c_channels.finish()));
    cols.push(Arc::new(c_at.finish()));
    cols.push(Arc::new(e_slots.finish()));
    cols.push(Arc::new(e_counts.finish()));
    cols.extend(aggs.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    RecordBatch::try_new(schema.clone(), cols).map_err(err)
}

/// A contact as the server keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub action_id: String,
    pub channel: String,
    pub at_us: i64,
}

/// One customer's non-numeric snapshot data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerRecord {
    pub id: String,
    pub churn_reasons: Vec<String>,
    pub tier: Option<String>,
    pub points_balance: Option<f64>,
    /// email, sms, push.
    pub consent: [bool; 3],
    pub timezone: String,
    pub birth_date: Option<NaiveDate>,
    pub signup_us: Option<i64>,
    pub last_purchase_us: Option<i64>,
    pub last_negative_us: Option<i64>,
    pub contacts: Vec<Contact>,
    /// Engagement counts per send-time channel (email, sms, push, any), as (hour of week, count).
    pub engagement: [Vec<(u8, u16)>; 4],
}

impl CustomerRecord {
    pub fn counts(&self) -> CustomerCounts<'_> {
        let [e, s, p, a] = &self.engagement;
        // Hours were checked below 168 on read; an empty profile is the safe fallback anyway.
        CustomerCounts::new([e, s, p, a]).unwrap_or(CustomerCounts::EMPTY)
    }
}

/// The snapshot's columns of aggregates (`agg_<name>`, [`lattice_features::online::row_names`]).
pub fn aggregate_columns(categories: usize) -> Vec<String> {
    lattice_features::online::row_names(categories)
        .into_iter()
        .map(|n| format!("agg_{n}"))
        .collect()
}

impl CustomerRecord {
    /// What the customers table said about the customer, as the feature code takes it.
    pub fn profile(&self) -> Profile {
        const EPOCH_DAYS_FROM_CE: i32 = 719_163;
        Profile {
            signup_us: self.signup_us,
            birth_date: self
                .birth_date
                .map(|d| chrono::Datelike::num_days_from_ce(&d) - EPOCH_DAYS_FROM_CE),
            tier: self.tier.clone(),
            points_balance: self.points_balance,
            timezone: Some(self.timezone.clone()),
            consent_email: self.consent[0],
            consent_sms: self.consent[1],
            consent_push: self.consent[2],
        }
    }
}

/// Customer attributes read into every value row after the features and scores: current
/// state from `customers`, visible to decision rules but never a model input.
pub const ATTRIBUTES: [&str; 4] = [
    "points_balance",
    "consent_email",
    "consent_sms",
    "consent_push",
];

/// The snapshot in memory, for the server: one numeric row per customer (features, scores,
/// attributes: the variables decision rules see) and one record of everything else.
#[derive(Debug, Clone, Default)]
pub struct ServingSnapshot {
    pub feature_names: Vec<String>,
    /// `SCORE_COLUMNS` then `affinity_<category>`.
    pub score_names: Vec<String>,
    /// Names of a value row: `feature_names`, `score_names`, then [`ATTRIBUTES`].
    pub variables: Vec<String>,
    pub customers: Vec<CustomerRecord>,
    /// Row-major, `variables.len()` per customer.
    values: Vec<f64>,
    /// Row-major [`Aggregates::to_row`] rows, `aggregate_width` per customer; empty for
    /// snapshots built in memory with [`Self::push`].
    aggregates: Vec<f64>,
    categories: usize,
    pub index: HashMap<String, u32>,
}

impl ServingSnapshot {
    pub fn get(&self, id: &str) -> Option<usize> {
        self.index.get(id).map(|&i| i as usize)
    }

    /// Customer `i`'s values, named by [`Self::variables`].
    pub fn values(&self, i: usize) -> &[f64] {
        let w = self.variables.len();
        &self.values[i * w..(i + 1) * w]
    }

    pub fn features(&self, i: usize) -> &[f64] {
        &self.values(i)[..self.feature_names.len()]
    }

    /// Customer `i`'s aggregates at the snapshot's as_of (`None` for in-memory snapshots).
    pub fn aggregates(&self, i: usize) -> Option<Aggregates> {
        let w = lattice_features::online::row_names(self.categories).len();
        let row = self.aggregates.get(i * w..(i + 1) * w)?;
        Aggregates::from_row(row, self.categories)
    }

    pub fn scores(&self, i: usize) -> &[f64] {
        let f = self.feature_names.len();
        &self.values(i)[f..f + self.score_names.len()]
    }

    /// An empty snapshot whose value rows are named `features`, [`SCORE_COLUMNS`] then
    /// `affinity_<category>`, then [`ATTRIBUTES`] (what [`Self::read`] produces).
    pub fn empty(features: &[String], categories: &[String]) -> Self {
        let mut score_names: Vec<String> = SCORE_COLUMNS.iter().map(|s| s.to_string()).collect();
        score_names.extend(categories.iter().map(|c| format!("affinity_{}", slug(c))));
        let mut variables = features.to_vec();
        variables.extend(score_names.iter().cloned());
        variables.extend(ATTRIBUTES.iter().map(|s| s.to_string()));
        ServingSnapshot {
            feature_names: features.to_vec(),
            score_names,
            variables,
            categories: categories.len(),
            ..Default::default()
        }
    }

    /// Appends a customer: `values` named by [`Self::variables`] (features, scores, then
    /// attributes). For snapshots built in memory (tests, benchmarks, synthetic worlds).
    pub fn push(&mut self, record: CustomerRecord, values: &[f64]) -> Result<(), ModelError> {
        if values.len() != self.variables.len() {
            return Err(ModelError::Data(format!(
                "customer {}: {} values for {} variables",
                record.id,
                values.len(),
                self.variables.len()
            )));
        }
        if self.index.contains_key(&record.id) {
            return Err(ModelError::Data(format!(
                "customer {} is already in the snapshot",
                record.id
            )));
        }
        let i = u32::try_from(self.customers.len())
            .map_err(|_| ModelError::Data("more than 2^32 customers".into()))?;
        self.values.extend_from_slice(values);
        self.index.insert(record.id.clone(), i);
        self.customers.push(record);
        Ok(())
    }

    /// Reads a snapshot written by [`write`]; `features` and `categories` come from the
    /// manifest and must match the file's columns.
    pub fn read(
        path: &Path,
        features: &[String],
        categories: &[String],
    ) -> Result<Self, ModelError> {
        let file = std::fs::File::open(path)
            .map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))?
            .build()
            .map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))?;
        let mut out = Self::empty(features, categories);
        for batch in reader {
            let b = batch.map_err(|e| ModelError::Data(format!("{}: {e}", path.display())))?;
            out.append(&b)
                .map_err(|m| ModelError::Data(format!("{}: {m}", path.display())))?;
        }
        Ok(out)
    }

    fn append(&mut self, b: &RecordBatch) -> Result<(), String> {
        let col = |name: &str| {
            b.column_by_name(name)
                .ok_or_else(|| format!("column {name} is missing (expected by the manifest)"))
        };
        let f64s = |name: &str| -> Result<_, String> {
            col(name)?
                .as_primitive_opt::<Float64Type>()
                .ok_or_else(|| format!("column {name} is not float64"))
        };
        let strs = |name: &str| -> Result<_, String> {
            col(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| format!("column {name} is not a string"))
        };
        let ts = |name: &str| -> Result<_, String> {
            col(name)?
                .as_primitive_opt::<TimestampMicrosecondType>()
                .ok_or_else(|| format!("column {name} is not a timestamp"))
        };
        let lists = |name: &str| -> Result<_, String> {
            col(name)?
                .as_list_opt::<i32>()
                .ok_or_else(|| format!("column {name} is not a list"))
        };
        let bools = |name: &str| -> Result<_, String> {
            col(name)?
                .as_boolean_opt()
                .ok_or_else(|| format!("column {name} is not boolean"))
        };
        let ids = strs("customer_id")?;
        let feats = self
            .feature_names
            .iter()
            .map(|n| f64s(n))
            .collect::<Result<Vec<_>, _>>()?;
        let scores = self
            .score_names
            .iter()
            .map(|n| f64s(n))
            .collect::<Result<Vec<_>, _>>()?;
        let reasons = lists("churn_reasons")?;
        let tier = strs("tier")?;
        let points = f64s("points_balance")?;
        let consent = [
            bools("consent_email")?,
            bools("consent_sms")?,
            bools("consent_push")?,
        ];
        let tz = strs("timezone")?;
        let birth = col("birth_date")?
            .as_primitive_opt::<Date32Type>()
            .ok_or("column birth_date is not a date")?;
        let (signup, last_purchase, last_negative) = (
            ts("signup_at")?,
            ts("last_purchase_at")?,
            ts("last_negative_at")?,
        );
        let (c_actions, c_channels, c_at) = (
            lists("contact_action_ids")?,
            lists("contact_channels")?,
            lists("contact_at")?,
        );
        let (e_slots, e_counts) = (lists("engagement_slots")?, lists("engagement_counts")?);
        let aggs = aggregate_columns(self.categories)
            .iter()
            .map(|n| f64s(n))
            .collect::<Result<Vec<_>, _>>()?;

        let opt_i64 = |a: &lattice_data::arrow::array::TimestampMicrosecondArray, r: usize| {
            (!a.is_null(r)).then(|| a.value(r))
        };
        for r in 0..b.num_rows() {
            if ids.is_null(r) {
                return Err(format!("row {r}: customer_id is null"));
            }
            let id = ids.value(r).to_string();
            let i = self.customers.len();
            self.values.extend(feats.iter().map(|c| c.value(r)));
            self.values.extend(scores.iter().map(|c| c.value(r)));
            let points_balance = (!points.is_null(r)).then(|| points.value(r));
            let consent = consent.map(|c| c.value(r));
            self.values.push(points_balance.unwrap_or(0.0));
            self.values.extend(consent.map(|b| f64::from(u8::from(b))));
            self.aggregates.extend(
                aggs.iter()
                    .map(|c| if c.is_null(r) { f64::NAN } else { c.value(r) }),
            );
            let str_list = |l: &lattice_data::arrow::array::ListArray| -> Vec<String> {
                if l.is_null(r) {
                    return vec![];
                }
                let v = l.value(r);
                let s = v.as_string::<i32>();
                (0..s.len()).map(|k| s.value(k).to_string()).collect()
            };
            let i32_list = |l: &lattice_data::arrow::array::ListArray| -> Vec<i32> {
                if l.is_null(r) {
                    return vec![];
                }
                let v = l.value(r);
                v.as_primitive::<Int32Type>().values().to_vec()
            };
            let (actions, channels) = (str_list(c_actions), str_list(c_channels));
            let at: Vec<i64> = if c_at.is_null(r) {
                vec![]
            } else {
                c_at.value(r)
                    .as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .to_vec()
            };
            let contacts = actions
                .into_iter()
                .zip(channels)
                .zip(at)
                .map(|((action_id, channel), at_us)| Contact {
                    action_id,
                    channel,
                    at_us,
                })
                .collect();
            let mut engagement: [Vec<(u8, u16)>; 4] = Default::default();
            for (slot, count) in i32_list(e_slots).into_iter().zip(i32_list(e_counts)) {
                let (k, hour) = (slot / HOURS, slot % HOURS);
                let list = engagement
                    .get_mut(k as usize)
                    .ok_or_else(|| format!("row {r}: engagement slot {slot} out of range"))?;
                list.push((hour as u8, count.clamp(0, i32::from(u16::MAX)) as u16));
            }
            self.customers.push(CustomerRecord {
                id: id.clone(),
                churn_reasons: str_list(reasons),
                tier: (!tier.is_null(r)).then(|| tier.value(r).to_string()),
                points_balance,
                consent,
                timezone: tz.value(r).to_string(),
                birth_date: (!birth.is_null(r))
                    .then(|| birth.value_as_date(r))
                    .flatten(),
                signup_us: opt_i64(signup, r),
                last_purchase_us: opt_i64(last_purchase, r),
                last_negative_us: opt_i64(last_negative, r),
                contacts,
                engagement,
            });
            self.index.insert(id, i as u32);
        }
        Ok(())
    }
}
