//! Rows for a timeline: each action in the first row free when it is
//! queued, so no two actions (their waits included) overlap in a row (what
//! a Gantt chart and Perfetto's complete events need).

use crate::digest::Row;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// `rows` sorted by when they were queued, each with its lane (from when
/// it was queued to its end); and how many lanes there are.
pub fn by_start(rows: &[Row]) -> (Vec<(&Row, u32)>, u32) {
    let mut order: Vec<&Row> = rows.iter().collect();
    order.sort_by_key(|r| (r.queued_us, r.end_us));
    // Lanes in use with the end of their last action, earliest end first;
    // lanes free again, lowest first.
    let mut busy: BinaryHeap<Reverse<(i64, u32)>> = BinaryHeap::new();
    let mut free: BinaryHeap<Reverse<u32>> = BinaryHeap::new();
    let mut lanes = 0u32;
    let placed = order
        .into_iter()
        .map(|row| {
            while let Some(&Reverse((end, lane))) = busy.peek() {
                if end > row.queued_us {
                    break;
                }
                busy.pop();
                free.push(Reverse(lane));
            }
            let lane = free.pop().map_or_else(
                || {
                    lanes += 1;
                    lanes - 1
                },
                |Reverse(lane)| lane,
            );
            // A zero-length action still takes its lane for the millisecond it is drawn in.
            busy.push(Reverse((row.end_us.max(row.start_us + 1_000), lane)));
            (row, lane)
        })
        .collect();
    (placed, lanes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyte_core::record::{ActionStatus, Origin};
    use flyte_core::ActionId;

    /// A row queued at `queued_ms`, executing from `start_ms` to `end_ms`.
    fn waited(queued_ms: i64, start_ms: i64, end_ms: i64) -> Row {
        Row {
            id: ActionId(start_ms as u128),
            parent: None,
            item: None,
            task: 0,
            status: ActionStatus::Succeeded,
            origin: Origin::Executed,
            attempts: 1,
            queued_us: queued_ms * 1_000,
            start_us: start_ms * 1_000,
            end_us: end_ms * 1_000,
            error: 0,
        }
    }

    fn row(start_ms: i64, end_ms: i64) -> Row {
        waited(start_ms, start_ms, end_ms)
    }

    #[test]
    fn overlapping_actions_get_their_own_lanes_and_free_lanes_are_reused() {
        let rows = [row(0, 10), row(5, 8), row(8, 20), row(10, 12), row(30, 30)];
        let (placed, lanes) = by_start(&rows);
        let lanes_of: Vec<(i64, u32)> = placed
            .iter()
            .map(|(r, l)| (r.start_us / 1_000, *l))
            .collect();
        assert_eq!(lanes_of, [(0, 0), (5, 1), (8, 1), (10, 0), (30, 0)]);
        assert_eq!(lanes, 2);
    }

    #[test]
    fn an_action_takes_its_lane_from_when_it_was_queued() {
        // The second waited from 2 ms for the first's slot: its wait
        // overlaps the first, so it needs a lane of its own.
        let rows = [row(0, 10), waited(2, 10, 20)];
        let (placed, lanes) = by_start(&rows);
        let lanes_of: Vec<u32> = placed.iter().map(|(_, l)| *l).collect();
        assert_eq!(lanes_of, [0, 1]);
        assert_eq!(lanes, 2);
    }
}
