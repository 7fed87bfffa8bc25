//! `lattice policy-eval`: what another policy would have earned, estimated from logged
//! decisions (IPS, SNIPS, doubly robust; lattice_learn::ope). The logs and the policy are
//! Parquet files any system can write; the format is in docs/learning.md.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use lattice_learn::ope::{Options, Sample, TargetArm, evaluate};

#[derive(clap::Args)]
pub struct Args {
    /// Logged decisions: decision_id, action, probability, reward (and optionally segment).
    #[arg(long)]
    logs: PathBuf,
    /// The policy to evaluate, per logged decision: decision_id, action, probability (and
    /// optionally predicted_reward).
    #[arg(long)]
    policy: PathBuf,
    /// Bootstrap resamples behind the intervals.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Refuse below this effective sample size.
    #[arg(long, default_value_t = 100.0)]
    min_ess: f64,
}

/// A logged decision as read.
struct Logged {
    id: String,
    action: String,
    probability: f64,
    reward: f64,
    segment: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let logs = read_logs(&args.logs)?;
    let policy = read_policy(&args.policy)?;
    // Reward model for DR: the mean logged reward of the action in the decision's segment,
    // else of the action overall (a segment or action never logged predicts 0).
    let mut by_cell: HashMap<(&str, &str), (f64, u64)> = HashMap::new();
    let mut by_action: HashMap<&str, (f64, u64)> = HashMap::new();
    for l in &logs {
        if let Some(seg) = &l.segment {
            let e = by_cell
                .entry((seg.as_str(), l.action.as_str()))
                .or_default();
            e.0 += l.reward;
            e.1 += 1;
        }
        let e = by_action.entry(l.action.as_str()).or_default();
        e.0 += l.reward;
        e.1 += 1;
    }
    let q = |segment: Option<&str>, action: &str| {
        segment
            .and_then(|s| by_cell.get(&(s, action)))
            .or_else(|| by_action.get(action))
            .map_or(0.0, |(sum, n)| sum / *n as f64)
    };
    let mut actions: HashMap<String, usize> = HashMap::new();
    let mut index = |a: &str| {
        let n = actions.len();
        *actions.entry(a.to_owned()).or_insert(n)
    };
    let mut samples = Vec::with_capacity(logs.len());
    for (row, l) in logs.iter().enumerate() {
        let Some(target) = policy.get(&l.id) else {
            bail!(
                "{}: logged decision {:?} (row {row}) has no rows in the policy file {}; the \
                 policy must give its action probabilities for every logged decision",
                args.logs.display(),
                l.id,
                args.policy.display()
            );
        };
        let seg = l.segment.as_deref();
        samples.push(Sample {
            logged_action: index(&l.action),
            logged_probability: l.probability,
            reward: l.reward,
            predicted_logged: q(seg, &l.action),
            target: target
                .iter()
                .map(|(a, p, predicted)| TargetArm {
                    action: index(a),
                    probability: *p,
                    predicted: predicted.unwrap_or_else(|| q(seg, a)),
                })
                .collect(),
        });
    }
    let options = Options {
        bootstrap: args.bootstrap,
        min_ess: args.min_ess,
        ..Options::default()
    };
    let e = evaluate(&samples, &options).map_err(|e| {
        // Decision numbers are rows of the logs file.
        anyhow::anyhow!("{}: refused: {e}", args.logs.display())
    })?;
    let logged_mean = logs.iter().map(|l| l.reward).sum::<f64>() / logs.len().max(1) as f64;
    println!(
        "{} logged decisions; the policy would have taken the logged action in {} \
         (effective sample size {:.0})",
        e.decisions, e.matched, e.ess
    );
    println!("logged policy's mean reward per decision: {logged_mean:.4}");
    println!("estimated reward per decision of the evaluated policy [95% bootstrap]:");
    for (name, est) in [("IPS", e.ips), ("SNIPS", e.snips), ("DR", e.dr)] {
        println!(
            "  {name:<6} {:.4} [{:.4}, {:.4}]",
            est.value, est.low, est.high
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn batches(path: &Path) -> anyhow::Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .build()?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", path.display()))
}

/// A column as strings (any string type), or `None` when absent and optional.
fn strings(
    b: &RecordBatch,
    path: &Path,
    name: &str,
    required: bool,
) -> anyhow::Result<Option<Vec<Option<String>>>> {
    let Some(col) = b.column_by_name(name) else {
        if required {
            bail!(
                "{}: missing column `{name}` (expected a string column)",
                path.display()
            );
        }
        return Ok(None);
    };
    let col = cast(col, &DataType::Utf8)
        .with_context(|| format!("{}: column `{name}` is not text", path.display()))?;
    let col = col.as_string::<i32>();
    Ok(Some(
        (0..col.len())
            .map(|i| col.is_valid(i).then(|| col.value(i).to_string()))
            .collect(),
    ))
}

/// A column as numbers (any numeric type), or `None` when absent and optional.
fn numbers(
    b: &RecordBatch,
    path: &Path,
    name: &str,
    required: bool,
) -> anyhow::Result<Option<Vec<Option<f64>>>> {
    let Some(col) = b.column_by_name(name) else {
        if required {
            bail!(
                "{}: missing column `{name}` (expected a number column)",
                path.display()
            );
        }
        return Ok(None);
    };
    if !col.data_type().is_numeric() {
        bail!(
            "{}: column `{name}` is {} (expected a number)",
            path.display(),
            col.data_type()
        );
    }
    let col = cast(col, &DataType::Float64)?;
    let col = col.as_primitive::<Float64Type>();
    Ok(Some(
        (0..col.len())
            .map(|i| col.is_valid(i).then(|| col.value(i)))
            .collect(),
    ))
}

fn read_logs(path: &Path) -> anyhow::Result<Vec<Logged>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for b in batches(path)? {
        let id = strings(&b, path, "decision_id", true)?.unwrap_or_default();
        let action = strings(&b, path, "action", true)?.unwrap_or_default();
        let probability = numbers(&b, path, "probability", true)?.unwrap_or_default();
        let reward = numbers(&b, path, "reward", true)?.unwrap_or_default();
        let segment = strings(&b, path, "segment", false)?;
        for i in 0..b.num_rows() {
            let row = out.len();
            let need = |v: &Option<String>, field: &str| {
                v.clone()
                    .with_context(|| format!("{}: row {row}: `{field}` is null", path.display()))
            };
            let id = need(&id[i], "decision_id")?;
            if !seen.insert(id.clone()) {
                bail!(
                    "{}: row {row}: decision_id {id:?} appears twice",
                    path.display()
                );
            }
            let reward = reward[i].filter(|r| r.is_finite()).with_context(|| {
                format!(
                    "{}: row {row}: `reward` is null or not finite",
                    path.display()
                )
            })?;
            out.push(Logged {
                id,
                action: need(&action[i], "action")?,
                // A null probability is a missing one: `evaluate` refuses it by row.
                probability: probability[i].unwrap_or(f64::NAN),
                reward,
                segment: segment.as_ref().and_then(|s| s[i].clone()),
            });
        }
    }
    if out.is_empty() {
        bail!("{}: no logged decisions", path.display());
    }
    Ok(out)
}

/// Per decision id: (action, probability, predicted reward) rows.
type Policy = HashMap<String, Vec<(String, f64, Option<f64>)>>;

fn read_policy(path: &Path) -> anyhow::Result<Policy> {
    let mut out: Policy = HashMap::new();
    let mut row = 0usize;
    for b in batches(path)? {
        let id = strings(&b, path, "decision_id", true)?.unwrap_or_default();
        let action = strings(&b, path, "action", true)?.unwrap_or_default();
        let probability = numbers(&b, path, "probability", true)?.unwrap_or_default();
        let predicted = numbers(&b, path, "predicted_reward", false)?;
        for i in 0..b.num_rows() {
            let (Some(id), Some(action), Some(p)) = (&id[i], &action[i], probability[i]) else {
                bail!(
                    "{}: row {row}: decision_id, action and probability must not be null",
                    path.display()
                );
            };
            out.entry(id.clone()).or_default().push((
                action.clone(),
                p,
                predicted.as_ref().and_then(|v| v[i]),
            ));
            row += 1;
        }
    }
    Ok(out)
}
