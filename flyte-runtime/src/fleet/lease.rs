//! A worker's lease: renewed by a task of its own, seen through its
//! [`LeaseClock`].

use flyte_core::queue::{LeaseClock, WorkQueue, WorkerInfo, WorkerKey, HEARTBEAT, LEASE};
use flyte_core::store::StoreError;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// A worker's lease under one key, renewed every [`HEARTBEAT`] by a task
/// of its own, so that nothing the worker waits for (a slow claim, a busy
/// runtime) can delay it. `clock` says whether it still holds (bodies
/// claimed under it begin only while it does); `lost` resolves when the
/// fleet took the worker for dead. Dropping it stops the renewals.
pub(super) struct Lease {
    pub(super) key: WorkerKey,
    pub(super) clock: Arc<LeaseClock>,
    renewals: JoinHandle<()>,
    pub(super) lost: oneshot::Receiver<()>,
}

impl Lease {
    /// Enters the worker in the fleet, with a fresh lease that is kept.
    pub(super) async fn register(
        queue: &Arc<dyn WorkQueue>,
        info: &WorkerInfo,
    ) -> Result<Lease, StoreError> {
        let sent_at = Instant::now();
        let key = queue.register(info.clone()).await?;
        let clock = Arc::new(LeaseClock::granted(sent_at));
        let (tell, lost) = oneshot::channel();
        let renewals = tokio::spawn(renew(Arc::clone(queue), key, Arc::clone(&clock), tell));
        Ok(Lease {
            key,
            clock,
            renewals,
            lost,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewals.abort();
    }
}

/// Renews `me`'s lease until it is found lost; warns when renewals fail or
/// come late (an overloaded machine or database is about to lose it).
async fn renew(
    queue: Arc<dyn WorkQueue>,
    me: WorkerKey,
    clock: Arc<LeaseClock>,
    lost: oneshot::Sender<()>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut renewed = Instant::now();
    loop {
        tick.tick().await;
        let since = renewed.elapsed();
        if since > LEASE / 2 {
            tracing::warn!(
                "flyte worker {}: its lease was last renewed {since:.1?} ago and lasts {LEASE:?}: \
                 is the machine or the database overloaded?",
                me.0
            );
        }
        let sent_at = Instant::now();
        match queue.heartbeat(me).await {
            Ok(true) => {
                renewed = sent_at;
                clock.renewed(sent_at);
            }
            Ok(false) => {
                clock.lost();
                let _ = lost.send(());
                return;
            }
            Err(e) => tracing::warn!("flyte worker {}: cannot renew its lease ({e})", me.0),
        }
    }
}
