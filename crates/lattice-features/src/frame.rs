//! A dense feature matrix for many customers at one `as_of`.

use std::collections::HashMap;

use crate::aggregates::Profile;
use crate::error::Result;
use crate::features::FeatureContext;
use crate::history::History;

/// Row-major feature matrix: row `i` is `customer_ids[i]`, column `j` is `names[j]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureFrame {
    pub as_of_us: i64,
    pub customer_ids: Vec<String>,
    pub names: Vec<String>,
    pub values: Vec<f64>,
}

impl FeatureFrame {
    pub fn rows(&self) -> usize {
        self.customer_ids.len()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        let k = self.names.len();
        &self.values[i * k..(i + 1) * k]
    }

    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.names.iter().position(|n| n == name)?;
        Some((0..self.rows()).map(|i| self.row(i)[j]).collect())
    }
}

/// Features at `as_of` of every customer with history at or before it.
pub async fn feature_frame(
    history: &History,
    profiles: &HashMap<String, Profile>,
    ctx: &FeatureContext,
    as_of_us: i64,
) -> Result<FeatureFrame> {
    let aggs = history.aggregates(as_of_us, &ctx.categories).await?;
    let (base, k) = (ctx.len(), ctx.len() + ctx.category_len());
    let mut values = vec![0.0; aggs.len() * k];
    let empty = Profile::default();
    let mut customer_ids = Vec::with_capacity(aggs.len());
    for (i, (id, a)) in aggs.iter().enumerate() {
        let p = profiles.get(id).unwrap_or(&empty);
        let row = &mut values[i * k..(i + 1) * k];
        ctx.write(a, p, as_of_us, &mut row[..base]);
        ctx.write_categories(a, as_of_us, &mut row[base..]);
        customer_ids.push(id.clone());
    }
    Ok(FeatureFrame {
        as_of_us,
        customer_ids,
        names: [ctx.names(), ctx.category_names()].concat(),
        values,
    })
}
