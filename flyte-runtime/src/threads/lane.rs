//! A lane: where one `map`'s sync items run, on the sync pool's threads.
//!
//! At most `limit` (the map's concurrency) run at once; the items the map
//! started ahead wait here, and a thread that finishes an item takes the
//! next waiting one itself, as rayon's threads do, with no round trip
//! through the map's task on a tokio worker. A thread whose item failed does
//! not: the map decides first (a fail-fast map cancels what waits), then
//! [`Lane::resume`]s the lane. The map hears of the failure before the
//! thread has left the lane, so its resume may come first: the lane keeps
//! it, and the thread goes on instead of stopping (a lost resume stalled
//! the lane for good). Only the item's last failure stops a thread: a
//! failed attempt that is retried is not the map's to decide, and its
//! retry queues in the lane like any item.
//!
//! Results go back through a [`Handoff`]. Waking the map's task for each
//! one would cost a system call and a context switch per item, taken from
//! the cores the items run on; while enough items wait in the lane, the
//! wake-ups are held back and given in a batch when the lane runs low,
//! when an item fails, or when it goes idle. A held-back result is already
//! in its handoff: a time limit that expires meanwhile still finds it.

use crate::threads::sync_pool::submit;
use flyte_core::sync::lock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// A lane's job: returns whether the lane may go on to its next job on
/// this thread (false when the item failed).
pub(crate) type LaneJob = Box<dyn FnOnce() -> bool + Send>;

/// The sync items of one map.
#[derive(Debug)]
pub(crate) struct Lane {
    limit: usize,
    /// Wake-ups are held back while more than this many items wait.
    low_water: usize,
    state: Mutex<LaneState>,
}

#[derive(Default)]
struct LaneState {
    running: usize,
    waiting: VecDeque<LaneJob>,
    held_wakers: Vec<Waker>,
    /// Resumes that came while every thread of the lane was busy, perhaps
    /// with the failed job they answer: the next thread to stop goes on.
    early_resumes: usize,
}

impl std::fmt::Debug for LaneState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneState")
            .field("running", &self.running)
            .field("waiting", &self.waiting.len())
            .field("held_wakers", &self.held_wakers.len())
            .field("early_resumes", &self.early_resumes)
            .finish()
    }
}

impl Lane {
    /// A lane running at most `limit` items at once.
    pub(crate) fn new(limit: usize) -> Arc<Lane> {
        let limit = limit.max(1);
        Arc::new(Lane {
            limit,
            low_water: limit.div_ceil(2),
            state: Mutex::new(LaneState::default()),
        })
    }

    /// Runs `job` on a pool thread now if fewer than the limit run, else
    /// after one of them, on the thread that ran it.
    ///
    /// # Errors
    ///
    /// When no pool thread can be had (see `sync_pool::submit`).
    pub(crate) fn submit(self: &Arc<Self>, job: LaneJob) -> std::io::Result<()> {
        let mut state = lock(&self.state);
        if state.running >= self.limit {
            state.waiting.push_back(job);
            return Ok(());
        }
        state.running += 1;
        drop(state);
        self.start(job)
    }

    /// Starts waiting jobs on pool threads, up to the limit: after a failed
    /// job left its thread without taking the next one.
    pub(crate) fn resume(self: &Arc<Self>) {
        loop {
            let mut state = lock(&self.state);
            if state.running >= self.limit {
                // The failed job's thread may not have stopped yet: kept for
                // it (at most one per thread; an extra one only lets a later
                // failure go on, which the map's cancel then catches up with).
                state.early_resumes = (state.early_resumes + 1).min(self.limit);
                return;
            }
            let Some(job) = state.waiting.pop_front() else {
                return;
            };
            state.running += 1;
            drop(state);
            if self.start(job).is_err() {
                return; // no thread to be had: the job's caller sees it dropped
            }
        }
    }

    /// Runs `job`, then, while jobs succeed, the waiting ones, on one thread.
    fn start(self: &Arc<Self>, job: LaneJob) -> std::io::Result<()> {
        let lane = Arc::clone(self);
        submit(Box::new(move || lane.run(job))).inspect_err(|_| lock(&self.state).running -= 1)
    }

    fn run(&self, mut job: LaneJob) {
        loop {
            let mut go_on = job();
            let mut state = lock(&self.state);
            if !go_on && state.early_resumes > 0 {
                state.early_resumes -= 1;
                go_on = true; // the map resumed before this thread stopped
            }
            match state.waiting.pop_front() {
                Some(next) if go_on => job = next,
                other => {
                    if let Some(next) = other {
                        state.waiting.push_front(next);
                    }
                    state.running -= 1;
                    // Going idle or stopping: whoever waits must hear now.
                    wake_held(state);
                    return;
                }
            }
        }
    }

    /// Wakes `waker` (whose handoff now holds a result) now, or later with
    /// others while plenty of items wait; `urgent` (a failure) wakes now.
    fn wake(&self, waker: Waker, urgent: bool) {
        let mut state = lock(&self.state);
        if !urgent && state.waiting.len() > self.low_water {
            state.held_wakers.push(waker);
            return;
        }
        wake_held(state);
        waker.wake();
    }
}

/// Wakes the wake-ups held back, outside the lane's lock.
fn wake_held(mut state: MutexGuard<'_, LaneState>) {
    let held = std::mem::take(&mut state.held_wakers);
    drop(state);
    held.into_iter().for_each(Waker::wake);
}

/// A one-shot channel from a lane job to the item awaiting it, whose
/// wake-up goes through the lane (see the module docs).
pub(crate) fn handoff<R>(lane: &Arc<Lane>) -> (HandoffSender<R>, HandoffReceiver<R>) {
    let shared = Arc::new(Handoff {
        lane: Arc::clone(lane),
        state: Mutex::new(HandoffState {
            value: None,
            waker: None,
            sender_gone: false,
            receiver_gone: false,
        }),
    });
    (HandoffSender(Arc::clone(&shared)), HandoffReceiver(shared))
}

struct Handoff<R> {
    lane: Arc<Lane>,
    state: Mutex<HandoffState<R>>,
}

struct HandoffState<R> {
    value: Option<R>,
    waker: Option<Waker>,
    sender_gone: bool,
    receiver_gone: bool,
}

/// The job's end.
pub(crate) struct HandoffSender<R>(Arc<Handoff<R>>);

/// The awaiting item's end: a future of the value, or of `Err(())` when
/// the job was dropped without sending.
pub(crate) struct HandoffReceiver<R>(Arc<Handoff<R>>);

impl<R> HandoffSender<R> {
    /// Whether the item stopped waiting (cancelled, timed out).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.0.state).receiver_gone
    }

    /// Hands `value` over; `urgent` wakes the item at once.
    pub(crate) fn send(self, value: R, urgent: bool) {
        let waker = {
            let mut state = lock(&self.0.state);
            state.value = Some(value);
            state.waker.take()
        };
        if let Some(waker) = waker {
            self.0.lane.wake(waker, urgent);
        }
    }
}

impl<R> Drop for HandoffSender<R> {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.0.state);
            state.sender_gone = true;
            state.waker.take()
        };
        // Sent values were woken for in `send`; a job dropped unrun wakes
        // its item now, so it does not wait forever.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<R> std::future::Future for HandoffReceiver<R> {
    type Output = Result<R, ()>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.0.state);
        if let Some(value) = state.value.take() {
            return Poll::Ready(Ok(value));
        }
        if state.sender_gone {
            return Poll::Ready(Err(()));
        }
        match &state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => state.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<R> Drop for HandoffReceiver<R> {
    fn drop(&mut self) {
        lock(&self.0.state).receiver_gone = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_lane_runs_at_most_its_limit_at_once_and_every_job() {
        let lane = Lane::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        for _ in 0..50 {
            let (running, peak, tx) = (Arc::clone(&running), Arc::clone(&peak), tx.clone());
            lane.submit(Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                tx.send(()).unwrap();
                true
            }))
            .unwrap();
        }
        for _ in 0..50 {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a lane job was lost");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        // The last job's thread leaves the lane just after it reports.
        for _ in 0..1_000 {
            if lock(&lane.state).running == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(lock(&lane.state).running, 0);
    }

    /// Submits a job that runs `first`, then reports "failed" and fails,
    /// and one behind it that reports "next"; returns their reports.
    fn a_failure_and_the_next_job(
        lane: &Arc<Lane>,
        first: impl FnOnce() + Send + 'static,
    ) -> mpsc::Receiver<&'static str> {
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        lane.submit(Box::new(move || {
            first();
            tx.send("failed").unwrap();
            false
        }))
        .unwrap();
        lane.submit(Box::new(move || {
            tx2.send("next").unwrap();
            true
        }))
        .unwrap();
        rx
    }

    #[test]
    fn a_failed_job_leaves_the_next_one_waiting_until_resume() {
        let lane = Lane::new(1);
        // The sleep lets the next job queue behind the failing one.
        let reports =
            a_failure_and_the_next_job(&lane, || std::thread::sleep(Duration::from_millis(20)));
        assert_eq!(
            reports.recv_timeout(Duration::from_secs(10)).unwrap(),
            "failed"
        );
        assert!(
            reports.recv_timeout(Duration::from_millis(100)).is_err(),
            "ran without resume"
        );
        lane.resume();
        assert_eq!(
            reports.recv_timeout(Duration::from_secs(10)).unwrap(),
            "next"
        );
    }

    #[test]
    fn a_resume_that_comes_before_the_failed_job_has_stopped_is_kept() {
        let lane = Lane::new(1);
        let (queued, wait_queued) = mpsc::channel::<()>();
        let own = Arc::clone(&lane);
        let reports = a_failure_and_the_next_job(&lane, move || {
            // Once the next job waits in the lane, the map hears of the
            // failure and resumes the lane before this job returns.
            wait_queued.recv().unwrap();
            own.resume();
        });
        queued.send(()).unwrap();
        assert_eq!(
            reports.recv_timeout(Duration::from_secs(10)).unwrap(),
            "failed"
        );
        assert_eq!(
            reports.recv_timeout(Duration::from_secs(10)),
            Ok("next"),
            "the early resume was lost: the lane stalled"
        );
    }

    #[tokio::test]
    async fn every_handoff_is_woken_whether_held_back_or_not() {
        let lane = Lane::new(1);
        let mut receivers = Vec::new();
        for i in 0..20 {
            let (send, receive) = handoff::<u32>(&lane);
            receivers.push(receive);
            lane.submit(Box::new(move || {
                send.send(i, false);
                true
            }))
            .unwrap();
        }
        for (i, receive) in receivers.into_iter().enumerate() {
            let got = tokio::time::timeout(Duration::from_secs(10), receive).await;
            assert_eq!(got.expect("a held-back wake-up was lost"), Ok(i as u32));
        }
    }

    #[tokio::test]
    async fn a_dropped_sender_ends_the_wait() {
        let lane = Lane::new(1);
        let (send, receive) = handoff::<u32>(&lane);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            drop(send);
        });
        assert_eq!(receive.await, Err(()));
    }
}
