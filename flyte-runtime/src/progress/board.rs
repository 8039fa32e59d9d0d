//! What the display reads: the run's fan-outs, registered as they start
//! (only while a display is on), summed per site at each sample. A fan-out
//! whose counts are final is folded into its site and let go, so a run of
//! 1,000 nested maps keeps only the ones still going.

use super::render::{SiteView, View};
use crate::state::context::FanOutObserver;
use crate::state::tree::FanOutCell;
use flyte_core::sync::lock;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The fan-outs of one run, for its progress display. The display owns it;
/// the run holds it weakly, so a run never keeps its fan-outs alive.
#[derive(Debug)]
pub(crate) struct Board {
    task: &'static str,
    started: Instant,
    live: Mutex<Vec<(&'static str, Arc<FanOutCell>)>>,
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
            let failure = counts.last_failure.as_ref().and_then(|c| c.error_line());
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
            !counts.done
        });
        view
    }
}

impl FanOutObserver for Board {
    fn add(&self, parent: &'static str, cell: Arc<FanOutCell>) {
        lock(&self.live).push((parent, cell));
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
                ..SiteView::default()
            });
            sites.last_mut().expect("just pushed")
        }
    }
}
