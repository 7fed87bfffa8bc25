//! The model's snapshot carries what the server decides with: scores, current-state attributes
//! from `customers`, recent contacts and engagement counts, read back as written.

use std::path::PathBuf;

use lattice_features::load_profiles;
use lattice_models::artifact::{SNAPSHOT, load};
use lattice_models::pipeline::TrainConfig;
use lattice_models::sendtime::Channel;
use lattice_models::snapshot::{CONTACT_DAYS, ServingSnapshot};
use lattice_models::train::{TrainOptions, train};

const DAY_US: i64 = 86_400_000_000;

#[test]
fn serving_snapshot_round_trip() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let opts = TrainOptions {
        name: "s".into(),
        config: TrainConfig::default(),
        as_of_us: None,
        backtest: false,
        report: None,
        force: false,
        cluster: None,
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(train(&data, &out, &opts)).unwrap();
    let (manifest, models) = load(&out).unwrap();
    let names: Vec<String> = manifest
        .feature_schema
        .iter()
        .map(|f| f.name.clone())
        .collect();
    let snap = ServingSnapshot::read(&out.join(SNAPSHOT), &names, &manifest.categories).unwrap();
    assert_eq!(snap.customers.len() as u64, manifest.customers);
    assert_eq!(snap.score_names.len(), 4 + manifest.categories.len());

    let profiles = load_profiles(&data).unwrap();
    let (mut with_contacts, mut with_engagement) = (0, 0);
    for (i, c) in snap.customers.iter().enumerate() {
        assert_eq!(snap.get(&c.id), Some(i));
        let p = &profiles[&c.id];
        assert_eq!(
            c.consent,
            [p.consent_email, p.consent_sms, p.consent_push],
            "{}",
            c.id
        );
        assert_eq!(c.points_balance, p.points_balance);
        assert_eq!(c.birth_date.is_some(), p.birth_date.is_some());
        for w in c.contacts.windows(2) {
            assert!(w[0].at_us <= w[1].at_us, "contacts oldest first");
        }
        for k in &c.contacts {
            assert!(
                k.at_us <= manifest.as_of_us && k.at_us > manifest.as_of_us - CONTACT_DAYS * DAY_US
            );
        }
        with_contacts += usize::from(!c.contacts.is_empty());
        let counts = c.counts();
        with_engagement += usize::from(counts.n_events(Channel::Any) > 0);
        // The scores stored are the models' scores of the stored features.
        let s = snap.scores(i);
        assert!((0.0..=1.0).contains(&s[0]), "churn probability {}", s[0]);
        if i < 50 {
            let rec = models.send_time.recommend(&counts, Channel::Any);
            assert!(usize::from(rec.best_hour_of_week()) < 168);
        }
    }
    assert!(
        with_contacts > 1000,
        "{with_contacts} customers with recent contacts"
    );
    assert!(
        with_engagement > 1000,
        "{with_engagement} customers with engagement"
    );
}

#[test]
fn a_missing_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.parquet");
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/demo/snapshot.parquet");
    std::fs::copy(demo, &path).unwrap();
    let err = ServingSnapshot::read(&path, &["no_such_feature".to_string()], &[]).unwrap_err();
    assert!(err.to_string().contains("no_such_feature"), "{err}");
}
