//! Online parity: the sample's aggregates at T1, plus its events of (T1, T2] applied one by one
//! in time order, equal the aggregation query's result at T2 for every exact field; the exact
//! features computed from them are equal too.

use std::collections::HashMap;
use std::path::PathBuf;

use lattice_data::arrow::array::{Array, AsArray};
use lattice_data::arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use lattice_data::events::{events_location, read_events};
use lattice_data::schema::ev;
use lattice_features::aggregates::DAY_US;
use lattice_features::online::{EventView, OrderMemo, is_exact_feature};
use lattice_features::{Aggregates, FeatureContext, History, Profile, load_profiles};

struct Owned {
    customer: String,
    ts: i64,
    event_type: String,
    channel: Option<String>,
    category: Option<String>,
    amount: Option<f64>,
    order_id: Option<String>,
    sentiment: Option<f64>,
}

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../training-data/sample")
}

fn events() -> Vec<Owned> {
    let mut out = Vec::new();
    read_events(&events_location(&sample()), |b| {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let f = |i: usize| b.column(i).as_primitive::<Float64Type>();
        let ts = b.column(ev::TS).as_primitive::<TimestampMicrosecondType>();
        let opt_s = |i: usize, r: usize| (!s(i).is_null(r)).then(|| s(i).value(r).to_string());
        let opt_f = |i: usize, r: usize| (!f(i).is_null(r)).then(|| f(i).value(r));
        for r in 0..b.num_rows() {
            out.push(Owned {
                customer: s(ev::CUSTOMER_ID).value(r).to_string(),
                ts: ts.value(r),
                event_type: s(ev::EVENT_TYPE).value(r).to_string(),
                channel: opt_s(ev::CHANNEL, r),
                category: opt_s(ev::CATEGORY, r),
                amount: opt_f(ev::AMOUNT, r),
                order_id: opt_s(ev::ORDER_ID, r),
                sentiment: opt_f(ev::SENTIMENT, r),
            });
        }
        Ok(())
    })
    .unwrap();
    out.sort_by_key(|e| e.ts);
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

#[tokio::test(flavor = "multi_thread")]
async fn aggregates_at_t1_plus_the_events_since_equal_the_query_at_t2() {
    let all = events();
    let t2 = all.last().unwrap().ts;
    let t1 = t2 - 45 * DAY_US;
    let history = History::open(&sample()).await.unwrap();
    let cats = history.categories(t1).await.unwrap();
    let at = |t| {
        let (h, c) = (&history, &cats);
        async move {
            h.aggregates(t, c)
                .await
                .unwrap()
                .iter()
                .cloned()
                .collect::<HashMap<String, Aggregates>>()
        }
    };
    let (mut online, truth) = (at(t1).await, at(t2).await);
    let mut memos: HashMap<String, OrderMemo> = HashMap::new();
    let mut applied = 0;
    for e in all.iter().filter(|e| e.ts > t1 && e.ts <= t2) {
        let a = online
            .entry(e.customer.clone())
            .or_insert_with(|| Aggregates::empty(cats.len()));
        a.apply(
            &EventView {
                ts_us: e.ts,
                event_type: &e.event_type,
                channel: e.channel.as_deref(),
                category: e.category.as_deref(),
                amount: e.amount,
                order_id: e.order_id.as_deref(),
                sentiment: e.sentiment,
            },
            &cats,
            memos.entry(e.customer.clone()).or_default(),
        );
        applied += 1;
    }
    assert!(applied > 1000, "the window holds events ({applied})");
    assert_eq!(online.len(), truth.len(), "same customers");

    let profiles = load_profiles(&sample()).unwrap();
    let ctx = FeatureContext {
        categories: cats.clone(),
        tiers: vec![],
    };
    let names = [ctx.names(), ctx.category_names()].concat();
    let (mut fo, mut ft) = (vec![0.0; ctx.len()], vec![0.0; ctx.len()]);
    let (mut co, mut ct) = (vec![0.0; ctx.category_len()], vec![0.0; ctx.category_len()]);
    let mut rhythm = 0;
    let empty = Profile::default();
    let mut compared = 0;
    for (id, t) in &truth {
        let o = &online[id];
        let exact = [
            (o.orders, t.orders),
            (o.revenue, t.revenue),
            (o.gap_sq_sum_days, t.gap_sq_sum_days),
            (o.first_order_amount, t.first_order_amount),
            (o.purchase_lines, t.purchase_lines),
            (o.returns, t.returns),
            (o.email_contacts, t.email_contacts),
            (o.email_opens, t.email_opens),
            (o.email_clicks, t.email_clicks),
            (o.push_contacts, t.push_contacts),
            (o.push_opens, t.push_opens),
            (o.sms_contacts, t.sms_contacts),
            (o.sms_clicks, t.sms_clicks),
            (o.contacts, t.contacts),
            (o.redemptions, t.redemptions),
        ];
        for (k, (x, y)) in exact.iter().enumerate() {
            assert!(
                close(*x, *y),
                "customer {id}, field {k}: online {x}, query {y}"
            );
        }
        assert_eq!(
            (o.first_event_us, o.last_event_us),
            (t.first_event_us, t.last_event_us),
            "{id}"
        );
        assert_eq!(
            (o.first_order_us, o.last_order_us, o.last_negative_us),
            (t.first_order_us, t.last_order_us, t.last_negative_us),
            "{id}"
        );
        assert_eq!(o.category_lines, t.category_lines, "{id}");
        assert_eq!(o.category_views, t.category_views, "{id}");
        assert_eq!(o.category_orders, t.category_orders, "{id}");
        assert_eq!(o.category_first_us, t.category_first_us, "{id}");
        assert_eq!(o.category_last_us, t.category_last_us, "{id}");

        let p = profiles.get(id).unwrap_or(&empty);
        ctx.write(o, p, t2, &mut fo);
        ctx.write(t, p, t2, &mut ft);
        ctx.write_categories(o, t2, &mut co);
        ctx.write_categories(t, t2, &mut ct);
        let values = fo.iter().chain(&co).zip(ft.iter().chain(&ct));
        for (name, (x, y)) in names.iter().zip(values) {
            if is_exact_feature(name) {
                assert!(
                    close(*x, *y),
                    "customer {id}, feature {name}: online {x}, query {y}"
                );
                compared += 1;
                rhythm += usize::from(name.starts_with("cat_"));
            }
        }
    }
    assert!(compared > 10_000, "{compared} feature values compared");
    assert!(rhythm > 10_000, "{rhythm} category rhythm values compared");
}
