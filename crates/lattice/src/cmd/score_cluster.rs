//! `lattice score --cluster`: every customer's aggregates at the model's as_of come from the
//! cluster as a stream of batches; each batch is scored here as it arrives and written to
//! Parquet part files, so the client never holds every customer at once. The files go to a
//! temporary directory beside --out; `_SUCCESS` is written last and the directory renamed into
//! place, so a run that stops half-way never leaves something that looks complete.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use datafusion::arrow::array::{ArrayRef, Float64Builder, ListBuilder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use lattice_data::output::{OutputDir, SCORES_DIR};
use lattice_data::write::ParquetFile;
use lattice_features::features::slug;
use lattice_features::history::aggregates_of_batch;
use lattice_features::{Aggregates, History, Profile, load_profiles};
use lattice_models::artifact::load;
use lattice_models::score::Models;
use lattice_models::snapshot::SCORE_COLUMNS;

/// Rows per part file: a new part starts once a part holds at least this many.
const PART_ROWS: usize = 256 * 1024;

/// The marker written last into a complete output.
pub const SUCCESS: &str = "_SUCCESS";

pub fn run(
    model: &Path,
    data: &Path,
    out: &Path,
    force: bool,
    spec: &str,
) -> anyhow::Result<ExitCode> {
    // Refuse before any work; files go to a temporary sibling until the commit.
    let output = OutputDir::create(out, SCORES_DIR, force)?;
    let (manifest, models) = load(model)?;
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let (rows, parts) = rt.block_on(async {
        let cluster = super::cluster::session(Some(spec)).await?;
        let history = History::open_on(data, cluster).await?;
        let profiles = load_profiles(data)?;
        score_stream(&history, &profiles, &models, output.path()).await
    })?;
    std::fs::write(output.path().join(SUCCESS), b"")
        .with_context(|| format!("writing {SUCCESS} in {}", output.path().display()))?;
    output.commit()?;
    println!(
        "scored {rows} customers on {spec} with model {} (as of {}) → {} ({parts} part files) in {:.1} s",
        manifest.name,
        manifest.as_of,
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The columns written: the id, the scores, one affinity per category, the churn reasons.
fn schema(categories: &[String]) -> SchemaRef {
    let mut fields = vec![Field::new("customer_id", DataType::Utf8, false)];
    fields.extend(
        SCORE_COLUMNS
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, false)),
    );
    fields.extend(
        categories
            .iter()
            .map(|c| Field::new(format!("affinity_{}", slug(c)), DataType::Float64, false)),
    );
    fields.push(Field::new(
        "churn_reasons",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    ));
    Arc::new(Schema::new(fields))
}

/// Scores the cluster's aggregation stream into part files in `dir`; returns (rows, parts).
async fn score_stream(
    history: &History,
    profiles: &std::collections::HashMap<String, Profile>,
    models: &Models,
    dir: &Path,
) -> anyhow::Result<(usize, usize)> {
    let f = &models.fitted;
    let (as_of, categories) = (f.cutoff_us, &f.context.categories);
    let schema = schema(categories);
    let mut stream = history
        .aggregate_stream(as_of, categories)
        .await
        .context("starting the aggregation query")?;
    let (mut rows, mut parts, mut in_part) = (0usize, 0usize, 0usize);
    let mut file: Option<ParquetFile> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.context("the aggregation query")?;
        let aggs = aggregates_of_batch(&batch, categories.len())?;
        if aggs.is_empty() {
            continue;
        }
        let scored = score_batch(models, profiles, &aggs, as_of, &schema)?;
        let w = match &mut file {
            Some(w) => w,
            None => {
                let path = dir.join(format!("part-{parts:05}.parquet"));
                parts += 1;
                file.insert(ParquetFile::create(&path, schema.clone())?)
            }
        };
        w.write(&scored)?;
        rows += scored.num_rows();
        in_part += scored.num_rows();
        if in_part >= PART_ROWS {
            if let Some(w) = file.take() {
                w.finish()?;
            }
            in_part = 0;
        }
    }
    if let Some(w) = file.take() {
        w.finish()?;
    }
    Ok((rows, parts))
}

/// One output batch: each customer's model feature row at `as_of`, as training computes it,
/// then its scores.
fn score_batch(
    models: &Models,
    profiles: &std::collections::HashMap<String, Profile>,
    aggs: &[(String, Aggregates)],
    as_of: i64,
    schema: &SchemaRef,
) -> anyhow::Result<RecordBatch> {
    let n = aggs.len();
    let width = models.fitted.feature_names.len();
    let (mut row, mut scratch) = (vec![0.0; width], vec![0.0; width]);
    let mut ids = StringBuilder::new();
    let mut scores: Vec<Float64Builder> = (0..schema.fields().len() - 2)
        .map(|_| Float64Builder::with_capacity(n))
        .collect();
    let mut reasons = ListBuilder::new(StringBuilder::new());
    let empty = Profile::default();
    for (id, a) in aggs {
        let p = profiles.get(id).unwrap_or(&empty);
        models.feature_row(a, p, as_of, &mut row);
        let s = models.score(&row, a, &mut scratch);
        ids.append_value(id);
        let vals = [s.churn_probability, s.p_alive, s.expected_purchases, s.clv];
        for (b, v) in scores.iter_mut().zip(vals.iter().chain(&s.affinity)) {
            b.append_value(*v);
        }
        for r in &s.churn_reasons {
            reasons.values().append_value(&r.feature);
        }
        reasons.append(true);
    }
    let mut cols: Vec<ArrayRef> = vec![Arc::new(ids.finish())];
    cols.extend(scores.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    cols.push(Arc::new(reasons.finish()));
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}
