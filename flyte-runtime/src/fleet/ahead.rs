//! Claiming ahead: a worker keeps some actions claimed beyond its free
//! slots, so that a slot that frees up starts the next action at once
//! instead of waiting a claim's round trip. How many comes from how long
//! actions take here: none when they take long (a claim's round trip is
//! nothing beside them), up to a full claim when they take a millisecond.

use flyte_core::queue::{ClaimOf, Claimed};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A worker holds claimed ahead what its slots get through in this long:
/// a few claims' round trips on a loaded database.
const HORIZON: Duration = Duration::from_millis(20);

/// An action claimed ahead that has not started after this long is given
/// back: its worker's slots are held by actions that wait (perhaps for
/// it, a child in the buffer behind its parent), and another worker may
/// have room.
pub(super) const HOLD: Duration = Duration::from_secs(1);

/// How long actions take here: an exponentially weighted mean of their
/// running times, in microseconds (0 until one ended).
#[derive(Debug, Default)]
pub(super) struct Pace(AtomicU64);

impl Pace {
    /// An action ran for `took`.
    pub(super) fn ended(&self, took: Duration) {
        let took = (took.as_micros() as u64).max(1);
        let mean = self.0.load(Ordering::Relaxed);
        // Racy on purpose: a lost update moves an estimate, nothing more.
        let next = if mean == 0 {
            took
        } else {
            (mean * 7 + took) / 8
        };
        self.0.store(next.max(1), Ordering::Relaxed);
    }

    /// How many actions a worker of `slots` holds claimed beyond its free
    /// slots, at most `most`.
    pub(super) fn ahead(&self, slots: usize, most: usize) -> usize {
        let mean = self.0.load(Ordering::Relaxed);
        if mean == 0 {
            return 0;
        }
        let per_slot = HORIZON.as_micros() as u64 / mean;
        (slots as u64).saturating_mul(per_slot).min(most as u64) as usize
    }
}

/// Actions claimed and not started yet, oldest first.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    waiting: VecDeque<(Claimed, Instant)>,
}

impl Ahead {
    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Adds what a claim took.
    pub(super) fn extend(&mut self, claimed: Vec<Claimed>) {
        let now = Instant::now();
        self.waiting.extend(claimed.into_iter().map(|c| (c, now)));
    }

    /// The oldest, to start.
    pub(super) fn next(&mut self) -> Option<Claimed> {
        self.waiting.pop_front().map(|(claimed, _)| claimed)
    }

    /// Takes those that waited longer than [`HOLD`], to give back.
    pub(super) fn overdue(&mut self) -> Vec<ClaimOf> {
        let now = Instant::now();
        let mut overdue = Vec::new();
        while let Some((_, at)) = self.waiting.front() {
            if now.duration_since(*at) < HOLD {
                break;
            }
            if let Some((c, _)) = self.waiting.pop_front() {
                overdue.push((c.run, c.id, c.claim));
            }
        }
        overdue
    }

    /// Drops those of `cancelled` (they were cancelled before they started).
    pub(super) fn drop_cancelled(&mut self, cancelled: &[ClaimOf]) {
        self.waiting.retain(|(c, _)| {
            !cancelled
                .iter()
                .any(|(run, id, claim)| *run == c.run && *id == c.id && *claim == c.claim)
        });
    }

    /// Forgets them all (the worker leaves or rejoins: what its key held
    /// is given back as a whole); how many.
    pub(super) fn clear(&mut self) -> usize {
        let n = self.waiting.len();
        self.waiting.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyte_core::store::RunKey;
    use flyte_core::ActionId;

    fn claimed(id: u128) -> Claimed {
        Claimed {
            run: RunKey(1),
            run_id: "r".into(),
            run_name: None,
            execution: 1,
            id: ActionId(id),
            parent: None,
            index: None,
            task: "t".into(),
            group: None,
            input: Vec::new(),
            retries: None,
            timeout: None,
            no_worker_after: Duration::from_secs(60),
            claim: 1,
        }
    }

    #[test]
    fn nothing_is_claimed_ahead_until_an_action_ended_nor_for_slow_ones() {
        let pace = Pace::default();
        assert_eq!(pace.ahead(8, 256), 0);
        pace.ended(Duration::from_millis(50));
        assert_eq!(
            pace.ahead(8, 256),
            0,
            "50 ms actions: a claim is nothing beside them"
        );
        let fast = Pace::default();
        fast.ended(Duration::from_micros(200));
        assert_eq!(fast.ahead(8, 256), 256, "0.2 ms actions: a full claim");
        let middling = Pace::default();
        middling.ended(Duration::from_millis(5));
        assert_eq!(middling.ahead(8, 256), 32);
    }

    #[test]
    fn the_oldest_start_first_and_cancelled_ones_never() {
        let mut ahead = Ahead::default();
        ahead.extend(vec![claimed(1), claimed(2), claimed(3)]);
        ahead.drop_cancelled(&[(RunKey(1), ActionId(2), 1), (RunKey(1), ActionId(3), 9)]);
        assert_eq!(ahead.next().map(|c| c.id), Some(ActionId(1)));
        assert_eq!(
            ahead.next().map(|c| c.id),
            Some(ActionId(3)),
            "another claim's cancel"
        );
        assert!(ahead.is_empty());
    }

    #[test]
    fn what_waited_past_the_hold_is_given_back() {
        let mut ahead = Ahead::default();
        ahead.extend(vec![claimed(1)]);
        assert!(ahead.overdue().is_empty());
        let Some(long_ago) = ahead.waiting[0].1.checked_sub(HOLD) else {
            return; // a clock younger than the hold: nothing to check
        };
        ahead.waiting[0].1 = long_ago;
        ahead.extend(vec![claimed(2)]);
        assert_eq!(ahead.overdue(), vec![(RunKey(1), ActionId(1), 1)]);
        assert_eq!(ahead.len(), 1);
    }
}
