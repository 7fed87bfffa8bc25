//! Send-time model: recovery of planted preferred hours on simulated customers, the backtest
//! against the population baseline, fallbacks, top-k, serde, and an allocation-free hot path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use chrono::{Datelike, NaiveDate, Timelike};
use lattice_models::sendtime::{
    BacktestReport, Channel, CustomerCounts, Engagement, Grid, HOURS_PER_WEEK, HeldOut, HitRates,
    Hyper, ProfileSource, SendTimeCounts, SendTimeError, SendTimeModel, best_hour_of_day,
    hour_of_day_profile, hour_of_week, hour_of_week_from_local_seconds, select, top3_hours_of_day,
};

// Counts allocations per thread, so a test can assert that the hot path allocates nothing.
struct CountingAlloc;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn allocations() -> u64 {
    ALLOCATIONS.with(|a| a.get())
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Index drawn with probability proportional to `weights`.
    fn weighted(&mut self, weights: &[f64]) -> usize {
        let mut x = self.f64() * weights.iter().sum::<f64>();
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// Simulated customers with a planted preferred hour of week.
struct World {
    n_customers: usize,
    peaks: Vec<u8>,
    train: Vec<Engagement>,
    heldout: Vec<Engagement>,
}

/// Each customer has a peak hour of week (hour of day drawn from a daily rhythm with morning,
/// lunch and evening bumps, day uniform), 3–15 engagements of which 30% are uniform noise and
/// the rest at the peak (60%), an hour off it (25%) or at the peak hour on another day (15%).
/// Engagements are in time order as drawn; the first ~70% of each customer's are training, the
/// rest held out. 80% of customers engage by email, 20% by push; a third of customers also
/// have `Any` activity (views) near their peak in the training period.
fn simulate(n_customers: usize, seed: u64) -> World {
    let mut rng = Rng::new(seed);
    let mut daily = [0.3; 24];
    for (h, w) in [
        (7, 2.0),
        (8, 3.0),
        (12, 2.5),
        (13, 2.0),
        (19, 3.0),
        (20, 4.0),
        (21, 3.0),
    ] {
        daily[h] = w;
    }
    let mut world = World {
        n_customers,
        peaks: Vec::with_capacity(n_customers),
        train: Vec::new(),
        heldout: Vec::new(),
    };
    for c in 0..n_customers {
        let customer = c as u32;
        let peak = (rng.range(0, 6) * 24) as u8 + rng.weighted(&daily) as u8;
        world.peaks.push(peak);
        let channel = if rng.f64() < 0.8 {
            Channel::Email
        } else {
            Channel::Push
        };
        let draw = |rng: &mut Rng| -> u8 {
            if rng.f64() < 0.3 {
                return rng.range(0, 167) as u8;
            }
            let u = rng.f64();
            let how = if u < 0.6 {
                i64::from(peak)
            } else if u < 0.85 {
                i64::from(peak) + if rng.f64() < 0.5 { -1 } else { 1 }
            } else {
                i64::from(peak % 24) + 24 * rng.range(0, 6) as i64
            };
            how.rem_euclid(168) as u8
        };
        let n = rng.range(3, 15) as usize;
        let n_train = (n * 7).div_ceil(10).min(n - 1);
        for i in 0..n {
            let e = Engagement {
                customer,
                channel,
                how: draw(&mut rng),
            };
            if i < n_train {
                world.train.push(e);
            } else {
                world.heldout.push(e);
            }
        }
        if rng.f64() < 1.0 / 3.0 {
            for _ in 0..rng.range(1, 5) {
                world.train.push(Engagement {
                    customer,
                    channel: Channel::Any,
                    how: draw(&mut rng),
                });
            }
        }
    }
    world
}

fn assert_sums_to_one(p: &[f64; HOURS_PER_WEEK]) {
    let s: f64 = p.iter().sum();
    assert!((s - 1.0).abs() < 1e-12, "profile sums to {s}");
    assert!(p.iter().all(|&x| x > 0.0 && x.is_finite()));
}

fn grid(kappa: &'static [f64], beta: &'static [f64], smoothing: &'static [f64]) -> Grid<'static> {
    Grid {
        kappa,
        beta,
        smoothing,
    }
}

fn hyper(kappa: f64, beta: f64) -> [Hyper; 4] {
    [Hyper::new(kappa, beta, 0.0).unwrap(); 4]
}

#[test]
fn backtest_beats_both_baselines_and_recovers_planted_hours() {
    let world = simulate(5_000, 42);
    let train = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    let (model, report) = select(&train, &world.heldout, &Grid::DEFAULT).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());

    assert_eq!(report.heldout, HeldOut::Engagements);
    assert_eq!(report.comparison.n_heldout, world.heldout.len() as u64);
    let points =
        Grid::DEFAULT.kappa.len() * Grid::DEFAULT.beta.len() * Grid::DEFAULT.smoothing.len();
    // Engagements are scored on their channel and again under `any`.
    let channels: Vec<Channel> = report.per_channel.iter().map(|c| c.channel).collect();
    assert_eq!(channels, [Channel::Email, Channel::Push, Channel::Any]);
    for c in &report.per_channel {
        assert_eq!(c.grid.len(), points);
        assert_eq!(model.hyper(c.channel), c.hyper);
        // The chosen point is the grid's best hour-of-day hit@3, and among the points that
        // tie on it the best hour-of-week hit@3.
        let key = |m: &HitRates| (m.hour_of_day_hit_at_3, m.hour_of_week_hit_at_3);
        let best = c
            .grid
            .iter()
            .map(|g| key(&g.model))
            .fold((f64::MIN, f64::MIN), |a, b| if b > a { b } else { a });
        assert_eq!(key(&c.comparison.model), best, "{:?}", c.channel);
    }
    let n: u64 = report.per_channel[..2]
        .iter()
        .map(|c| c.comparison.n_heldout)
        .sum();
    assert_eq!(n, report.comparison.n_heldout);
    assert_eq!(report.per_channel[2].comparison.n_heldout, n);
    // SMS has no held-out engagements: it takes `any`'s choice.
    assert_eq!(model.hyper(Channel::Sms), model.hyper(Channel::Any));

    let (m, b, o) = (
        report.comparison.model,
        report.comparison.baseline,
        report.comparison.own,
    );
    assert!(
        m.hour_of_week_hit_at_3 > 2.0 * b.hour_of_week_hit_at_3
            && m.hour_of_week_hit_at_3 > b.hour_of_week_hit_at_3 + 0.2,
        "hit@3 {} vs baseline {}",
        m.hour_of_week_hit_at_3,
        b.hour_of_week_hit_at_3
    );
    assert!(m.hour_of_week_hit_at_1 > b.hour_of_week_hit_at_1 + 0.1);
    assert!(m.hour_of_day_hit_at_3 > b.hour_of_day_hit_at_3);
    assert!(m.hour_of_week_hit_at_1 <= m.hour_of_week_hit_at_3);
    assert!(m.hour_of_week_hit_at_3 <= m.hour_of_day_hit_at_3);
    // The customers' own raw best hours are a strong baseline here (every customer has
    // history); shrinkage and smoothing must still beat them on what the model serves.
    assert!(
        m.hour_of_day_hit_at_3 > o.hour_of_day_hit_at_3 + 0.01,
        "hour-of-day hit@3 {} vs own {}",
        m.hour_of_day_hit_at_3,
        o.hour_of_day_hit_at_3
    );
    assert!(m.hour_of_week_hit_at_3 > o.hour_of_week_hit_at_3);
    // Every simulated customer has training history.
    assert_eq!(report.with_history.n_heldout, report.comparison.n_heldout);

    // Planted truth: the best hour of week is the planted peak for most customers with
    // several training engagements, and the peak is in the top 3 for more.
    let (mut n, mut top1, mut top3) = (0, 0, 0);
    for c in 0..world.n_customers {
        let counts = train.customer(c).unwrap();
        let channel = if counts.n_events(Channel::Email) > 0 {
            Channel::Email
        } else {
            Channel::Push
        };
        if counts.n_events(channel) < 6 {
            continue;
        }
        let r = model.recommend(&counts, channel);
        assert_eq!(r.source, ProfileSource::Channel);
        n += 1;
        top1 += usize::from(r.best_hour_of_week() == world.peaks[c]);
        top3 += usize::from(r.top3_hours_of_week().contains(&world.peaks[c]));
    }
    let (top1, top3) = (top1 as f64 / n as f64, top3 as f64 / n as f64);
    println!("planted peak recovered: top-1 {top1:.3}, top-3 {top3:.3} of {n} customers");
    assert!(top1 > 0.7 && top3 > 0.85, "top-1 {top1}, top-3 {top3}");
}

#[test]
fn purchase_only_data_is_backtested_on_all_activity() {
    // Grocery-like data: no opens or clicks, only purchases and visits (`Any`).
    let mut world = simulate(2_000, 11);
    for e in world.train.iter_mut().chain(world.heldout.iter_mut()) {
        e.channel = Channel::Any;
    }
    let train = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    let (model, report) = select(&train, &world.heldout, &Grid::DEFAULT).unwrap();
    assert_eq!(report.heldout, HeldOut::AllActivity);
    assert_eq!(report.per_channel.len(), 1);
    assert_eq!(report.per_channel[0].channel, Channel::Any);
    assert_eq!(report.comparison.n_heldout, world.heldout.len() as u64);
    let any = model.hyper(Channel::Any);
    assert_eq!(any, report.per_channel[0].hyper);
    assert!(Channel::ALL.iter().all(|&c| model.hyper(c) == any));
    let (m, o, b) = (
        report.comparison.model,
        report.comparison.own,
        report.comparison.baseline,
    );
    assert!(
        m.hour_of_day_hit_at_3 > o.hour_of_day_hit_at_3
            && m.hour_of_day_hit_at_3 > b.hour_of_day_hit_at_3,
        "{m:?} vs own {o:?}, population {b:?}"
    );
}

#[test]
fn grid_ties_keep_the_first_point_and_bad_grids_are_errors() {
    let world = simulate(300, 7);
    let train = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    // The same κ twice: identical scores, the first is kept.
    let (_, report) = select(&train, &world.heldout, &grid(&[3.0, 3.0], &[0.0], &[0.0])).unwrap();
    let email = &report.per_channel[0];
    assert_eq!(email.hyper.kappa, 3.0);
    assert_eq!(email.grid[0].model, email.grid[1].model);

    for g in [
        grid(&[], &[1.0], &[0.0]),
        grid(&[1.0], &[], &[0.0]),
        grid(&[1.0], &[1.0], &[]),
        grid(&[0.0], &[1.0], &[0.0]),
        grid(&[f64::NAN], &[1.0], &[0.0]),
        grid(&[1.0], &[-1.0], &[0.0]),
        grid(&[1.0], &[1.0], &[1.5]),
    ] {
        assert!(select(&train, &world.heldout, &g).is_err(), "{g:?}");
    }
    let one = grid(&[1.0], &[1.0], &[0.0]);
    let err = select(&train, &[], &one).unwrap_err();
    assert!(err.to_string().contains("no held-out"), "{err}");
    let stranger = Engagement {
        customer: 300,
        channel: Channel::Email,
        how: 3,
    };
    let err = select(&train, &[stranger], &one).unwrap_err();
    assert!(
        matches!(err, SendTimeError::InvalidEngagement { index: 0, .. }),
        "{err}"
    );
}

#[test]
fn profiles_sum_to_one_and_fall_back_to_population() {
    let world = simulate(500, 3);
    let counts = SendTimeCounts::from_engagements(world.n_customers + 1, &world.train).unwrap();
    let model = SendTimeModel::fit(&counts, hyper(4.0, 1.0)).unwrap();
    for ch in Channel::ALL {
        assert_sums_to_one(model.population(ch));
        for c in 0..20 {
            assert_sums_to_one(&model.profile(&counts.customer(c).unwrap(), ch));
        }
    }
    // The last customer has no events at all: population, exactly, on every channel.
    let nobody = counts.customer(world.n_customers).unwrap();
    assert_eq!(nobody, CustomerCounts::EMPTY);
    for ch in Channel::ALL {
        assert_eq!(&model.profile(&nobody, ch), model.population(ch));
        let r = model.recommend(&nobody, ch);
        assert_eq!((r.source, r.observations), (ProfileSource::Population, 0));
        assert!(r.hours_of_week.iter().all(|s| s.observations == 0));
    }
    // SMS has no data in this world: its population is the overall activity's.
    assert_eq!(model.population_events(Channel::Sms), 0);
    let diff = model
        .population(Channel::Sms)
        .iter()
        .zip(model.population(Channel::Any))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-15);
}

#[test]
fn only_any_activity_drives_the_email_profile() {
    let mut evs = Vec::new();
    // Background population: email opens Monday 08:00.
    for c in 0..50 {
        for _ in 0..3 {
            evs.push(Engagement {
                customer: c,
                channel: Channel::Email,
                how: 8,
            });
        }
    }
    // Customer 50 only browses, on Saturdays at 21:00 (and once at 22:00).
    let saturday_21 = hour_of_week(5, 21).unwrap();
    for how in [saturday_21, saturday_21, saturday_21, saturday_21 + 1] {
        evs.push(Engagement {
            customer: 50,
            channel: Channel::Any,
            how,
        });
    }
    let counts = SendTimeCounts::from_engagements(51, &evs).unwrap();
    let model = SendTimeModel::fit(&counts, hyper(2.0, 0.5)).unwrap();
    let browser = counts.customer(50).unwrap();
    assert_eq!(browser.n_events(Channel::Email), 0);

    let email = model.profile(&browser, Channel::Email);
    assert_sums_to_one(&email);
    assert_eq!(model.top_k(&browser, Channel::Email, 1)[0].0, saturday_21);
    assert!(email[usize::from(saturday_21)] > 0.3);
    // Without the customer's activity the population would say Monday 08:00.
    assert_eq!(
        model.top_k(&CustomerCounts::EMPTY, Channel::Email, 1)[0].0,
        8
    );
    let r = model.recommend(&browser, Channel::Email);
    assert_eq!(r.source, ProfileSource::AllActivity);
    assert_eq!(r.observations, 4);
    assert_eq!(r.best_hour_of_week(), saturday_21);
    assert_eq!(r.hours_of_week[0].observations, 3);
    assert_eq!(r.best_hour_of_day(), 21);
    assert_eq!(r.hours_of_day[0].observations, 3);
    assert_eq!(best_hour_of_day(&email).0, 21);
    // On its own channel (Any) the same counts are the customer's own.
    assert_eq!(
        model.recommend(&browser, Channel::Any).source,
        ProfileSource::Channel
    );
    // A customer with email opens uses them, not their other activity.
    let opener = counts.customer(0).unwrap();
    assert_eq!(
        model.recommend(&opener, Channel::Email).source,
        ProfileSource::Channel
    );
}

#[test]
fn top_k_is_sorted_distinct_and_capped() {
    let world = simulate(200, 11);
    let counts = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    let model = SendTimeModel::fit(&counts, hyper(1.0, 2.0)).unwrap();
    for c in 0..world.n_customers {
        let cc = counts.customer(c).unwrap();
        for k in [0, 1, 3, 10, 168, 500] {
            let top = model.top_k(&cc, Channel::Email, k);
            assert_eq!(top.len(), k.min(168));
            assert!(
                top.windows(2).all(|w| w[0].1 >= w[1].1),
                "not sorted: {top:?}"
            );
            let mut slots: Vec<u8> = top.iter().map(|t| t.0).collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), top.len());
            let profile = model.profile(&cc, Channel::Email);
            assert!(top.iter().all(|&(h, p)| profile[usize::from(h)] == p));
            if k == 168 {
                let total: f64 = top.iter().map(|t| t.1).sum();
                assert!((total - 1.0).abs() < 1e-12);
            }
        }
        // The hour-of-day helpers agree with the profile.
        let profile = model.profile(&cc, Channel::Email);
        let hod = hour_of_day_profile(&profile);
        let top3 = top3_hours_of_day(&profile);
        assert!(top3[0].1 >= top3[1].1 && top3[1].1 >= top3[2].1);
        assert!(hod.iter().all(|&p| p <= top3[0].1));
        let r = model.recommend(&cc, Channel::Email);
        assert_eq!(r.top3_hours_of_day(), top3.map(|t| t.0));
        assert!(r.top3_hours_of_week_mass() <= r.top3_hours_of_day_mass() + 1e-12);
    }
}

#[test]
fn hot_path_does_not_allocate() {
    let world = simulate(100, 5);
    let counts = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    let model = SendTimeModel::fit(&counts, hyper(2.0, 1.0)).unwrap();
    let cc = counts.customer(17).unwrap();
    let mut out = [(0u8, 0.0f64); 5];
    let before = allocations();
    let mut acc = 0.0;
    for ch in Channel::ALL {
        let n = model.top_k_into(&cc, ch, &mut out);
        acc += out[..n].iter().map(|t| t.1).sum::<f64>();
        acc += model.recommend(&cc, ch).top3_hours_of_week_mass();
        acc += model.profile(&cc, ch)[0];
    }
    assert_eq!(allocations(), before, "the hot path allocated");
    assert!(acc > 0.0);
}

#[test]
fn serde_round_trips() {
    let world = simulate(300, 9);
    let train = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    let (model, report) = select(
        &train,
        &world.heldout,
        &grid(&[1.0, 4.0], &[0.0, 1.0], &[0.0, 0.5]),
    )
    .unwrap();

    let json = serde_json::to_string(&model).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["population"]["email"].as_array().unwrap().len(), 168);
    assert_eq!(
        value["hyper"]["email"]["kappa"],
        model.hyper(Channel::Email).kappa
    );
    assert!(value["hyper"]["any"]["smoothing"].is_number());
    let back: SendTimeModel = serde_json::from_str(&json).unwrap();
    // serde_json parses floats to within an ulp, not always exactly: profiles compared below.
    for ch in Channel::ALL {
        assert_eq!(back.hyper(ch), model.hyper(ch));
    }
    for c in 0..world.n_customers {
        let cc = train.customer(c).unwrap();
        for ch in Channel::ALL {
            let (a, b) = (model.profile(&cc, ch), back.profile(&cc, ch));
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-12));
        }
    }

    let json = serde_json::to_string(&report).unwrap();
    let back: BacktestReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back.comparison.n_heldout, report.comparison.n_heldout);
    assert_eq!(back.per_channel.len(), report.per_channel.len());
    assert_eq!(
        back.per_channel[0].grid.len(),
        report.per_channel[0].grid.len()
    );
    let (a, b) = (back.comparison.model, report.comparison.model);
    assert!((a.hour_of_day_hit_at_3 - b.hour_of_day_hit_at_3).abs() < 1e-15);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["heldout"], "engagements");
    assert!(value["own"]["hour_of_day_hit_at_3"].is_number());
    assert_eq!(value["per_channel"][0]["channel"], "email");
    assert!(value["per_channel"][0]["model"]["hour_of_week_hit_at_3"].is_number());
    assert!(value["per_channel"][0]["grid"][0]["smoothing"].is_number());
    assert_eq!(back.hyper, Channel::ALL.map(|c| model.hyper(c)));

    let json = serde_json::to_string(&train).unwrap();
    let back: SendTimeCounts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, train);

    let r = model.recommend(&train.customer(0).unwrap(), Channel::Email);
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.contains("\"source\":\"channel\""), "{json}");
    let back: lattice_models::sendtime::SendTimeRecommendation =
        serde_json::from_str(&json).unwrap();
    assert_eq!(back.top3_hours_of_week(), r.top3_hours_of_week());
}

#[test]
fn tampered_artifacts_are_rejected_with_the_field_named() {
    let evs = [Engagement {
        customer: 0,
        channel: Channel::Email,
        how: 1,
    }];
    let counts = SendTimeCounts::from_engagements(1, &evs).unwrap();
    let model = SendTimeModel::fit(&counts, hyper(1.0, 1.0)).unwrap();
    let mut value = serde_json::to_value(&model).unwrap();
    value["population"]["push"].as_array_mut().unwrap().pop();
    let err = serde_json::from_value::<SendTimeModel>(value).unwrap_err();
    assert!(
        err.to_string().contains("population.push: 167 values"),
        "{err}"
    );

    let mut value = serde_json::to_value(&model).unwrap();
    value["population"]["email"][5] = serde_json::json!(0.5);
    let err = serde_json::from_value::<SendTimeModel>(value).unwrap_err();
    assert!(err.to_string().contains("population.email"), "{err}");

    let mut value = serde_json::to_value(&model).unwrap();
    value["hyper"]["sms"]["kappa"] = serde_json::json!(-1.0);
    let err = serde_json::from_value::<SendTimeModel>(value).unwrap_err();
    assert!(err.to_string().contains("kappa"), "{err}");

    let mut value = serde_json::to_value(&counts).unwrap();
    value["entries"][0][0] = serde_json::json!(200);
    let err = serde_json::from_value::<SendTimeCounts>(value).unwrap_err();
    assert!(err.to_string().contains("hour < 168"), "{err}");

    let mut value = serde_json::to_value(&counts).unwrap();
    value["offsets"].as_array_mut().unwrap().pop();
    assert!(serde_json::from_value::<SendTimeCounts>(value).is_err());
}

#[test]
fn bad_inputs_are_errors() {
    let bad_hour = Engagement {
        customer: 0,
        channel: Channel::Sms,
        how: 168,
    };
    let err = SendTimeCounts::from_engagements(1, &[bad_hour]).unwrap_err();
    assert!(
        err.to_string().contains("engagement 0: hour of week 168"),
        "{err}"
    );
    let bad_customer = Engagement {
        customer: 1,
        channel: Channel::Sms,
        how: 0,
    };
    let err = SendTimeCounts::from_engagements(1, &[bad_customer, bad_customer]).unwrap_err();
    assert!(
        err.to_string()
            .contains("customer 1 is not below n_customers 1"),
        "{err}"
    );
    let counts = SendTimeCounts::from_engagements(1, &[]).unwrap();
    assert!(Hyper::new(0.0, 1.0, 0.0).is_err());
    assert!(Hyper::new(f64::INFINITY, 1.0, 0.0).is_err());
    assert!(Hyper::new(1.0, f64::NAN, 0.0).is_err());
    assert!(Hyper::new(1.0, 1.0, -0.1).is_err());
    let bad = Hyper {
        kappa: -1.0,
        ..Hyper::DEFAULT
    };
    assert!(SendTimeModel::fit(&counts, [bad; 4]).is_err());
    // No data at all: every population is uniform.
    let model = SendTimeModel::fit(&counts, hyper(1.0, 1.0)).unwrap();
    assert!(
        model
            .population(Channel::Push)
            .iter()
            .all(|&p| (p - 1.0 / 168.0).abs() < 1e-15)
    );
    let list = [(170u8, 1u16)];
    assert!(CustomerCounts::new([&[], &list, &[], &[]]).is_err());
    let list = [(3u8, 2u16), (3, 1)];
    let cc = CustomerCounts::new([&list, &[], &[], &list]).unwrap();
    assert_eq!(cc.n_events(Channel::Email), 3);
}

#[test]
fn channels_and_hours_of_week() {
    for ch in Channel::ALL {
        assert_eq!(Channel::from_name(ch.name()), Some(ch));
        assert_eq!(ch.to_string(), ch.name());
        assert_eq!(Channel::ALL[ch.index()], ch);
    }
    assert_eq!(
        Channel::ALL.map(Channel::name),
        ["email", "sms", "push", "any"]
    );
    for (t, ch) in [
        ("email_open", Some(Channel::Email)),
        ("email_click", Some(Channel::Email)),
        ("sms_click", Some(Channel::Sms)),
        ("push_open", Some(Channel::Push)),
        ("app_open", Some(Channel::Push)),
        ("view", Some(Channel::Any)),
        ("purchase", Some(Channel::Any)),
        ("contact", None),
        ("unsubscribe", None),
        ("telepathy", None),
    ] {
        assert_eq!(Channel::from_event_type(t), ch, "{t}");
    }
    assert_eq!(hour_of_week(0, 0), Some(0));
    assert_eq!(hour_of_week(6, 23), Some(167));
    assert_eq!(hour_of_week(7, 0), None);
    assert_eq!(hour_of_week(0, 24), None);
    // Against chrono's calendar, before and after 1970.
    let mut rng = Rng::new(1);
    for _ in 0..2_000 {
        let secs = rng.range(0, 4_000_000_000) as i64 - 1_000_000_000;
        let t = chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .naive_utc();
        let expected = t.weekday().num_days_from_monday() * 24 + t.hour();
        assert_eq!(
            u32::from(hour_of_week_from_local_seconds(secs)),
            expected,
            "{t}"
        );
    }
    let monday = NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 30, 0)
        .unwrap();
    assert_eq!(
        hour_of_week_from_local_seconds(monday.and_utc().timestamp()),
        0
    );
}

/// Timing at the benchmark's scale (1M customers); run with `--ignored --nocapture`.
#[test]
#[ignore]
fn scale_one_million_customers() {
    let t = std::time::Instant::now();
    let world = simulate(1_000_000, 99);
    println!(
        "simulated {} train / {} held-out engagements in {:?}",
        world.train.len(),
        world.heldout.len(),
        t.elapsed()
    );
    let t = std::time::Instant::now();
    let train = SendTimeCounts::from_engagements(world.n_customers, &world.train).unwrap();
    println!("counts in {:?}", t.elapsed());
    let t = std::time::Instant::now();
    let (model, report) = select(&train, &world.heldout, &Grid::DEFAULT).unwrap();
    println!(
        "select over {} grid points in {:?}: hit@3 {:.3} vs baseline {:.3}",
        report.per_channel[0].grid.len(),
        t.elapsed(),
        report.comparison.model.hour_of_week_hit_at_3,
        report.comparison.baseline.hour_of_week_hit_at_3
    );
    let t = std::time::Instant::now();
    let mut acc = 0u64;
    for c in 0..world.n_customers {
        let r = model.recommend(&train.customer(c).unwrap(), Channel::Email);
        acc += u64::from(r.best_hour_of_week());
    }
    println!("recommend for every customer in {:?} ({acc})", t.elapsed());
}
