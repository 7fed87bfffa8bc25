//! The DataFusion SQL that aggregates history per customer, point-in-time: only events at or
//! before `as_of` are read, so an event after it can never change an aggregate.

use crate::aggregates::{DAY_US, NEGATIVE_SENTIMENT, QUARTER_DAYS, RECENT_DAYS, YEAR_DAYS};
use crate::sample::sql_filter;

/// Quotes a string as a SQL literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The aggregation query over a table `events` in the canonical contract schema.
///
/// `ts_us` is the dialect's expression for `ts` as integer microseconds since the epoch
/// (DataFusion: `arrow_cast(ts, 'Int64')`; DuckDB: `epoch_us(ts)`), so the same text can be
/// benchmarked against another engine. `fraction` < 1 keeps only that sample of customers
/// ([`crate::sample`]; the `lattice_unit` function must then be registered).
pub fn aggregates_query(
    as_of_us: i64,
    categories: &[String],
    ts_us: &str,
    fraction: f64,
) -> String {
    aggregates_query_with(as_of_us, categories, ts_us, fraction, GapWindow::Ordered)
}

/// How the aggregation query finds the gap between a customer's consecutive orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GapWindow {
    /// One window over every order sorted by (customer, time): the fastest on one machine,
    /// but the window runs as a single task.
    #[default]
    Ordered,
    /// A window partitioned by customer: a cluster spreads the customers over tasks. The same
    /// values (tests/features compares them).
    PerCustomer,
}

/// [`aggregates_query`] with the gap window of choice.
pub fn aggregates_query_with(
    as_of_us: i64,
    categories: &[String],
    ts_us: &str,
    fraction: f64,
    gap: GapWindow,
) -> String {
    let since = |days: i64| as_of_us - days * DAY_US;
    let (d30, d90, d180, d365) = (
        since(RECENT_DAYS),
        since(QUARTER_DAYS),
        since(2 * QUARTER_DAYS),
        since(YEAR_DAYS),
    );
    // Counts as `COUNT(CASE …)`: DataFusion evaluates it a fifth faster than the equivalent
    // `SUM(CASE WHEN … THEN 1.0 ELSE 0.0 END)` and DuckDB about as fast (a `FILTER` clause is
    // faster still on DataFusion but a third slower on DuckDB). The values are the same
    // integers, as doubles.
    let count = |cond: &str| format!("CAST(COUNT(CASE WHEN {cond} THEN 1 END) AS DOUBLE)");
    let mut cat_cols = String::new();
    for (i, c) in categories.iter().enumerate() {
        let c = literal(c);
        cat_cols.push_str(&format!(
            ",\n    {} AS cat_lines_{i},\n    {} AS cat_views_{i}",
            count(&format!("event_type = 'purchase' AND category = {c}")),
            count(&format!(
                "event_type IN ('view', 'cart') AND category = {c}"
            )),
        ));
    }
    // Each category's own rhythm, from the distinct (order, category) pairs: an order with five
    // lines of dairy is one dairy purchase.
    let mut rhythm_cols = String::new();
    let mut rhythm_select = String::new();
    for (i, c) in categories.iter().enumerate() {
        let c = literal(c);
        let is = format!("category = {c}");
        rhythm_cols.push_str(&format!(
            ",\n    {} AS cat_orders_{i},\n    {} AS cat_orders_30d_{i},\n    {} AS cat_orders_90d_{i},\n    {} AS cat_orders_365d_{i},\n    MIN(CASE WHEN {is} THEN t END) AS cat_first_{i},\n    MAX(CASE WHEN {is} THEN t END) AS cat_last_{i},\n    SUM(CASE WHEN {is} AND t > {d365} THEN amount ELSE 0.0 END) AS cat_spend_365d_{i}",
            count(&is),
            count(&format!("{is} AND t > {d30}")),
            count(&format!("{is} AND t > {d90}")),
            count(&format!("{is} AND t > {d365}")),
        ));
        for col in [
            "orders",
            "orders_30d",
            "orders_90d",
            "orders_365d",
            "first",
            "last",
            "spend_365d",
        ] {
            rhythm_select.push_str(&format!(", oc.cat_{col}_{i}"));
        }
    }
    let rhythm = if categories.is_empty() {
        String::new()
    } else {
        format!(
            ",
oc_lines AS (
  SELECT customer_id, category, MIN(t) AS t, SUM(COALESCE(amount, 0.0)) AS amount
  FROM e WHERE event_type = 'purchase' AND category IN ({vocabulary})
  GROUP BY customer_id, COALESCE(order_id, CAST(t AS VARCHAR)), category
),
oc AS (
  SELECT customer_id{rhythm_cols}
  FROM oc_lines GROUP BY customer_id
)",
            vocabulary = categories
                .iter()
                .map(|c| literal(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let rhythm_join = if categories.is_empty() {
        ""
    } else {
        "\nLEFT JOIN oc ON ea.customer_id = oc.customer_id"
    };
    // The gap to the previous order comes from one window ordered by (customer, time) whose
    // rows are then matched to the same customer, rather than `PARTITION BY customer_id`:
    // DataFusion keeps per-partition state in its streaming window operator, which costs more
    // than the rest of the order pipeline with a million small partitions. Same values: the
    // first order of a customer has no gap, and ties in time give a gap of 0 either way. The
    // price: this window runs in one partition (fine for millions of orders on one machine); a
    // cluster takes the window partitioned by customer instead ([`GapWindow::PerCustomer`]).
    let gap_select = match gap {
        GapWindow::Ordered => format!(
            "SELECT customer_id, t, amount,
    CASE WHEN LAG(customer_id) OVER w = customer_id
      THEN CAST(t - LAG(t) OVER w AS DOUBLE) / {DAY_US}.0 END AS gap
  FROM o
  WINDOW w AS (ORDER BY customer_id, t)"
        ),
        GapWindow::PerCustomer => format!(
            "SELECT customer_id, t, amount,
    CAST(t - LAG(t) OVER w AS DOUBLE) / {DAY_US}.0 AS gap
  FROM o
  WINDOW w AS (PARTITION BY customer_id ORDER BY t)"
        ),
    };
    format!(
        "WITH e AS (
  SELECT customer_id, {ts_us} AS t, event_type, channel, category, amount, order_id, sentiment
  FROM events WHERE {ts_us} <= {as_of_us}{sample}
),
o AS (
  SELECT customer_id, MIN(t) AS t, SUM(COALESCE(amount, 0.0)) AS amount
  FROM e WHERE event_type = 'purchase'
  GROUP BY customer_id, COALESCE(order_id, CAST(t AS VARCHAR))
),
g AS (
  {gap_select}
),
og AS (
  SELECT customer_id,
    CAST(COUNT(*) AS DOUBLE) AS orders,
    MIN(t) AS first_order_us,
    MAX(t) AS last_order_us,
    {o30} AS orders_30d,
    {o90} AS orders_90d,
    {o365} AS orders_365d,
    {oprev} AS orders_prev_90d,
    SUM(CASE WHEN t > {d365} THEN amount ELSE 0.0 END) AS spend_365d,
    COALESCE(SUM(gap * gap), 0.0) AS gap_sq_sum_days,
    SUM(CASE WHEN gap IS NULL THEN amount ELSE 0.0 END) AS first_order_amount
  FROM g GROUP BY customer_id
),
od AS (
  SELECT customer_id, t / {DAY_US} AS day, SUM(amount) AS amount
  FROM o GROUP BY customer_id, t / {DAY_US}
),
odg AS (
  SELECT customer_id,
    CAST(COUNT(*) AS DOUBLE) AS purchase_days,
    first_value(amount ORDER BY day) AS first_day_amount
  FROM od GROUP BY customer_id
),
ea AS (
  SELECT customer_id,
    MIN(t) AS first_event_us,
    MAX(t) AS last_event_us,
    SUM(CASE WHEN event_type = 'purchase' THEN COALESCE(amount, 0.0) ELSE 0.0 END) AS revenue,
    {lines} AS purchase_lines,
    {returns} AS returns,
    {email_contacts} AS email_contacts,
    {email_opens} AS email_opens,
    {email_clicks} AS email_clicks,
    {push_contacts} AS push_contacts,
    {push_opens} AS push_opens,
    {sms_contacts} AS sms_contacts,
    {sms_clicks} AS sms_clicks,
    {contacts} AS contacts,
    {redemptions} AS redemptions,
    {views_30d} AS views_30d,
    {carts_30d} AS carts_30d,
    {app_opens_30d} AS app_opens_30d,
    {support_90d} AS support_90d,
    SUM(CASE WHEN event_type = 'support' AND t > {d90} AND sentiment IS NOT NULL THEN sentiment ELSE 0.0 END) AS sentiment_sum_90d,
    {sentiment_n} AS sentiment_n_90d,
    MAX(CASE WHEN event_type = 'return'
          OR (event_type IN ('support', 'review') AND sentiment <= {neg}) THEN t END) AS last_negative_us{cat_cols}
  FROM e GROUP BY customer_id
){rhythm}
SELECT ea.*, og.orders, og.first_order_us, og.last_order_us, og.orders_30d, og.orders_90d,
  og.orders_365d, og.orders_prev_90d, og.spend_365d, og.gap_sq_sum_days, og.first_order_amount, odg.purchase_days, odg.first_day_amount{rhythm_select}
FROM ea LEFT JOIN og ON ea.customer_id = og.customer_id
LEFT JOIN odg ON ea.customer_id = odg.customer_id{rhythm_join}",
        o30 = count(&format!("t > {d30}")),
        o90 = count(&format!("t > {d90}")),
        o365 = count(&format!("t > {d365}")),
        oprev = count(&format!("t > {d180} AND t <= {d90}")),
        lines = count("event_type = 'purchase'"),
        returns = count("event_type = 'return'"),
        email_contacts = count("event_type = 'contact' AND channel = 'email'"),
        email_opens = count("event_type = 'email_open'"),
        email_clicks = count("event_type = 'email_click'"),
        push_contacts = count("event_type = 'contact' AND channel = 'push'"),
        push_opens = count("event_type = 'push_open'"),
        sms_contacts = count("event_type = 'contact' AND channel = 'sms'"),
        sms_clicks = count("event_type = 'sms_click'"),
        contacts = count("event_type = 'contact'"),
        redemptions = count("event_type = 'redemption'"),
        views_30d = count(&format!("event_type = 'view' AND t > {d30}")),
        carts_30d = count(&format!("event_type = 'cart' AND t > {d30}")),
        app_opens_30d = count(&format!("event_type = 'app_open' AND t > {d30}")),
        support_90d = count(&format!("event_type = 'support' AND t > {d90}")),
        sentiment_n = count(&format!(
            "event_type = 'support' AND t > {d90} AND sentiment IS NOT NULL"
        )),
        neg = NEGATIVE_SENTIMENT,
        sample = sql_filter(fraction),
    )
}

/// Labels from the window after `as_of`: orders in (as_of, as_of + horizon] and, per category,
/// whether a purchase line of it falls in (as_of, as_of + affinity_days]. Orders are grouped
/// first and then counted, rather than `COUNT(DISTINCT …)`, whose per-customer sets cost
/// gigabytes with a million customers.
pub fn labels_query(
    as_of_us: i64,
    horizon_days: i64,
    affinity_days: i64,
    categories: &[String],
    ts_us: &str,
    fraction: f64,
) -> String {
    let h = as_of_us + horizon_days * DAY_US;
    let a = as_of_us + affinity_days * DAY_US;
    let end = h.max(a);
    let (mut line_cols, mut order_cols) = (String::new(), String::new());
    for (i, c) in categories.iter().enumerate() {
        line_cols.push_str(&format!(
            ",\n    MAX(CASE WHEN t <= {a} AND category = {} THEN 1.0 ELSE 0.0 END) AS cat_{i}",
            literal(c)
        ));
        order_cols.push_str(&format!(",\n  MAX(cat_{i}) AS cat_{i}"));
    }
    format!(
        "SELECT customer_id,
  CAST(COUNT(CASE WHEN t <= {h} THEN 1 END) AS DOUBLE) AS purchases_in_horizon{order_cols}
FROM (
  SELECT customer_id, MIN(t) AS t{line_cols}
  FROM (
    SELECT customer_id, {ts_us} AS t, category,
      COALESCE(order_id, CAST({ts_us} AS VARCHAR)) AS o
    FROM events
    WHERE event_type = 'purchase' AND {ts_us} > {as_of_us} AND {ts_us} <= {end}{sample}
  )
  GROUP BY customer_id, o
)
GROUP BY customer_id",
        sample = sql_filter(fraction),
    )
}

/// Purchase categories by number of purchase lines at or before `as_of`, most frequent first.
pub fn categories_query(as_of_us: i64, ts_us: &str) -> String {
    format!(
        "SELECT category, COUNT(*) AS n FROM events
WHERE event_type = 'purchase' AND category IS NOT NULL AND {ts_us} <= {as_of_us}
GROUP BY category ORDER BY n DESC, category"
    )
}
