//! One action for one customer, on its own: what audiences ask ("who is eligible for this
//! action, and how likely are they to respond?"). The same rules and propensities as
//! [`rank`](crate::rank), without the competition between actions: a customer is eligible
//! when the action passes every rule, whatever other actions would rank above it.

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::channel::Channel;
use crate::facts::{Facts, days_before};
use crate::input::{Context, Customer, RankOptions};
use crate::kind::Kind;
use crate::kinds::{Reasons, Subject};
use crate::output::ExclusionRule;
use crate::pick::reason_codes;
use crate::rank::screen;

/// An action of a compiled catalog, as callers targeting one action see it.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo<'a> {
    /// Position in the catalog, for [`Catalog::assess`].
    pub index: usize,
    pub id: &'a str,
    pub name: &'a str,
    pub kind: Kind,
    /// Index into [`Catalog::categories`].
    pub category: Option<usize>,
    pub value: f64,
    pub cost: f64,
    pub weight: f64,
    /// In the catalog's order of preference.
    pub channels: &'a [Channel],
    /// Suppressed after a negative moment and held out from control groups (the catalog's
    /// `promotional` flag, else by kind).
    pub promotional: bool,
    /// What counts as a response to it (`[action.response]`, else the kind's default).
    pub response: lattice_catalog::actions::Response,
    /// Share of customers held out of it (`holdout`), on top of the universal control.
    pub holdout: f64,
}

impl ActionInfo<'_> {
    /// The category whose affinity score is this action's propensity, when it is one: kinds
    /// `early_access`, `insider_preview`, `discovery` and `custom` with a `category`. (Without
    /// a category those kinds use each customer's own strongest category, and the other kinds
    /// have rule-based propensities such as churn × p_alive.)
    pub fn affinity_category(&self) -> Option<usize> {
        match self.kind {
            Kind::EarlyAccess | Kind::InsiderPreview | Kind::Discovery | Kind::Custom => {
                self.category
            }
            _ => None,
        }
    }
}

impl Catalog {
    /// The action with this id.
    pub fn action(&self, id: &str) -> Option<ActionInfo<'_>> {
        self.by_id.get(id).map(|&i| self.action_at(i))
    }

    /// Every action, in catalog order.
    pub fn actions(&self) -> impl Iterator<Item = ActionInfo<'_>> {
        (0..self.actions.len()).map(|i| self.action_at(i))
    }

    fn action_at(&self, i: usize) -> ActionInfo<'_> {
        let a = &self.actions[i];
        ActionInfo {
            index: i,
            id: &a.id,
            name: &a.name,
            kind: a.kind,
            category: a.category,
            value: a.value,
            cost: a.cost,
            weight: a.weight,
            channels: &a.channels,
            promotional: a.promotional,
            response: a.response,
            holdout: a.holdout,
        }
    }

    /// Screens action `index` for one customer with every rule [`rank`](crate::rank) applies
    /// (validity, channel filter, consent, weekly caps, cooldown, suppression after a negative
    /// moment, the kind's rule, the `eligible` expression), ignoring the other actions. `Ok`
    /// holds the propensity ranking would use; `Err` the first rule the action fails.
    ///
    /// # Panics
    /// If `index` is not an action of the catalog.
    pub fn assess(
        &self,
        index: usize,
        customer: &Customer<'_>,
        context: &Context<'_>,
        channel: Option<Channel>,
    ) -> Result<f64, ExclusionRule> {
        let action = &self.actions[index];
        let facts = Facts::new(self, customer, context);
        let subject = Subject {
            catalog: self,
            customer,
            context,
            facts: &facts,
        };
        let options = RankOptions {
            limit: 1,
            channel,
            explain: false,
        };
        let last = last_sent(&action.id, action.cooldown_days, customer, context.now);
        screen(index, action, &subject, last, &options)
            .map(|c| c.propensity)
            .map_err(|m| m.rule())
    }

    /// The reason codes a ranked action `index` would carry for this customer (without
    /// `on_channel_now`).
    pub fn action_reasons(
        &self,
        index: usize,
        customer: &Customer<'_>,
        context: &Context<'_>,
    ) -> Vec<String> {
        let facts = Facts::new(self, customer, context);
        let subject = Subject {
            catalog: self,
            customer,
            context,
            facts: &facts,
        };
        let mut reasons = Reasons::default();
        reason_codes(&self.actions[index], &subject, &mut reasons);
        reasons.to_vec()
    }
}

/// The latest contact with this action within its cooldown (older ones block nothing).
fn last_sent(
    id: &str,
    cooldown_days: Option<u32>,
    customer: &Customer<'_>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let horizon = days_before(now, cooldown_days?);
    customer
        .contacts
        .iter()
        .filter(|c| c.action_id == id && c.at > horizon)
        .map(|c| c.at)
        .max()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use lattice_catalog::actions::ActionCatalog;
    use lattice_catalog::settings::Settings;

    use crate::channel::PerChannel;
    use crate::input::{Contact, Scores};
    use crate::{Context, Customer, RankOptions, rank};

    use super::*;

    const CATALOG: &str = r#"
        [[action]]
        id = "coats"
        name = "Coats"
        kind = "early_access"
        channels = ["email", "push"]
        category = "outerwear"
        value = 60.0
        cost = 0.5
        cooldown_days = 14

        [[action]]
        id = "win_back"
        name = "Win back"
        kind = "win_back"
        channels = ["email"]
        value = 35.0
        cost = 8.0
    "#;

    fn catalog() -> Catalog {
        let actions = ActionCatalog::parse(CATALOG).unwrap();
        let cats = vec!["outerwear".to_string(), "denim".to_string()];
        Catalog::compile(&actions, &Settings::default(), &[], &cats).unwrap()
    }

    #[test]
    fn assess_agrees_with_rank_and_names_the_rule() {
        let c = catalog();
        let now = Utc.with_ymd_and_hms(2025, 6, 2, 12, 0, 0).unwrap();
        let ctx = Context::at(now);
        let info = c.action("coats").unwrap();
        assert_eq!(info.affinity_category(), Some(0));
        assert_eq!(c.action("win_back").unwrap().affinity_category(), None);
        let affinity = [0.4, 0.1];
        let mut customer = Customer {
            id: "x",
            scores: Scores {
                affinity: &affinity,
                ..Scores::default()
            },
            consent: PerChannel {
                email: true,
                ..PerChannel::default()
            },
            ..Customer::default()
        };
        assert_eq!(c.assess(info.index, &customer, &ctx, None), Ok(0.4));
        let ranked = rank(&c, &customer, &ctx, &RankOptions::default());
        assert_eq!(ranked.actions[0].id, "coats");
        assert_eq!(ranked.actions[0].propensity, 0.4);
        assert_eq!(
            c.action_reasons(info.index, &customer, &ctx),
            ["affinity_outerwear=0.40"]
        );
        // Channel filter, consent, cooldown: the first rule failed is reported.
        assert_eq!(
            c.assess(info.index, &customer, &ctx, Some(Channel::Sms)),
            Err(ExclusionRule::ChannelFiltered)
        );
        assert_eq!(
            c.assess(info.index, &customer, &ctx, Some(Channel::Push)),
            Err(ExclusionRule::NoConsent)
        );
        let contacts = [Contact {
            action_id: "coats",
            channel: Channel::Email,
            at: now - chrono::TimeDelta::days(3),
        }];
        customer.contacts = &contacts;
        assert_eq!(
            c.assess(info.index, &customer, &ctx, None),
            Err(ExclusionRule::Cooldown)
        );
        // Not in the customer's top categories: the kind's rule says no.
        let low = [0.01, 0.5];
        customer.contacts = &[];
        customer.scores.affinity = &low;
        assert_eq!(
            c.assess(info.index, &customer, &ctx, None),
            Err(ExclusionRule::NotEligible)
        );
    }
}
