//! Inngest-style parallel steps: a fixed tuple of different steps, then a
//! dynamic list of the same step.
//!
//! ```ts
//! const [user, sent] = await Promise.all([step.run("update", ..), step.run("email", ..)]);
//! ```
//! Run: `cargo run --example parallel_steps`

use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("parallel_steps");

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    plan: String,
}

#[task(env = ENV)]
async fn update_user(id: u64) -> User {
    User {
        id,
        plan: "pro".into(),
    }
}

#[task(env = ENV)]
async fn send_email(id: u64) -> bool {
    id != 0
}

#[task(env = ENV)]
async fn notify(user_id: u64, channel: String) -> String {
    format!("{channel}:{user_id}")
}

#[task(env = ENV)]
async fn upgrade(id: u64, channels: Vec<String>) -> Result<Vec<String>, TaskError> {
    // Fixed steps of different types, side by side.
    let (user, sent) = flyte::gather((update_user(id), send_email(id))).await?;
    println!("updated {user:?}, email sent: {sent}");
    // A dynamic list of one step.
    let calls: Vec<_> = channels.into_iter().map(|c| notify(user.id, c)).collect();
    flyte::gather(calls).await
}

fn main() -> Result<(), TaskError> {
    let channels = vec!["slack".to_owned(), "sms".to_owned(), "push".to_owned()];
    let sent = flyte::run(upgrade(7, channels))?;
    println!("notified: {sent:?}");
    assert_eq!(sent, ["slack:7", "sms:7", "push:7"]);
    Ok(())
}
