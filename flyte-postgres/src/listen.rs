//! Wake-ups: one connection that `LISTEN`s for the fleet's notifications.
//! They are hints only: every waiter polls as well, so a lost notification
//! (or a dropped listening connection) costs latency, never work.

use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Work was queued (workers claim).
pub(crate) const QUEUED: &str = "flyte_queued";
/// Actions ended (submitters collect).
pub(crate) const SETTLED: &str = "flyte_settled";
/// Actions were cancelled (workers stop them).
pub(crate) const CANCELLED: &str = "flyte_cancelled";

/// One `Notify` per channel.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    pub(crate) queued: Notify,
    pub(crate) settled: Notify,
    pub(crate) cancelled: Notify,
}

impl Hints {
    fn wake(&self, channel: &str) {
        match channel {
            QUEUED => wake(&self.queued),
            SETTLED => wake(&self.settled),
            CANCELLED => wake(&self.cancelled),
            _ => {}
        }
    }

    /// Wakes every waiter: after a reconnect, anything may have happened.
    fn wake_all(&self) {
        wake(&self.queued);
        wake(&self.settled);
        wake(&self.cancelled);
    }
}

/// Wakes whoever waits on `hint`, and leaves a permit for whoever comes
/// next: a worker busy claiming when work was queued finds the hint when
/// it waits again, instead of sleeping through it until its next poll.
fn wake(hint: &Notify) {
    hint.notify_waiters();
    hint.notify_one();
}

/// Listens for as long as the store lives, reconnecting with a growing
/// pause when the connection drops.
pub(crate) async fn run(config: tokio_postgres::Config, tls: MakeRustlsConnect, hints: Arc<Hints>) {
    let mut pause = Duration::from_millis(100);
    loop {
        if listen_once(&config, tls.clone(), &hints).await.is_ok() {
            pause = Duration::from_millis(100);
        }
        hints.wake_all();
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One connection's life: `LISTEN`, then forward every notification.
async fn listen_once(
    config: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
    hints: &Hints,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls).await?;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {QUEUED}; LISTEN {SETTLED}; LISTEN {CANCELLED};");
    let listen = client.batch_execute(&statement);
    // The connection must be polled for the LISTEN to complete.
    tokio::pin!(listen);
    loop {
        tokio::select! {
            done = &mut listen => { done?; break; }
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    }
    hints.wake_all();
    while let Some(message) = messages.next().await {
        if let AsyncMessage::Notification(n) = message? {
            hints.wake(n.channel());
        }
    }
    Ok(())
}
