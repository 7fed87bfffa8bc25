//! `lattice export-decisions`: every recorded decision with its outcome, attributed with the
//! learning rule (docs/learning.md), as Parquet: for notebooks, and as `policy-eval` logs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use lattice_data::output::{TABLE_FILE, check_file};
use lattice_data::write::ParquetFile;
use lattice_events::EventStore;
use lattice_learn::{Contacted, Event, EventKind, Segment, Segments, attribute};
use lattice_runtime::LoadedModel;

#[derive(clap::Args)]
pub struct Args {
    /// The events database the server recorded decisions and events in.
    #[arg(long)]
    db: PathBuf,
    /// The model directory that served (its catalog says each action's response rule, value
    /// and cost).
    #[arg(long)]
    model: PathBuf,
    /// An action catalog instead of the model directory's own.
    #[arg(long)]
    actions: Option<PathBuf>,
    /// The Parquet file to write (an earlier export or other Lattice-written table is
    /// replaced; anything else is refused without --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out even when it does not look like an earlier output.
    #[arg(long)]
    force: bool,
}

/// One decision and what followed.
struct Row {
    decision_id: String,
    customer_id: String,
    decided_us: i64,
    action: String,
    probability: Option<f64>,
    segment: Option<String>,
    held_out: Option<String>,
    responded_us: Option<i64>,
    reward: f64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Before any work: a refusal should not wait for the whole log to be read.
    check_file(&args.out, TABLE_FILE, args.force)?;
    let model = LoadedModel::load(&args.model, args.actions.as_deref())
        .with_context(|| format!("loading the model {}", args.model.display()))?;
    let store = EventStore::open_read_only(&args.db)?;
    let segments = Segments::new(model.settings.tiers.iter().map(|t| t.name.clone()));
    let catalog = &model.catalog;

    // Decisions whose first action is in the catalog, opened for attribution.
    let mut rows = Vec::new();
    let mut contacted = Vec::new();
    store.for_each_decision(|d| {
        let Some(first) = d.actions.first() else {
            return Ok(());
        };
        let (Some(info), Some(at)) = (
            catalog.action(&first.action_id),
            DateTime::from_timestamp_micros(d.decided_us),
        ) else {
            return Ok(());
        };
        contacted.push(Contacted {
            decision_id: d.decision_id.clone(),
            customer_id: d.customer_id.clone(),
            action: info.index,
            at,
            response: info.response,
            category: info
                .category
                .and_then(|c| catalog.categories().get(c).cloned()),
        });
        rows.push(Row {
            decision_id: d.decision_id,
            customer_id: d.customer_id,
            decided_us: d.decided_us,
            action: first.action_id.clone(),
            probability: d.probability,
            segment: d.segment.map(|s| segments.name(Segment(s as usize))),
            held_out: d.held_out,
            responded_us: None,
            reward: 0.0,
        });
        Ok(())
    })?;
    let mut stored = Vec::new();
    store.for_each(|_, e| {
        if EventKind::of(&e.event_type) != EventKind::Other {
            stored.push(e);
        }
        Ok(())
    })?;
    let events: Vec<Event<'_>> = stored
        .iter()
        .filter_map(|e| {
            Some(Event {
                customer_id: &e.customer_id,
                at: DateTime::from_timestamp_micros(e.ts_us)?,
                kind: EventKind::of(&e.event_type),
                category: e.category.as_deref(),
            })
        })
        .collect();
    let now = Utc::now();
    let outcomes = attribute(contacted, &events, now);
    let closed: std::collections::HashMap<&str, Option<i64>> = outcomes
        .iter()
        .map(|o| {
            (
                o.decision.decision_id.as_str(),
                o.responded_at.map(|t| t.timestamp_micros()),
            )
        })
        .collect();
    // Decisions still inside their window are left out: their outcome is not known yet.
    let mut kept = Vec::with_capacity(rows.len());
    for mut r in rows {
        let Some(&responded) = closed.get(r.decision_id.as_str()) else {
            continue;
        };
        let a = catalog.action(&r.action).context("action checked above")?;
        r.responded_us = responded;
        r.reward = if responded.is_some() { a.value } else { 0.0 } - a.cost;
        kept.push(r);
    }
    write(&args.out, &kept)?;
    println!(
        "wrote {} closed decisions ({} responded) to {}",
        kept.len(),
        kept.iter().filter(|r| r.responded_us.is_some()).count(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &std::path::Path, rows: &[Row]) -> anyhow::Result<()> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("decision_id", DataType::Utf8, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("decided_at", ts(), false),
        Field::new("action", DataType::Utf8, false),
        Field::new("probability", DataType::Float64, true),
        Field::new("segment", DataType::Utf8, true),
        Field::new("held_out", DataType::Utf8, true),
        Field::new("responded", DataType::Boolean, false),
        Field::new("responded_at", ts(), true),
        Field::new("reward", DataType::Float64, false),
    ]));
    let text = |f: &dyn Fn(&Row) -> Option<&str>| {
        Arc::new(rows.iter().map(f).collect::<StringArray>()) as ArrayRef
    };
    let time = |f: &dyn Fn(&Row) -> Option<i64>| {
        Arc::new(
            rows.iter()
                .map(f)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ) as ArrayRef
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(&|r| Some(&r.decision_id)),
            text(&|r| Some(&r.customer_id)),
            time(&|r| Some(r.decided_us)),
            text(&|r| Some(&r.action)),
            Arc::new(rows.iter().map(|r| r.probability).collect::<Float64Array>()),
            text(&|r| r.segment.as_deref()),
            text(&|r| r.held_out.as_deref()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.responded_us.is_some()))
                    .collect::<BooleanArray>(),
            ),
            time(&|r| r.responded_us),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.reward))
                    .collect::<Float64Array>(),
            ),
        ],
    )?;
    let mut f = ParquetFile::create(path, schema)?;
    f.write(&batch)?;
    f.finish()?;
    Ok(())
}
