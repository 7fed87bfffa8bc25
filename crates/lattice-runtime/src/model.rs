//! A model directory loaded for serving: verified artifacts, the snapshot in memory, the action
//! catalog compiled against the model's variables, and per-customer values laid out for
//! decisioning. Built once per (re)load; requests only read it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::DateTime;
use chrono_tz::Tz;
use lattice_audience::{AudienceIndex, Source};
use lattice_catalog::actions::ActionCatalog;
use lattice_catalog::settings::Settings;
use lattice_decide::{
    Catalog, Contact, Customer, PerChannel, Scores, SendTimeProfile, SendTimeSource,
};
use lattice_features::{Aggregates, Profile};
use lattice_models::artifact::{ACTIONS, Manifest, SETTINGS, SNAPSHOT, load};
use lattice_models::score::Models;
use lattice_models::sendtime::{Channel as SendChannel, CustomerCounts, SendTimeModel};
use lattice_models::snapshot::{CustomerRecord, ServingSnapshot};

pub struct LoadedModel {
    pub dir: PathBuf,
    /// The catalog given instead of the directory's own, kept for reloads.
    pub actions_override: Option<PathBuf>,
    pub manifest: Manifest,
    pub models: Models,
    pub snapshot: ServingSnapshot,
    pub catalog: Catalog,
    pub settings: Settings,
    /// Each customer's time zone, parsed once.
    zones: Vec<Tz>,
    /// Position of `spend_365d` in a feature row.
    spend_365d: Option<usize>,
    /// Per-customer columns for audiences, laid out once.
    pub audience: AudienceIndex,
}

/// Why a model directory was refused. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest, a checksum or the weights.
    #[error(transparent)]
    Artifact(#[from] lattice_models::artifact::ArtifactError),
    #[error(transparent)]
    Snapshot(#[from] lattice_models::ModelError),
    /// `lattice.toml` or `actions.toml` cannot be read or parsed.
    #[error(transparent)]
    Config(#[from] lattice_catalog::ConfigError),
    /// The action catalog parses but does not fit the model (an unknown variable, a bad rule).
    #[error("{path}: {source}", path = .path.display())]
    Catalog {
        path: PathBuf,
        #[source]
        source: lattice_decide::CatalogError,
    },
}

/// Buffers one request fills to describe a customer to the decision layer.
#[derive(Default)]
pub struct Scratch<'a> {
    /// Where the customer's send-time profiles come from (computed when an action needs one).
    pub profiles: Option<Profiles<'a>>,
    pub contacts: Vec<Contact<'a>>,
}

/// A customer's send-time profiles, computed on demand by the decision layer: only for the
/// channels its ranked actions go out on.
#[derive(Debug)]
pub struct Profiles<'a> {
    model: &'a SendTimeModel,
    counts: CustomerCounts<'a>,
}

impl SendTimeSource for Profiles<'_> {
    fn profile(&self, channel: lattice_decide::Channel, out: &mut SendTimeProfile) -> bool {
        // Unnormalised: a send time needs the best hour, not probabilities.
        self.model
            .weights_into(&self.counts, send_channel(channel), out);
        true
    }
}

pub fn send_channel(c: lattice_decide::Channel) -> SendChannel {
    match c {
        lattice_decide::Channel::Email => SendChannel::Email,
        lattice_decide::Channel::Sms => SendChannel::Sms,
        lattice_decide::Channel::Push => SendChannel::Push,
    }
}

impl LoadedModel {
    /// Loads and checks `dir`; `actions` overrides the directory's own `actions.toml`. Every
    /// error names the file and what is wrong.
    pub fn load(dir: &Path, actions: Option<&Path>) -> Result<Self, LoadError> {
        let (manifest, models) = load(dir)?;
        let features: Vec<String> = manifest
            .feature_schema
            .iter()
            .map(|f| f.name.clone())
            .collect();
        let snapshot = ServingSnapshot::read(&dir.join(SNAPSHOT), &features, &manifest.categories)?;
        let settings = Settings::load_or_default(&dir.join(SETTINGS))?;
        let actions_path = actions.map_or_else(|| dir.join(ACTIONS), Path::to_path_buf);
        let action_catalog = if actions.is_some() || actions_path.exists() {
            ActionCatalog::from_file(&actions_path)?
        } else {
            ActionCatalog::default()
        };
        let catalog = Catalog::compile(
            &action_catalog,
            &settings,
            &snapshot.variables,
            &manifest.categories,
        )
        .map_err(|source| LoadError::Catalog {
            path: actions_path.clone(),
            source,
        })?;
        let default_tz = Tz::from_str(&settings.default_timezone).unwrap_or(Tz::UTC);
        let zones = snapshot
            .customers
            .iter()
            .map(|c| Tz::from_str(&c.timezone).unwrap_or(default_tz))
            .collect();
        let spend_365d = features.iter().position(|v| v == "spend_365d");
        let audience = AudienceIndex::for_model(dir, &manifest, &snapshot, &settings.tiers);
        Ok(LoadedModel {
            dir: dir.to_path_buf(),
            actions_override: actions.map(Path::to_path_buf),
            manifest,
            models,
            snapshot,
            catalog,
            settings,
            zones,
            spend_365d,
            audience,
        })
    }

    /// The snapshot's as_of, in microseconds since the epoch.
    pub fn as_of_us(&self) -> i64 {
        self.manifest.as_of_us
    }

    /// The feature row and scores of a customer with aggregates `a` at `at_us`, as training
    /// computes them.
    pub fn score_at(
        &self,
        a: &Aggregates,
        p: &Profile,
        at_us: i64,
    ) -> (Vec<f64>, lattice_models::score::CustomerScore) {
        let mut row = vec![0.0; self.snapshot.feature_names.len()];
        self.models.feature_row(a, p, at_us, &mut row);
        let mut scratch = vec![0.0; row.len()];
        let score = self.models.score_at(&row, a, at_us, &mut scratch);
        (row, score)
    }

    /// What audiences are selected from; `withdrawn` is the online state's
    /// [`OnlineState::withdrawn`].
    pub fn audience_source<'a>(
        &'a self,
        withdrawn: &'a std::collections::HashMap<u32, [bool; 3]>,
    ) -> Source<'a> {
        Source {
            index: &self.audience,
            snapshot: &self.snapshot,
            catalog: &self.catalog,
            zones: &self.zones,
            withdrawn: Some(withdrawn),
        }
    }

    pub fn customers(&self) -> usize {
        self.snapshot.customers.len()
    }

    pub fn record(&self, i: usize) -> &CustomerRecord {
        &self.snapshot.customers[i]
    }

    pub fn timezone(&self, i: usize) -> Tz {
        self.zones[i]
    }

    /// `spend_365d` of a feature row (0 if the model has no such feature).
    pub fn spend_365d(&self, features: &[f64]) -> f64 {
        self.spend_365d.map_or(0.0, |j| features[j])
    }

    /// Customer `i` as the decision layer sees it; `scratch` holds what is computed per request
    /// (the send-time profile source, the contact list).
    pub fn customer<'a>(&'a self, i: usize, scratch: &'a mut Scratch<'a>) -> Customer<'a> {
        self.customer_from(
            self.record(i),
            self.snapshot.values(i),
            self.zones[i],
            scratch,
        )
    }

    /// The decision layer's view of a record and its value row (features, scores, attributes).
    pub(crate) fn customer_from<'a>(
        &'a self,
        rec: &'a CustomerRecord,
        values: &'a [f64],
        tz: Tz,
        scratch: &'a mut Scratch<'a>,
    ) -> Customer<'a> {
        let nf = self.snapshot.feature_names.len();
        let scores = &values[nf..nf + self.snapshot.score_names.len()];
        let consent = PerChannel {
            email: rec.consent[0],
            sms: rec.consent[1],
            push: rec.consent[2],
        };
        let Scratch { profiles, contacts } = scratch;
        let send_time_source: &Profiles<'a> = profiles.insert(Profiles {
            model: &self.models.send_time,
            counts: rec.counts(),
        });
        contacts.clear();
        contacts.extend(rec.contacts.iter().filter_map(|k| {
            Some(Contact {
                action_id: &k.action_id,
                channel: lattice_decide::Channel::parse(&k.channel)?,
                at: DateTime::from_timestamp_micros(k.at_us)?,
            })
        }));
        Customer {
            id: &rec.id,
            values,
            scores: Scores {
                churn_probability: scores[0],
                p_alive: scores[1],
                expected_purchases: scores[2],
                clv: scores[3],
                affinity: &scores[4..],
            },
            tier: rec.tier.as_deref(),
            spend_365d: self.spend_365d(&values[..nf]),
            points_balance: rec.points_balance.unwrap_or(0.0),
            tz,
            consent,
            birth_date: rec.birth_date,
            signup_date: rec
                .signup_us
                .and_then(DateTime::from_timestamp_micros)
                .map(|t| t.date_naive()),
            last_negative_at: rec
                .last_negative_us
                .and_then(DateTime::from_timestamp_micros),
            last_purchase_at: rec
                .last_purchase_us
                .and_then(DateTime::from_timestamp_micros),
            contacts,
            send_time: PerChannel::default(),
            send_time_source: Some(send_time_source),
        }
    }
}
