//! `lattice export-events`: the stored events back to the data contract's Parquet (so `lattice
//! train` can learn from what the server saw), and the decision log with its outcomes.

use std::path::Path;
use std::sync::Arc;

use lattice_data::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use lattice_data::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use lattice_data::output::{EXPORT_DIR, OutputDir};
use lattice_data::write::{EventRow, EventsWriter, ParquetFile};

use crate::store::{EventStore, StoreError};

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub events: u64,
    pub decisions: u64,
    /// Rows of `decisions.parquet`: one per ranked action of a decision.
    pub decision_rows: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Data(#[from] lattice_data::DataError),
}

/// The id written for an event posted without `event_id`: its storage sequence number, so every
/// exported event can be told apart (and deduplicated) later.
/// Posted ids may not start with [`crate::RESERVED_ID_PREFIX`], so these never collide.
pub fn generated_event_id(seq: i64) -> String {
    format!("{}{seq}", crate::RESERVED_ID_PREFIX)
}

/// Writes `out/events.parquet` (the events table of the data contract, `event_id` kept) and
/// `out/decisions.parquet` from the database at `db`. Safe beside a running server: the
/// export reads one consistent snapshot of each table. `out` is written beside itself and
/// swapped in whole; an existing `out` is replaced only when it is an export, empty, or `force`.
pub fn export(db: &Path, out: &Path, force: bool) -> Result<Exported, ExportError> {
    let output = OutputDir::create(out, EXPORT_DIR, force)?;
    let tmp = output.path();
    let store = EventStore::open_read_only(db)?;
    let mut writer = EventsWriter::create(&tmp.join("events.parquet"))?;
    let mut failed = None;
    let events = store.for_each(|seq, e| {
        let generated;
        let event_id = match &e.event_id {
            Some(id) => id.as_str(),
            None => {
                generated = generated_event_id(seq);
                generated.as_str()
            }
        };
        let row = EventRow {
            customer_id: &e.customer_id,
            ts_us: e.ts_us,
            event_type: &e.event_type,
            channel: e.channel.as_deref(),
            category: e.category.as_deref(),
            amount: e.amount,
            quantity: e.quantity,
            order_id: e.order_id.as_deref(),
            sentiment: e.sentiment,
            action_id: e.action_id.as_deref(),
            event_id: Some(event_id),
        };
        if let Err(err) = writer.push(&row) {
            failed.get_or_insert(err);
        }
        Ok(())
    })?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    writer.finish()?;

    let path = tmp.join("decisions.parquet");
    let mut file = ParquetFile::create(&path, decisions_schema())?;
    let mut b = DecisionColumns::default();
    let mut rows = 0;
    let decisions = store.for_each_decision(|d| {
        for a in &d.actions {
            b.decision_id.append_value(&d.decision_id);
            b.customer_id.append_value(&d.customer_id);
            b.decided_at.append_value(d.decided_us);
            b.model.append_value(&d.model);
            b.rank.append_value(a.rank as i32);
            b.action_id.append_value(&a.action_id);
            b.channel.append_value(&a.channel);
            b.send_at.append_option(a.send_at_us);
            b.score.append_value(a.score);
            b.contacted_at.append_option(a.contacted_us);
            b.redeemed_at.append_option(a.redeemed_us);
            b.probability.append_option(d.probability);
            rows += 1;
        }
        Ok(())
    })?;
    file.write(&b.finish())?;
    file.finish()?;
    output.commit()?;
    Ok(Exported {
        events,
        decisions,
        decision_rows: rows,
    })
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// `decisions.parquet`: one row per ranked action of a recorded decision, with its outcome.
pub fn decisions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("decision_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("decided_at", ts(), false),
        Field::new("model", DataType::Utf8, false),
        Field::new("rank", DataType::Int32, false),
        Field::new("action_id", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("send_at", ts(), true),
        Field::new("score", DataType::Float64, false),
        Field::new("contacted_at", ts(), true),
        Field::new("redeemed_at", ts(), true),
        // The probability with which the decision's first action was chosen (the same on
        // every row of a decision); null for decisions recorded before learning.
        Field::new("probability", DataType::Float64, true),
    ]))
}

struct DecisionColumns {
    decision_id: StringBuilder,
    customer_id: StringBuilder,
    decided_at: TimestampMicrosecondBuilder,
    model: StringBuilder,
    rank: Int32Builder,
    action_id: StringBuilder,
    channel: StringBuilder,
    send_at: TimestampMicrosecondBuilder,
    score: Float64Builder,
    contacted_at: TimestampMicrosecondBuilder,
    redeemed_at: TimestampMicrosecondBuilder,
    probability: Float64Builder,
}

impl Default for DecisionColumns {
    fn default() -> Self {
        let t = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
        DecisionColumns {
            decision_id: StringBuilder::new(),
            customer_id: StringBuilder::new(),
            decided_at: t(),
            model: StringBuilder::new(),
            rank: Int32Builder::new(),
            action_id: StringBuilder::new(),
            channel: StringBuilder::new(),
            send_at: t(),
            score: Float64Builder::new(),
            contacted_at: t(),
            redeemed_at: t(),
            probability: Float64Builder::new(),
        }
    }
}

impl DecisionColumns {
    fn finish(&mut self) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.decision_id.finish()),
            Arc::new(self.customer_id.finish()),
            Arc::new(self.decided_at.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.rank.finish()),
            Arc::new(self.action_id.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.send_at.finish()),
            Arc::new(self.score.finish()),
            Arc::new(self.contacted_at.finish()),
            Arc::new(self.redeemed_at.finish()),
            Arc::new(self.probability.finish()),
        ];
        RecordBatch::try_new(decisions_schema(), cols).expect("columns match the schema")
    }
}
