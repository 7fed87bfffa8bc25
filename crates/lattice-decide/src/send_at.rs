//! When to send: the customer's best local hour-of-week outside quiet hours.
//!
//! Slots are walked in local wall-clock hours, so "Tuesday 10:00" stays 10:00 local across a
//! daylight-saving change; only the chosen slot is turned into an instant. A slot that does not
//! exist (the skipped hour when clocks go forward) is passed over for the next best one; a
//! slot that exists twice (clocks go back) takes the earlier instant.

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::input::{HOURS_PER_WEEK, SendTimeProfile};

/// Local hours during which nothing is sent: `start` inclusive to `end` exclusive, wrapping
/// midnight when `start > end`; none when they are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuietHours {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl QuietHours {
    pub(crate) fn contains(self, hour: u32) -> bool {
        if self.start <= self.end {
            self.start <= hour && hour < self.end
        } else {
            hour >= self.start || hour < self.end
        }
    }
}

/// Hour-of-week of a local time: 0 = Monday 00:00.
fn hour_of_week(t: &NaiveDateTime) -> usize {
    t.weekday().num_days_from_monday() as usize * 24 + t.hour() as usize
}

/// The instant to send at.
///
/// * on the channel now and outside quiet hours: now;
/// * otherwise the slot with the highest profile weight among the next `horizon_hours` local
///   hours outside quiet hours, the earliest on ties; the current hour's slot means now;
/// * without a profile, the first slot outside quiet hours.
pub(crate) fn send_at(
    now: DateTime<Tz>,
    profile: Option<&SendTimeProfile>,
    quiet: QuietHours,
    on_channel_now: bool,
    horizon_hours: u32,
) -> DateTime<Tz> {
    let local = now.naive_local();
    let open_now = !quiet.contains(local.hour());
    if open_now && (on_channel_now || profile.is_none()) {
        return now;
    }
    let start_how = hour_of_week(&local);
    let hour_start = local
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local);
    let tz = now.timezone();
    // A slot that does not exist locally is skipped and the scan rerun; a week holds at most a
    // couple of clock changes.
    let mut skipped: [Option<u32>; 3] = [None; 3];
    for attempt in 0..skipped.len() {
        let k = match best_slot(start_how, profile, quiet, horizon_hours, &skipped) {
            Some(0) | None => return now,
            Some(k) => k,
        };
        let Some(slot) = hour_start.checked_add_signed(TimeDelta::hours(i64::from(k))) else {
            return now;
        };
        match tz.from_local_datetime(&slot).earliest() {
            Some(t) => return t,
            None => skipped[attempt] = Some(k),
        }
    }
    now
}

/// Offset in local hours from the current hour of the best slot, if any is open.
fn best_slot(
    start_how: usize,
    profile: Option<&SendTimeProfile>,
    quiet: QuietHours,
    horizon_hours: u32,
    skipped: &[Option<u32>; 3],
) -> Option<u32> {
    // 0 for an open local hour, -inf for a quiet one: a weight plus its hour's penalty is -inf
    // (or NaN) in quiet hours, and neither ever wins.
    let mut penalty = [0.0f64; 24];
    for (h, v) in penalty.iter_mut().enumerate() {
        if quiet.contains(h as u32) {
            *v = f64::NEG_INFINITY;
        }
    }
    let n = horizon_hours.clamp(24, HOURS_PER_WEEK as u32) as usize;
    // The window is at most a week, so each slot of the week is in it at most once: a skipped
    // offset names one slot.
    let skipped = skipped.map(|k| k.map(|k| (start_how + k as usize) % HOURS_PER_WEEK));
    let open = |slot: usize| penalty[slot % 24] == 0.0 && !skipped.contains(&Some(slot));
    // The window as at most two runs of the week: to its end, and on from its start.
    let first_run = n.min(HOURS_PER_WEEK - start_how);
    let runs = [(start_how, 0, first_run), (0, first_run, n - first_run)];
    let Some(p) = profile else {
        // A day always has an open hour.
        return earliest(&runs, open);
    };
    // A skipped slot (a local hour that does not exist, a few a year) weighs -inf, in a copy.
    let with_skips;
    let p = if skipped.iter().any(Option::is_some) {
        let mut q = *p;
        for &slot in skipped.iter().flatten() {
            q[slot] = f64::NEG_INFINITY;
        }
        with_skips = q;
        &with_skips
    } else {
        p
    };
    // Two passes, so that no slot waits on the one before it: the highest open weight (four
    // running maxima, a day at a time so the penalties line up), then the earliest open slot
    // that holds it. NaN never wins (`>` and `==` are false).
    let mut lanes = [f64::NEG_INFINITY; 4];
    for &(from, _, len) in &runs {
        let (mut slot, end) = (from, from + len);
        while slot < end {
            let hour = slot % 24;
            let day_len = (24 - hour).min(end - slot);
            let (w, q) = (&p[slot..slot + day_len], &penalty[hour..hour + day_len]);
            let (w4, q4) = (w.chunks_exact(4), q.chunks_exact(4));
            let (w_rest, q_rest) = (w4.remainder(), q4.remainder());
            for (w, q) in w4.zip(q4) {
                for l in 0..4 {
                    let v = w[l] + q[l];
                    if v > lanes[l] {
                        lanes[l] = v;
                    }
                }
            }
            for (l, (&w, &q)) in w_rest.iter().zip(q_rest).enumerate() {
                if w + q > lanes[l] {
                    lanes[l] = w + q;
                }
            }
            slot += day_len;
        }
    }
    let top = lanes.into_iter().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        // No weight above -inf (or only NaNs): the profile says nothing, the first open hour.
        return earliest(&runs, open);
    }
    earliest(&runs, |slot| p[slot] + penalty[slot % 24] == top)
}

/// Offset of the earliest slot of `runs` (`(first slot, its offset, length)`) that is `ok`.
fn earliest(runs: &[(usize, usize, usize)], ok: impl Fn(usize) -> bool) -> Option<u32> {
    runs.iter()
        .find_map(|&(from, k0, len)| (from..from + len).position(&ok).map(|j| (k0 + j) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    const NIGHT: QuietHours = QuietHours { start: 21, end: 8 };

    fn at(tz: Tz, rfc3339: &str) -> DateTime<Tz> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
            .with_timezone(&tz)
    }

    fn peak(how: usize) -> SendTimeProfile {
        let mut p = [1.0; HOURS_PER_WEEK];
        p[how] = 10.0;
        p
    }

    /// The slot scan written the plain way: one slot at a time, wrapping at the end of the week.
    fn best_slot_reference(
        start_how: usize,
        profile: Option<&SendTimeProfile>,
        quiet: QuietHours,
        horizon_hours: u32,
        skipped: &[Option<u32>],
    ) -> Option<u32> {
        let (mut first_open, mut best, mut best_weight) = (None, None, f64::NEG_INFINITY);
        let (mut how, mut hour) = (start_how, start_how as u32 % 24);
        for k in 0..horizon_hours.clamp(24, HOURS_PER_WEEK as u32) {
            if !quiet.contains(hour) && !skipped.contains(&Some(k)) {
                let Some(p) = profile else {
                    return Some(k);
                };
                first_open.get_or_insert(k);
                if p[how] > best_weight {
                    best = Some(k);
                    best_weight = p[how];
                }
            }
            how = (how + 1) % HOURS_PER_WEEK;
            hour = (hour + 1) % 24;
        }
        best.or(first_open)
    }

    #[test]
    fn the_slot_scan_matches_the_plain_one() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for _ in 0..3000 {
            // Few distinct weights, so ties are common; signed zeros, -inf and NaN among
            // them; some all-NaN and all -inf profiles.
            let mut p = [0.0; HOURS_PER_WEEK];
            let all = match next(10) {
                0 => Some(f64::NAN),
                1 => Some(f64::NEG_INFINITY),
                _ => None,
            };
            for v in &mut p {
                *v = all.unwrap_or(match next(16) {
                    0 => f64::NAN,
                    1 => -0.0,
                    2 => f64::NEG_INFINITY,
                    k => (k % 4) as f64,
                });
            }
            let quiet = QuietHours {
                start: next(24) as u32,
                end: next(24) as u32,
            };
            let start = next(HOURS_PER_WEEK as u64) as usize;
            let horizon = [1, 24, 30, 100, 168, 500][next(6) as usize];
            let mut skipped = [None; 3];
            for s in skipped.iter_mut().take(next(3) as usize) {
                *s = Some(next(48) as u32);
            }
            for profile in [Some(&p), None] {
                assert_eq!(
                    best_slot(start, profile, quiet, horizon, &skipped),
                    best_slot_reference(start, profile, quiet, horizon, &skipped),
                    "start {start}, quiet {quiet:?}, horizon {horizon}, skipped {skipped:?}"
                );
            }
        }
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        assert!(NIGHT.contains(21) && NIGHT.contains(0) && NIGHT.contains(7));
        assert!(!NIGHT.contains(8) && !NIGHT.contains(20));
        let day = QuietHours { start: 12, end: 14 };
        assert!(day.contains(12) && day.contains(13) && !day.contains(14));
        assert!(!QuietHours { start: 5, end: 5 }.contains(5));
    }

    #[test]
    fn now_when_on_the_channel_outside_quiet_hours() {
        let tz = chrono_tz::Europe::Paris;
        let now = at(tz, "2025-06-02T10:30:00+02:00");
        assert_eq!(send_at(now, Some(&peak(40)), NIGHT, true, 168), now);
        // At 23:00 local even a customer on the channel waits for the morning.
        let late = at(tz, "2025-06-02T23:00:00+02:00");
        let t = send_at(late, None, NIGHT, true, 168);
        assert_eq!(t.to_rfc3339(), "2025-06-03T08:00:00+02:00");
    }

    #[test]
    fn best_hour_of_week_in_local_time() {
        let tz = chrono_tz::Asia::Kolkata; // +05:30: local hours are not UTC hours
        let now = at(tz, "2025-06-02T10:30:00+05:30"); // Monday
        // Wednesday 19:00 = 2 * 24 + 19.
        let t = send_at(now, Some(&peak(67)), NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-06-04T19:00:00+05:30");
    }

    #[test]
    fn a_peak_in_quiet_hours_is_never_chosen() {
        let tz = chrono_tz::America::New_York;
        let now = at(tz, "2025-06-02T09:00:00-04:00");
        let mut p = peak(23); // Monday 23:00: quiet
        p[10] = 5.0; // Monday 10:00
        let t = send_at(now, Some(&p), NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-06-02T10:00:00-04:00");
    }

    #[test]
    fn across_the_spring_forward_change() {
        let tz = chrono_tz::America::New_York;
        // Sunday 9 March 2025, 00:30 EST; clocks jump from 02:00 to 03:00 EDT.
        let now = at(tz, "2025-03-09T00:30:00-05:00");
        let sunday_9am = 6 * 24 + 9;
        let t = send_at(now, Some(&peak(sunday_9am)), NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-03-09T09:00:00-04:00");
        assert_eq!(
            t.with_timezone(&Utc).to_rfc3339(),
            "2025-03-09T13:00:00+00:00"
        );
        // The 02:00 slot does not exist that day: the next best one (03:00 EDT) is taken.
        let none = QuietHours { start: 0, end: 0 };
        let mut p = peak(6 * 24 + 2);
        p[6 * 24 + 3] = 5.0;
        let t = send_at(now, Some(&p), none, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-03-09T03:00:00-04:00");
    }

    #[test]
    fn across_the_fall_back_change() {
        let tz = chrono_tz::Europe::London;
        // Saturday 25 October 2025, 22:00 BST; clocks go back on Sunday at 02:00.
        let now = at(tz, "2025-10-25T22:00:00+01:00");
        let sunday_8am = 6 * 24 + 8;
        let t = send_at(now, None, NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-10-26T08:00:00+00:00");
        let t = send_at(now, Some(&peak(sunday_8am + 2)), NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-10-26T10:00:00+00:00");
        // The doubled 01:00 hour takes its first instant.
        let none = QuietHours { start: 0, end: 0 };
        let t = send_at(now, Some(&peak(6 * 24 + 1)), none, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-10-26T01:00:00+01:00");
    }

    #[test]
    fn a_profile_without_information_falls_back_to_the_first_open_hour() {
        let tz = chrono_tz::UTC;
        let now = at(tz, "2025-06-02T23:30:00+00:00");
        let t = send_at(now, Some(&[f64::NAN; HOURS_PER_WEEK]), NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-06-03T08:00:00+00:00");
    }

    #[test]
    fn urgent_horizon_limits_the_wait() {
        let tz = chrono_tz::UTC;
        let now = at(tz, "2025-06-02T09:00:00+00:00"); // Monday
        let friday_noon = 4 * 24 + 12;
        let mut p = peak(friday_noon);
        p[15] = 2.0; // Monday 15:00
        let t = send_at(now, Some(&p), NIGHT, false, 24);
        assert_eq!(t.to_rfc3339(), "2025-06-02T15:00:00+00:00");
        let t = send_at(now, Some(&p), NIGHT, false, 168);
        assert_eq!(t.to_rfc3339(), "2025-06-06T12:00:00+00:00");
    }
}
