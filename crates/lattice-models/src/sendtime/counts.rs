//! Engagement counts: per customer, channel and hour of week, in a sparse flat layout.

use serde::{Deserialize, Serialize};

use super::{Channel, HOURS_PER_WEEK, N_CHANNELS, Result, SendTimeError};

/// The hour of week of a day of week (0 = Monday) and an hour of day, `None` if out of range.
pub fn hour_of_week(day_from_monday: u32, hour: u32) -> Option<u8> {
    (day_from_monday < 7 && hour < 24).then(|| (day_from_monday * 24 + hour) as u8)
}

/// The hour of week of a local wall-clock time given as seconds since 1970-01-01 00:00 *local*
/// (e.g. chrono's `local_naive_datetime.and_utc().timestamp()`).
pub fn hour_of_week_from_local_seconds(local_seconds: i64) -> u8 {
    let days = local_seconds.div_euclid(86_400);
    let hour = local_seconds.rem_euclid(86_400) / 3_600;
    // 1970-01-01 was a Thursday, day 3 counting from Monday = 0.
    let day = (days + 3).rem_euclid(7);
    (day * 24 + hour) as u8
}

/// One engagement, already in the customer's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Engagement {
    /// Dense customer index, below the `n_customers` the counts are built for.
    pub customer: u32,
    pub channel: Channel,
    /// Hour of week, 0..168, 0 = Monday 00:00 local.
    pub how: u8,
}

/// Per customer and channel, sparse `(hour_of_week, count)` lists sorted by hour, in one flat
/// array (CSR layout: one allocation for all customers instead of one per customer-channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCounts")]
pub struct SendTimeCounts {
    n_customers: usize,
    /// `offsets[customer * 4 + channel .. +1]` delimits that list in `entries`.
    offsets: Vec<u32>,
    entries: Vec<(u8, u16)>,
}

#[derive(Deserialize)]
struct RawCounts {
    n_customers: usize,
    offsets: Vec<u32>,
    entries: Vec<(u8, u16)>,
}

impl TryFrom<RawCounts> for SendTimeCounts {
    type Error = SendTimeError;

    fn try_from(raw: RawCounts) -> Result<Self> {
        let bad = |problem: String| SendTimeError::Invalid {
            what: "counts",
            problem,
        };
        let expected = raw
            .n_customers
            .checked_mul(N_CHANNELS)
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| bad(format!("n_customers {} is too large", raw.n_customers)))?;
        if raw.offsets.len() != expected {
            return Err(bad(format!(
                "{} offsets for {} customers, expected {expected}",
                raw.offsets.len(),
                raw.n_customers
            )));
        }
        if raw.offsets.first() != Some(&0)
            || raw.offsets.last().map(|&o| o as usize) != Some(raw.entries.len())
        {
            return Err(bad(
                "offsets must start at 0 and end at the number of entries".into(),
            ));
        }
        for (key, w) in raw.offsets.windows(2).enumerate() {
            if w[0] > w[1] {
                return Err(bad(format!("offsets decrease at list {key}")));
            }
            let list = &raw.entries[w[0] as usize..w[1] as usize];
            for (i, &(how, count)) in list.iter().enumerate() {
                if usize::from(how) >= HOURS_PER_WEEK || count == 0 {
                    return Err(bad(format!(
                        "customer {} {}: entry ({how}, {count}) needs hour < 168 and count > 0",
                        key / N_CHANNELS,
                        Channel::ALL[key % N_CHANNELS]
                    )));
                }
                if i > 0 && list[i - 1].0 >= how {
                    return Err(bad(format!(
                        "customer {} {}: hours not strictly increasing",
                        key / N_CHANNELS,
                        Channel::ALL[key % N_CHANNELS]
                    )));
                }
            }
        }
        Ok(SendTimeCounts {
            n_customers: raw.n_customers,
            offsets: raw.offsets,
            entries: raw.entries,
        })
    }
}

impl SendTimeCounts {
    /// Counts engagements per customer, channel and hour of week. Channel engagements are also
    /// counted under `Any`. A count that would pass 65,535 in one customer's slot stays there
    /// (no human engages that often in one hour of the week; it is a bot or a replay).
    pub fn from_engagements(n_customers: usize, engagements: &[Engagement]) -> Result<Self> {
        let n_keys = n_customers
            .checked_mul(N_CHANNELS)
            .ok_or_else(|| SendTimeError::Invalid {
                what: "counts",
                problem: format!("n_customers {n_customers} is too large"),
            })?;
        for (index, e) in engagements.iter().enumerate() {
            if e.customer as usize >= n_customers {
                return Err(SendTimeError::InvalidEngagement {
                    index,
                    problem: format!(
                        "customer {} is not below n_customers {n_customers}",
                        e.customer
                    ),
                });
            }
            if usize::from(e.how) >= HOURS_PER_WEEK {
                return Err(SendTimeError::InvalidEngagement {
                    index,
                    problem: format!("hour of week {} is not below 168", e.how),
                });
            }
        }
        // Offsets are u32 to halve their memory; at most two entries per engagement.
        if engagements.len() > (u32::MAX / 2) as usize {
            return Err(SendTimeError::Invalid {
                what: "counts",
                problem: format!(
                    "{} engagements is more than one count table holds; split customers",
                    engagements.len()
                ),
            });
        }
        let key = |e: &Engagement, ch: Channel| e.customer as usize * N_CHANNELS + ch.index();

        // Counting sort of the hours by (customer, channel).
        let mut start = vec![0u32; n_keys + 1];
        for e in engagements {
            start[key(e, e.channel) + 1] += 1;
            if e.channel != Channel::Any {
                start[key(e, Channel::Any) + 1] += 1;
            }
        }
        for k in 0..n_keys {
            start[k + 1] += start[k];
        }
        let mut hours = vec![0u8; start[n_keys] as usize];
        let mut cursor = start.clone();
        for e in engagements {
            let mut put = |k: usize| {
                hours[cursor[k] as usize] = e.how;
                cursor[k] += 1;
            };
            put(key(e, e.channel));
            if e.channel != Channel::Any {
                put(key(e, Channel::Any));
            }
        }
        drop(cursor);

        // Run-length encode each list; `start` becomes the output offsets in place (entry k+1
        // is read as the input end before it is overwritten with the output end).
        let mut entries: Vec<(u8, u16)> = Vec::with_capacity(hours.len() / 2 + 1);
        let mut input_start = 0usize;
        for k in 0..n_keys {
            let input_end = start[k + 1] as usize;
            let list = &mut hours[input_start..input_end];
            list.sort_unstable();
            let list_start = entries.len();
            for &h in list.iter() {
                match entries[list_start..].last_mut() {
                    Some((last, count)) if *last == h => *count = count.saturating_add(1),
                    _ => entries.push((h, 1)),
                }
            }
            input_start = input_end;
            start[k + 1] = entries.len() as u32;
        }
        entries.shrink_to_fit();
        Ok(SendTimeCounts {
            n_customers,
            offsets: start,
            entries,
        })
    }

    pub fn n_customers(&self) -> usize {
        self.n_customers
    }

    /// One customer's counts, `None` if `customer` is not below [`Self::n_customers`].
    pub fn customer(&self, customer: usize) -> Option<CustomerCounts<'_>> {
        if customer >= self.n_customers {
            return None;
        }
        let list = |ch: usize| {
            let k = customer * N_CHANNELS + ch;
            &self.entries[self.offsets[k] as usize..self.offsets[k + 1] as usize]
        };
        Some(CustomerCounts {
            per_channel: [list(0), list(1), list(2), list(3)],
        })
    }

    /// Total engagements per channel and hour of week over all customers.
    pub fn totals(&self) -> [[u64; HOURS_PER_WEEK]; N_CHANNELS] {
        let mut totals = [[0u64; HOURS_PER_WEEK]; N_CHANNELS];
        for (k, w) in self.offsets.windows(2).enumerate() {
            let t = &mut totals[k % N_CHANNELS];
            for &(how, count) in &self.entries[w[0] as usize..w[1] as usize] {
                t[usize::from(how)] += u64::from(count);
            }
        }
        totals
    }
}

/// One customer's sparse counts per channel (indexed like [`Channel::ALL`]), borrowed from a
/// [`SendTimeCounts`] or from the caller's own storage (e.g. online state in the server).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CustomerCounts<'a> {
    per_channel: [&'a [(u8, u16)]; N_CHANNELS],
}

impl<'a> CustomerCounts<'a> {
    /// A customer with no engagements.
    pub const EMPTY: CustomerCounts<'static> = CustomerCounts {
        per_channel: [&[]; N_CHANNELS],
    };

    /// Counts per channel in [`Channel::ALL`] order. Lists need not be sorted; a repeated hour
    /// adds up. As in [`SendTimeCounts`], the `Any` list should include the channel engagements.
    pub fn new(per_channel: [&'a [(u8, u16)]; N_CHANNELS]) -> Result<Self> {
        for (ch, list) in Channel::ALL.iter().zip(per_channel) {
            if let Some(&(how, _)) = list.iter().find(|e| usize::from(e.0) >= HOURS_PER_WEEK) {
                return Err(SendTimeError::Invalid {
                    what: "customer counts",
                    problem: format!("{ch}: hour of week {how} is not below 168"),
                });
            }
        }
        Ok(CustomerCounts { per_channel })
    }

    pub fn channel(&self, channel: Channel) -> &'a [(u8, u16)] {
        self.per_channel[channel.index()]
    }

    /// Number of engagements on a channel.
    pub fn n_events(&self, channel: Channel) -> u32 {
        // Saturating: caller-built lists may be long.
        self.channel(channel)
            .iter()
            .fold(0u32, |n, &(_, c)| n.saturating_add(u32::from(c)))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// An engagement, for tests here and in the sibling modules.
    pub(in crate::sendtime) fn e(customer: u32, channel: Channel, how: u8) -> Engagement {
        Engagement {
            customer,
            channel,
            how,
        }
    }

    #[test]
    fn counts_are_sparse_sorted_and_channel_events_count_under_any() {
        let evs = [
            e(1, Channel::Email, 50),
            e(1, Channel::Email, 3),
            e(1, Channel::Email, 50),
            e(1, Channel::Any, 3),
            e(0, Channel::Push, 167),
        ];
        let counts = SendTimeCounts::from_engagements(3, &evs).unwrap();
        let c1 = counts.customer(1).unwrap();
        assert_eq!(c1.channel(Channel::Email), &[(3, 1), (50, 2)]);
        assert_eq!(c1.channel(Channel::Any), &[(3, 2), (50, 2)]);
        assert!(c1.channel(Channel::Sms).is_empty());
        let c0 = counts.customer(0).unwrap();
        assert_eq!(c0.channel(Channel::Push), &[(167, 1)]);
        assert_eq!(c0.channel(Channel::Any), &[(167, 1)]);
        assert_eq!(counts.customer(2).unwrap(), CustomerCounts::EMPTY);
        assert!(counts.customer(3).is_none());
        assert_eq!(counts.totals()[Channel::Any.index()].iter().sum::<u64>(), 5);
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let evs = vec![e(0, Channel::Any, 7); 70_000];
        let counts = SendTimeCounts::from_engagements(1, &evs).unwrap();
        assert_eq!(
            counts.customer(0).unwrap().channel(Channel::Any),
            &[(7, u16::MAX)]
        );
    }
}
