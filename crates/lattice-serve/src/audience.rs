//! `POST /v1/audiences` and `GET /v1/audiences/options`: thin glue over `lattice-audience`.
//! The selection runs off the async threads; the rows are written by a blocking task into a
//! bounded channel of 64 KiB chunks that the response body drains, so a million-row audience
//! streams in constant memory (the writer waits while the client is slow, and stops if it
//! goes away).

use std::io::{self, Write};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use lattice_audience::{AudienceRequest, Format, Summary, select, write};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use crate::deadline::WriteTimeout;
use crate::extract::{ApiJson, ApiQuery};
use crate::guard::{AUDIENCE, Scoped};
use crate::problem::Problem;
use crate::state::AppState;
use std::sync::atomic::Ordering;

/// Bytes per body chunk.
pub const CHUNK: usize = 64 * 1024;
/// Chunks written ahead of the client at most.
pub const CHUNKS_IN_FLIGHT: usize = 4;

/// `?format=`
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AudienceQuery {
    /// json, csv or parquet (default: from the `Accept` header, else JSON).
    pub format: Option<String>,
}

/// An action an audience can target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionOption {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// The category whose affinity is the action's propensity (and recalibrates it).
    pub category: Option<String>,
    pub channels: Vec<String>,
    /// Cost per contact: the default `cost_per_contact` of a budget.
    pub cost: f64,
}

/// What an audience can be built from, for forms.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudienceOptions {
    pub model: String,
    pub as_of: String,
    pub customers: usize,
    pub categories: Vec<String>,
    pub actions: Vec<ActionOption>,
    pub tiers: Vec<String>,
    pub channels: Vec<String>,
    /// The largest `exclude_contacted_within_days`.
    pub max_contact_days: i64,
    /// Whether probabilities are recalibrated on a backtest.
    pub calibration: String,
}

/// A Parquet file: one row per customer, the summary in its metadata.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ParquetBody(pub Vec<u8>);

/// The JSON answer: the summary, then the customers (streamed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudienceResponseDoc {
    pub summary: Summary,
    pub customers: Vec<lattice_audience::Row<'static>>,
}

fn negotiate(query: Option<&str>, headers: &HeaderMap) -> Result<Format, Problem> {
    if let Some(f) = query {
        return Format::parse(f).ok_or_else(|| {
            Problem::unprocessable(
                "format",
                format!("unknown format {f:?} (expected json, csv or parquet)"),
            )
        });
    }
    Ok(headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map_or(Format::Json, Format::from_accept))
}

/// `std::io::Write` into the response body: 64 KiB chunks through a bounded channel. A chunk
/// the client does not take within `write_timeout` ends the stream: a client that stops
/// reading must not hold a blocking thread forever.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    runtime: tokio::runtime::Handle,
    write_timeout: std::time::Duration,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self.runtime.block_on(tokio::time::timeout(
            self.write_timeout,
            self.tx.send(Ok(Bytes::from(chunk))),
        ));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no data within the write timeout",
            )),
        }
    }

    fn finish(mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK {
                self.send()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn header_value(v: impl ToString) -> HeaderValue {
    HeaderValue::from_str(&v.to_string()).unwrap_or(HeaderValue::from_static(""))
}

#[utoipa::path(
    post, path = "/v1/audiences", tag = "audiences",
    params(AudienceQuery),
    request_body = AudienceRequest,
    responses(
        (status = 200, description = "The audience, best first. CSV and Parquet carry the \
            summary in `Lattice-*` headers (Parquet also in its metadata).",
            content(
                (AudienceResponseDoc = "application/json"),
                (String = "text/csv"),
                (ParquetBody = "application/vnd.apache.parquet"),
            ),
            headers(
                ("Lattice-Audience-Id" = String, description = "The audience id (seeds the holdout)"),
                ("Lattice-Audience-Size" = usize, description = "Customers to contact"),
                ("Lattice-Control-Size" = usize, description = "Customers held out"),
                ("Lattice-Expected-Conversions" = f64, description = "Expected conversions"),
                ("Lattice-Expected-Conversions-Low" = f64, description = "95% interval, low"),
                ("Lattice-Expected-Conversions-High" = f64, description = "95% interval, high"),
            )),
        (status = 400, body = Problem), (status = 422, body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
    ),
    security(("api_key" = []))
)]
pub async fn audiences(
    _: Scoped<AUDIENCE>,
    State(state): State<AppState>,
    axum::Extension(WriteTimeout(write_timeout)): axum::Extension<WriteTimeout>,
    ApiQuery(q): ApiQuery<AudienceQuery>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<AudienceRequest>,
) -> Result<Response, Problem> {
    let format = negotiate(q.format.as_deref(), &headers)?;
    let m = state.0.model.load_full();
    let plan = req
        .plan(&m.audience, &m.catalog, Utc::now())
        .map_err(|e| Problem::unprocessable(&e.field, e.detail))?;
    let internal = |e: tokio::task::JoinError| Problem::internal("the audience task", &e);
    let model = m.clone();
    let audience = tokio::task::spawn_blocking(move || {
        select(&model.audience_source(&model.online.withdrawn()), &plan)
    })
    .await
    .map_err(internal)?;

    let s = &audience.summary;
    let mut res_headers = HeaderMap::new();
    res_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if format != Format::Json {
        res_headers.insert(
            header::CONTENT_DISPOSITION,
            header_value(format!(
                "attachment; filename=\"{}.{}\"",
                s.audience_id,
                format.extension()
            )),
        );
    }
    let e = &s.expected_conversions;
    for (name, value) in [
        ("lattice-audience-id", s.audience_id.clone()),
        ("lattice-audience-size", s.size.to_string()),
        ("lattice-control-size", s.control_size.to_string()),
        ("lattice-expected-conversions", e.mean.to_string()),
        ("lattice-expected-conversions-low", e.low.to_string()),
        ("lattice-expected-conversions-high", e.high.to_string()),
    ] {
        res_headers.insert(name, header_value(value));
    }

    let (tx, mut rx) = mpsc::channel::<Result<Bytes, io::Error>>(CHUNKS_IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let metrics = &st.0.metrics;
        metrics.streams_active.fetch_add(1, Ordering::Relaxed);
        let sink = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
            runtime,
            write_timeout,
        };
        let withdrawn = m.online.withdrawn();
        match write(&audience, m.audience_source(&withdrawn), format, sink)
            .and_then(ChannelWriter::finish)
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!("audience stream stopped: the client went away");
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                metrics.streams_timed_out.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("audience stream cut off: the client stopped reading");
            }
            Err(e) => {
                tracing::warn!(error = %e, "writing an audience failed mid-stream");
                let _ = tx.try_send(Err(e));
            }
        }
        metrics.streams_active.fetch_sub(1, Ordering::Relaxed);
    });
    let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((res_headers, Body::from_stream(body)).into_response())
}

#[utoipa::path(
    get, path = "/v1/audiences/options", tag = "audiences",
    responses((status = 200, body = AudienceOptions), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("api_key" = []))
)]
pub async fn audience_options(
    _: Scoped<AUDIENCE>,
    State(state): State<AppState>,
) -> Json<AudienceOptions> {
    let m = state.model();
    let cats = &m.manifest.categories;
    Json(AudienceOptions {
        model: m.manifest.name.clone(),
        as_of: m.manifest.as_of.clone(),
        customers: m.customers(),
        categories: cats.clone(),
        actions: m
            .catalog
            .actions()
            .map(|a| ActionOption {
                id: a.id.to_string(),
                name: a.name.to_string(),
                kind: a.kind.to_string(),
                category: a.affinity_category().map(|c| cats[c].clone()),
                channels: a.channels.iter().map(|c| c.as_str().to_string()).collect(),
                cost: a.cost,
            })
            .collect(),
        tiers: m.audience.tier_names().to_vec(),
        channels: ["email", "sms", "push"].map(String::from).to_vec(),
        max_contact_days: lattice_models::snapshot::CONTACT_DAYS,
        calibration: m.audience.calibration_note().to_string(),
    })
}
