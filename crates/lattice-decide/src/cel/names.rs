//! The vocabulary of eligibility expressions: the names one may use (the model's variables and
//! scores, `tier`, the `context` and `action` records and their fields) and where the value of
//! each lives. The checker binds an expression's names to these; the planner and the evaluator
//! read the bindings.

use std::collections::HashMap;

/// Where the value of a name an expression uses comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Binding {
    /// `Customer::values[i]`.
    Value(usize),
    Score(ScoreName),
    Tier,
    /// `context.<field>`, or the whole record (`has(context.x)`, `context['x']`).
    Context(Option<ContextField>),
    /// `action.<field>`, or the whole record.
    Action(Option<ActionField>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScoreName {
    ChurnProbability,
    PAlive,
    ExpectedPurchases,
    Clv,
    /// Affinity of the category with this index.
    Affinity(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContextField {
    Channel,
    Category,
    Page,
    Store,
}

impl ContextField {
    pub(crate) const ALL: [(&'static str, ContextField); 4] = [
        ("channel", ContextField::Channel),
        ("category", ContextField::Category),
        ("page", ContextField::Page),
        ("store", ContextField::Store),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActionField {
    Id,
    Name,
    Kind,
    Category,
    Value,
    Cost,
    Weight,
}

impl ActionField {
    pub(crate) const ALL: [(&'static str, ActionField); 7] = [
        ("id", ActionField::Id),
        ("name", ActionField::Name),
        ("kind", ActionField::Kind),
        ("category", ActionField::Category),
        ("value", ActionField::Value),
        ("cost", ActionField::Cost),
        ("weight", ActionField::Weight),
    ];
}

/// The names an expression may use: the model's variables, its score names, `tier`.
pub(crate) struct Names {
    map: HashMap<String, Binding>,
}

impl Names {
    /// Variables win over score names, so a caller whose value row already carries the scores
    /// reads them from there.
    pub(crate) fn new(variables: &[String], category_slugs: &[String]) -> Names {
        let mut map: HashMap<String, Binding> = HashMap::new();
        for (i, v) in variables.iter().enumerate() {
            map.entry(v.clone()).or_insert(Binding::Value(i));
        }
        let scores = [
            ("churn_probability", ScoreName::ChurnProbability),
            ("p_alive", ScoreName::PAlive),
            ("expected_purchases", ScoreName::ExpectedPurchases),
            ("clv", ScoreName::Clv),
        ];
        for (name, s) in scores {
            map.entry(name.to_owned()).or_insert(Binding::Score(s));
        }
        for (i, slug) in category_slugs.iter().enumerate() {
            map.entry(format!("affinity_{slug}"))
                .or_insert(Binding::Score(ScoreName::Affinity(i)));
        }
        map.entry("tier".to_owned()).or_insert(Binding::Tier);
        Names { map }
    }

    pub(super) fn get(&self, name: &str) -> Option<Binding> {
        self.map.get(name).copied()
    }

    /// The known name closest to `name`, for "did you mean".
    pub(super) fn closest(&self, name: &str) -> Option<&str> {
        let mut best: Option<(usize, &str)> = None;
        for k in self.map.keys() {
            // A truncated name (`churn_prob`) is as good as one typo.
            let d = if name.len() >= 4 && k.starts_with(name) {
                1
            } else {
                edit_distance(name, k)
            };
            if d <= (name.len() / 3).max(2)
                && best.is_none_or(|(bd, bk)| (d, k.as_str()) < (bd, bk))
            {
                best = Some((d, k));
            }
        }
        best.map(|(_, k)| k)
    }
}

/// Levenshtein distance, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
