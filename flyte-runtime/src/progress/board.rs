//! What the display reads: the run's fan-outs, heard on the run's sink as
//! they start (only while a display is on), summed per site at each
//! sample. A fan-out whose counts are final is folded into its site and let
//! go, so a run of 1,000 nested maps keeps only the ones still going.

use super::render::{SiteView, View};
use crate::watch::sink::{FanOutStart, Listener, LiveFanOut};
use flyte_core::sync::lock;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use tracing::Span;

/// The fan-outs of one run, for its progress display. The display owns it;
/// the run's sink holds it weakly ([`Board::listener`]), so a run never
/// keeps its fan-outs alive through it.
#[derive(Debug)]
pub(crate) struct Board {
    task: &'static str,
    started: Instant,
    live: Mutex<Vec<(&'static str, Arc<dyn LiveFanOut>)>>,
    /// Sites with their counts from fan-outs already folded.
    sites: Mutex<Vec<SiteView>>,
}

impl Board {
    pub(crate) fn new(task: &'static str) -> Board {
        Board {
            task,
            started: Instant::now(),
            live: Mutex::default(),
            sites: Mutex::default(),
        }
    }

    /// The listener that adds the run's fan-outs to `board` as they start.
    pub(crate) fn listener(board: &Arc<Board>) -> Arc<dyn Listener> {
        Arc::new(Heard(Arc::downgrade(board)))
    }

    /// The sites' counts now. Rates are the display's to fill.
    pub(crate) fn sample(&self, cancelling: bool) -> View {
        let mut folded = lock(&self.sites);
        let mut live = lock(&self.live);
        let mut view = View {
            task: self.task.to_owned(),
            elapsed: self.started.elapsed(),
            sites: folded.clone(),
            cancelling,
        };
        live.retain(|(parent, cell)| {
            let counts = cell.live();
            let Some(task) = counts.task else {
                return true; // no item made yet: nothing to show
            };
            let failure = counts.last_failure.clone();
            let add = |sites: &mut Vec<SiteView>, new_fan_out: bool| {
                let site = site(sites, parent, task);
                site.fan_outs += u64::from(new_fan_out);
                site.expected = counts.expected;
                site.started += counts.started;
                site.succeeded += counts.succeeded;
                site.failed += counts.failed;
                site.cancelled += counts.cancelled;
                site.cached += counts.cached;
                site.replayed += counts.replayed;
                site.retried += counts.retried;
                if failure.is_some() {
                    site.last_failure.clone_from(&failure);
                }
            };
            if counts.done {
                add(&mut folded, true);
            }
            add(&mut view.sites, true);
            // Executing now: in this sample only (a folded site keeps none).
            let shown = site(&mut view.sites, parent, task);
            shown.executing = match (shown.executing, counts.executing) {
                (Some(a), Some(b)) => Some(a + b),
                // Run elsewhere: only how many are in flight is known here.
                _ => None,
            };
            !counts.done
        });
        view
    }
}

/// A board, as its run's sink holds it.
#[derive(Debug)]
struct Heard(Weak<Board>);

impl Listener for Heard {
    fn hears_starts(&self) -> bool {
        true
    }

    fn fan_out_started(&self, start: &FanOutStart<'_>) -> Option<Span> {
        if let Some(board) = self.0.upgrade() {
            start.live.watch(start.expected);
            lock(&board.live).push((start.parent_task, Arc::clone(start.live)));
        }
        None
    }
}

fn site<'a>(sites: &'a mut Vec<SiteView>, parent: &str, task: &str) -> &'a mut SiteView {
    match sites
        .iter()
        .position(|s| s.parent == parent && s.task == task)
    {
        Some(i) => &mut sites[i],
        None => {
            sites.push(SiteView {
                parent: parent.to_owned(),
                task: task.to_owned(),
                executing: Some(0),
                ..SiteView::default()
            });
            sites.last_mut().expect("just pushed")
        }
    }
}
