//! Writing an audience as JSON, CSV or Parquet to any `Write`, a row (or a row group) at a
//! time: memory stays flat however large the audience, and a server can stream the bytes as
//! they come.
//!
//! Every format carries the same rows; CSV and Parquet rows also carry the audience id, the
//! target and the start time (what `lattice uplift` reads back), and Parquet files hold the
//! summary as JSON under the key `lattice.audience.summary`.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use lattice_data::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use lattice_data::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use lattice_data::parquet::arrow::ArrowWriter;
use lattice_data::parquet::basic::{Compression, ZstdLevel};
use lattice_data::parquet::file::metadata::KeyValue;
use lattice_data::parquet::file::properties::WriterProperties;

use crate::rows::RowMaker;
use crate::select::{Audience, Source};

/// Rows per Parquet row group (each is encoded and written as soon as it is full).
pub const ROW_GROUP: usize = 16 * 1024;

/// Key of the summary in a Parquet file's metadata.
pub const SUMMARY_KEY: &str = "lattice.audience.summary";

/// The columns of CSV and Parquet audiences, in order.
pub const COLUMNS: [&str; 12] = [
    "customer_id",
    "rank",
    "probability",
    "score",
    "expected_value",
    "reasons",
    "holdout",
    "audience_id",
    "target",
    "action",
    "category",
    "starts_at",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Parquet,
}

impl Format {
    /// `json`, `csv` or `parquet`.
    pub fn parse(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    /// From a file name's extension.
    pub fn of_path(path: &Path) -> Option<Format> {
        Format::parse(path.extension()?.to_str()?)
    }

    /// From an `Accept` header: the first of its media types Lattice writes (JSON when none).
    pub fn from_accept(accept: &str) -> Format {
        for part in accept.split(',') {
            let media = part.split(';').next().unwrap_or("").trim();
            match media.to_ascii_lowercase().as_str() {
                "text/csv" => return Format::Csv,
                "application/vnd.apache.parquet"
                | "application/x-parquet"
                | "application/parquet" => return Format::Parquet,
                "application/json" => return Format::Json,
                _ => {}
            }
        }
        Format::Json
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
        }
    }
}

/// Writes the audience's rows (with the summary, in JSON and Parquet) to `sink`, returning it.
pub fn write<W: Write + Send>(
    aud: &Audience,
    src: Source<'_>,
    format: Format,
    sink: W,
) -> io::Result<W> {
    match format {
        Format::Json => write_json(aud, src, sink),
        Format::Csv => write_csv(aud, src, sink),
        Format::Parquet => write_parquet(aud, src, sink),
    }
}

fn write_json<W: Write>(aud: &Audience, src: Source<'_>, mut w: W) -> io::Result<W> {
    w.write_all(b"{\"summary\":")?;
    serde_json::to_writer(&mut w, &aud.summary)?;
    w.write_all(b",\"customers\":[")?;
    let mut maker = RowMaker::new(src);
    for (k, (rank, p)) in aud.rows().enumerate() {
        w.write_all(if k == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut w, &maker.row(aud, rank, p))?;
    }
    w.write_all(b"\n]}\n")?;
    Ok(w)
}

/// A CSV cell: quoted when it holds a comma, quote, semicolon or line break.
fn cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r', ';']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// The per-audience columns: id, target kind, action, category, start.
fn constants(aud: &Audience) -> [String; 5] {
    let t = &aud.summary.target;
    [
        aud.plan.audience_id.clone(),
        t.kind.to_string(),
        t.action.clone().unwrap_or_default(),
        t.category.clone().unwrap_or_default(),
        aud.summary.starts_at.clone(),
    ]
}

fn write_csv<W: Write>(aud: &Audience, src: Source<'_>, mut w: W) -> io::Result<W> {
    writeln!(w, "{}", COLUMNS.join(","))?;
    let tail: Vec<String> = constants(aud)
        .iter()
        .map(|s| cell(s).into_owned())
        .collect();
    let tail = tail.join(",");
    let mut maker = RowMaker::new(src);
    for (rank, p) in aud.rows() {
        let r = maker.row(aud, rank, p);
        writeln!(
            w,
            "{},{},{},{},{},{},{},{tail}",
            cell(r.customer_id),
            r.rank,
            r.probability,
            r.score,
            r.expected_value,
            cell(&r.reasons.join(";")),
            r.holdout,
        )?;
    }
    Ok(w)
}

fn schema() -> SchemaRef {
    let utf8 = |n: &str| Field::new(n, DataType::Utf8, false);
    let f64 = |n: &str| Field::new(n, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        utf8("customer_id"),
        Field::new("rank", DataType::Int64, false),
        f64("probability"),
        f64("score"),
        f64("expected_value"),
        Field::new(
            "reasons",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
        Field::new("holdout", DataType::Boolean, false),
        utf8("audience_id"),
        utf8("target"),
        Field::new("action", DataType::Utf8, true),
        Field::new("category", DataType::Utf8, true),
        Field::new(
            "starts_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ]))
}

fn write_parquet<W: Write + Send>(aud: &Audience, src: Source<'_>, sink: W) -> io::Result<W> {
    let schema = schema();
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).map_err(io::Error::other)?,
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .set_created_by(lattice_data::output::created_by())
        .build();
    let mut writer =
        ArrowWriter::try_new(sink, schema.clone(), Some(props)).map_err(io::Error::other)?;
    writer.append_key_value_metadata(KeyValue::new(
        SUMMARY_KEY.to_string(),
        serde_json::to_string(&aud.summary)?,
    ));
    let [id, kind, action, category, _] = constants(aud);
    let starts_us = aud.plan.starts_at.timestamp_micros();
    let mut maker = RowMaker::new(src);
    let mut rows = aud.rows().peekable();
    while rows.peek().is_some() {
        let mut ids = StringBuilder::new();
        let mut rank = Int64Builder::with_capacity(ROW_GROUP);
        let (mut prob, mut score, mut value) = (
            Float64Builder::with_capacity(ROW_GROUP),
            Float64Builder::with_capacity(ROW_GROUP),
            Float64Builder::with_capacity(ROW_GROUP),
        );
        let mut reasons = ListBuilder::new(StringBuilder::new());
        let mut holdout = BooleanBuilder::with_capacity(ROW_GROUP);
        let mut n = 0;
        for (r, p) in rows.by_ref().take(ROW_GROUP) {
            let row = maker.row(aud, r, p);
            ids.append_value(row.customer_id);
            rank.append_value(row.rank as i64);
            prob.append_value(row.probability);
            score.append_value(row.score);
            value.append_value(row.expected_value);
            for reason in &row.reasons {
                reasons.values().append_value(reason);
            }
            reasons.append(true);
            holdout.append_value(row.holdout);
            n += 1;
        }
        let constant = |v: &str| -> ArrayRef {
            let mut b = StringBuilder::new();
            for _ in 0..n {
                b.append_value(v);
            }
            Arc::new(b.finish())
        };
        let optional = |v: &str| -> ArrayRef {
            let mut b = StringBuilder::new();
            for _ in 0..n {
                b.append_option((!v.is_empty()).then_some(v));
            }
            Arc::new(b.finish())
        };
        let mut starts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        for _ in 0..n {
            starts.append_value(starts_us);
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(ids.finish()),
            Arc::new(rank.finish()),
            Arc::new(prob.finish()),
            Arc::new(score.finish()),
            Arc::new(value.finish()),
            Arc::new(reasons.finish()),
            Arc::new(holdout.finish()),
            constant(&id),
            constant(&kind),
            optional(&action),
            optional(&category),
            Arc::new(starts.finish()),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).map_err(io::Error::other)?;
        writer.write(&batch).map_err(io::Error::other)?;
        // Close the row group now: its bytes go to the sink, and memory stays flat.
        writer.flush().map_err(io::Error::other)?;
    }
    writer.into_inner().map_err(io::Error::other)
}
