//! `lattice audience`: a predicted audience to a file, with the options of
//! `POST /v1/audiences` (the same request, the same selection, the same writers).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use lattice_audience::{
    Audience, AudienceRequest, FieldError, Filters, Format, HoldoutSpec, SizeSpec, TargetSpec,
    select, write,
};
use lattice_data::output::{OutputFile, TABLE_FILE, check_file};
use lattice_runtime::LoadedModel;

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Json,
    Csv,
    Parquet,
}

#[derive(clap::Args)]
pub struct Args {
    /// Model directory written by `lattice train`.
    #[arg(long)]
    model: PathBuf,
    /// Action catalog to use instead of the model directory's own actions.toml.
    #[arg(long)]
    actions: Option<PathBuf>,
    /// The server's events database: consent withdrawn there (unsubscribe events) is honoured.
    /// Default: runs/<model directory name>/events.db when it exists.
    #[arg(long)]
    events_db: Option<PathBuf>,
    /// Target: customers most likely to buy in this category.
    #[arg(long, help_heading = "Target (one)")]
    category: Option<String>,
    /// Target: customers eligible for this action, most likely to respond first.
    #[arg(long, help_heading = "Target (one)")]
    action: Option<String>,
    /// Target: customers most likely to churn (a win-back audience).
    #[arg(long, help_heading = "Target (one)")]
    churn: bool,
    /// Size: the N best customers.
    #[arg(long, help_heading = "Size (one)")]
    top: Option<usize>,
    /// Size: everyone with a probability of at least this.
    #[arg(long, help_heading = "Size (one)")]
    min_probability: Option<f64>,
    /// Size: as many of the best as this budget pays for.
    #[arg(long, help_heading = "Size (one)", allow_negative_numbers = true)]
    budget: Option<f64>,
    /// Cost of one contact, with --budget (default: the action's cost).
    #[arg(long, help_heading = "Size (one)", allow_negative_numbers = true)]
    cost_per_contact: Option<f64>,
    /// Keep these loyalty tiers (repeat, or comma-separated).
    #[arg(long = "tier", value_delimiter = ',', help_heading = "Filters")]
    tiers: Vec<String>,
    /// Keep customers with consent on this channel: email, sms or push.
    #[arg(long, help_heading = "Filters")]
    channel: Option<String>,
    #[arg(long, help_heading = "Filters", allow_negative_numbers = true)]
    min_churn_probability: Option<f64>,
    #[arg(long, help_heading = "Filters", allow_negative_numbers = true)]
    max_churn_probability: Option<f64>,
    /// Keep customers whose CLV is at least this.
    #[arg(long, help_heading = "Filters", allow_negative_numbers = true)]
    min_clv: Option<f64>,
    /// Keep customers whose last purchase is at most N days before the model's as_of.
    #[arg(long, help_heading = "Filters")]
    last_purchase_within_days: Option<u32>,
    /// Keep customers whose last purchase is more than N days before as_of.
    #[arg(long, help_heading = "Filters")]
    last_purchase_older_than_days: Option<u32>,
    /// Leave out customers contacted in the last N days (at most 90).
    #[arg(long, help_heading = "Filters")]
    exclude_contacted_within_days: Option<u32>,
    /// Hold out this share of qualifying customers as a control group, e.g. 0.1.
    #[arg(long, help_heading = "Holdout", allow_negative_numbers = true)]
    holdout: Option<f64>,
    /// Also write the held-out customers (holdout = true), for `lattice uplift`.
    #[arg(long, help_heading = "Holdout")]
    include_holdout: bool,
    /// Names the audience and seeds the holdout split (default: derived from the options).
    #[arg(long)]
    audience_id: Option<String>,
    /// When the campaign starts (RFC 3339 or YYYY-MM-DD; default: now).
    #[arg(long)]
    starts_at: Option<String>,
    /// Write only the first N rows.
    #[arg(long)]
    preview: Option<usize>,
    /// Output file (.csv, .parquet or .json; an earlier output is replaced, anything else is
    /// refused without --force).
    #[arg(long)]
    out: PathBuf,
    /// Replace --out even when it does not look like an earlier output.
    #[arg(long)]
    force: bool,
    /// Output format (default: from the file's extension).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
}

/// The flag behind a request field, for error messages.
fn flag(field: &str) -> String {
    let base = field.split('[').next().unwrap_or(field);
    let name = match base {
        "target" => return "--category, --action or --churn".into(),
        "size" => return "--top, --min-probability or --budget".into(),
        "filters.tiers" => "tier",
        "holdout.share" => "holdout",
        other => other.rsplit('.').next().unwrap_or(other),
    };
    format!("--{}", name.replace('_', "-"))
}

impl Args {
    fn request(&self) -> anyhow::Result<AudienceRequest> {
        Ok(AudienceRequest {
            audience_id: self.audience_id.clone(),
            target: TargetSpec {
                category: self.category.clone(),
                action: self.action.clone(),
                churn: self.churn.then_some(true),
            },
            size: SizeSpec {
                top: self.top,
                min_probability: self.min_probability,
                budget: self.budget,
                cost_per_contact: self.cost_per_contact,
            },
            filters: Filters {
                tiers: (!self.tiers.is_empty()).then(|| self.tiers.clone()),
                channel: self.channel.clone(),
                min_churn_probability: self.min_churn_probability,
                max_churn_probability: self.max_churn_probability,
                min_clv: self.min_clv,
                last_purchase_within_days: self.last_purchase_within_days,
                last_purchase_older_than_days: self.last_purchase_older_than_days,
                exclude_contacted_within_days: self.exclude_contacted_within_days,
            },
            holdout: self.holdout.map(|share| HoldoutSpec {
                share,
                include: self.include_holdout,
            }),
            starts_at: self
                .starts_at
                .as_deref()
                .map(super::parse_instant)
                .transpose()?,
            preview: self.preview,
        })
    }

    fn format(&self) -> anyhow::Result<Format> {
        Ok(match self.format {
            Some(FormatArg::Json) => Format::Json,
            Some(FormatArg::Csv) => Format::Csv,
            Some(FormatArg::Parquet) => Format::Parquet,
            None => Format::of_path(&self.out).with_context(|| {
                format!(
                    "{}: say --format csv, parquet or json (or name the file .csv, .parquet or \
                     .json)",
                    self.out.display()
                )
            })?,
        })
    }
}

/// Consent the server's events withdrew since the snapshot, read from its database (read
/// only, safe beside the running server); none if there is no database.
fn withdrawn_consent(
    m: &LoadedModel,
    args: &Args,
) -> anyhow::Result<std::collections::HashMap<u32, [bool; 3]>> {
    let path = super::serve::events_db(&args.model, args.events_db.as_deref())?;
    if args.events_db.is_none() && !path.exists() {
        return Ok(Default::default());
    }
    let store = lattice_events::EventStore::open_read_only(&path)
        .with_context(|| format!("reading consent changes from {}", path.display()))?;
    lattice_runtime::withdrawn_consent(m, &store)
        .with_context(|| format!("reading unsubscribes from {}", path.display()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format = args.format()?;
    check_file(&args.out, TABLE_FILE, args.force)?;
    let req = args.request()?;
    if args.include_holdout && args.holdout.is_none() {
        anyhow::bail!("--include-holdout needs --holdout SHARE");
    }
    let m = LoadedModel::load(&args.model, args.actions.as_deref()).map_err(anyhow::Error::msg)?;
    let plan =
        req.plan(&m.audience, &m.catalog, Utc::now())
            .map_err(|FieldError { field, detail }| {
                anyhow::anyhow!("{}: {detail} (request field `{field}`)", flag(&field))
            })?;
    let withdrawn = withdrawn_consent(&m, &args)?;
    let started = std::time::Instant::now();
    let audience = select(&m.audience_source(&withdrawn), &plan);
    let selected = started.elapsed();

    let file = OutputFile::create(&args.out, TABLE_FILE, args.force)?;
    let tmp = file.tmp_path().to_path_buf();
    let mut w = write(
        &audience,
        m.audience_source(&withdrawn),
        format,
        BufWriter::new(file),
    )
    .with_context(|| format!("writing {}", tmp.display()))?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.commit()?;
    print_summary(&audience, &args.out, selected);
    Ok(ExitCode::SUCCESS)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("unknown".into(), |v| format!("{v:.digits$}"))
}

fn print_summary(a: &Audience, out: &std::path::Path, took: std::time::Duration) {
    let s = &a.summary;
    println!(
        "audience {} from model {} (as of {}): {}",
        s.audience_id, s.model, s.as_of, s.target.event
    );
    println!("{:<32} {:>10} {:>10}  filter", "step", "before", "after");
    for f in &s.funnel {
        println!(
            "{:<32} {:>10} {:>10}  {}",
            f.step, f.before, f.after, f.detail
        );
    }
    let e = &s.expected_conversions;
    println!(
        "customers to contact: {} (control group: {})\n\
         expected conversions: {:.1} (95% interval {:.1} to {:.1})\n\
         lift over random: {} (backtest at {:.1}% of customers), {} estimated\n\
         probabilities: {}\n\
         selected in {:.1} ms; {} rows written to {}",
        s.size,
        s.control_size,
        e.mean,
        e.low,
        e.high,
        opt(s.lift.backtest, 2),
        s.lift.depth * 100.0,
        opt(s.lift.estimated, 2),
        s.calibration,
        took.as_secs_f64() * 1e3,
        s.rows,
        out.display()
    );
}
