//! Warnings for people: through `tracing` when the program set up a
//! subscriber, on stderr when it did not, so that a user who set up no
//! logging still learns, say, that a run was not recorded. Each distinct
//! warning is shown once per process.

use crate::mutex::lock;
use std::collections::HashSet;
use std::sync::Mutex;

/// Distinct warnings remembered at most; past it, repeats show again
/// rather than memory growing.
const REMEMBERED: usize = 1_000;

/// Shows `message` unless it was shown before.
pub(crate) fn warn_once(message: &str) {
    static SHOWN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    {
        let mut shown = lock(&SHOWN);
        let shown = shown.get_or_insert_with(HashSet::new);
        if shown.contains(message) {
            return;
        }
        if shown.len() < REMEMBERED {
            shown.insert(message.to_owned());
        }
    }
    if tracing::dispatcher::has_been_set() {
        tracing::warn!("{message}");
    } else {
        eprintln!("flyte: warning: {message}");
    }
}
