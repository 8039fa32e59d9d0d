//! Ctrl-C and SIGTERM delivered to real child processes.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `policies` example, built if needed.
fn example(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--example", name])
        .status()
        .expect("cargo runs");
    assert!(status.success());
    // target/<profile>/deps/<this test> -> target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok);
}

fn wait_for_line(child: &mut Child, expected: &str) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines.next().expect("the child printed its start").unwrap();
        if line.contains(expected) {
            return;
        }
    }
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let sent = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, sent.elapsed());
        }
        if sent.elapsed() > limit {
            child.kill().ok();
            panic!("the child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[test]
fn ctrl_c_cancels_the_run_promptly_and_exits_non_zero() {
    for (signal_name, reason) in [("-INT", "SIGINT"), ("-TERM", "SIGTERM")] {
        let mut child = Command::new(example("policies"))
            .arg("--long")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut child, "run started");
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, signal_name);
        let (status, took) = wait_with_deadline(&mut child, Duration::from_secs(10));
        let err = stderr_of(&mut child);
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(took < Duration::from_secs(1), "took {took:?} to stop");
        assert!(err.contains(&format!("cancelled by {reason}")), "{err}");
        assert!(err.contains("ended: Cancelled"), "{err}");
    }
}

/// Run as a child process by `a_second_signal_exits_at_once`.
#[test]
#[ignore = "helper: runs only in a child process"]
fn helper_cancelled_then_lingering() {
    use flyte::prelude::*;
    #[task]
    async fn forever() -> u8 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        0
    }
    println!("run started");
    let err = flyte::run(forever()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled);
    println!("cancelled; lingering");
    eprintln!("cancelled; lingering");
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_cancelled_then_lingering",
            "--nocapture",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut next_line = |expected: &str| loop {
        let line = lines.next().expect("helper output").unwrap();
        if line.contains(expected) {
            return;
        }
    };
    next_line("run started");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "-INT");
    next_line("cancelled; lingering");
    signal(&child, "-INT");
    let (status, took) = wait_with_deadline(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(130));
    assert!(took < Duration::from_secs(1), "{took:?}");
}
