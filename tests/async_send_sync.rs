//! Compile-time checks: every public future and stream is `Send`, so it can
//! be spawned on a multi-threaded runtime.

#![allow(dead_code)]

use flyte::prelude::*;
use std::future::IntoFuture;

fn assert_send<T: Send>(_: &T) {}

#[task]
async fn item(x: u8) -> u8 {
    x
}

fn public_futures_are_send() {
    assert_send(&item(1).into_future());
    assert_send(&flyte::map(item, vec![1]).into_future());
    assert_send(&flyte::map(item, vec![1]).collect_errors().into_future());
    assert_send(
        &flyte::map(item, vec![1])
            .min_success_ratio(0.5)
            .into_future(),
    );
    assert_send(&flyte::map(item, vec![1]).as_completed());
    assert_send(&flyte::map_stream(item, tokio_stream::iter(vec![1])).into_future());
    assert_send(&flyte::gather((item(1), item(2))).into_future());
    assert_send(&flyte::gather(vec![item(1)]).collect_errors().into_future());
    assert_send(&flyte::group("g", item(1)));
    assert_send(&flyte::Runner::new().run_async(item(1)));
}

#[test]
fn compiles() {
    let _ = public_futures_are_send;
}
