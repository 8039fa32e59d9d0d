//! Fleet mode on one machine, over loopback: how many trivial tasks per
//! second a driver and 1, 2 and 4 worker processes get through PostgreSQL,
//! what a dispatched call adds to a call on an idle fleet, and how long the
//! fleet takes to finish the actions of a worker killed with `kill -9`.
//!
//! Run: `FLYTE_BENCH_POSTGRES_URL=postgres://user:pw@localhost/postgres
//! cargo bench --features postgres --bench fleet` (a role that may create
//! databases; `-- --quick` for one trial instead of three). The workers
//! are this binary (`--worker URL CONCURRENCY`). Each figure is printed
//! beside the same work run in-process by the default local runner.

use flyte::prelude::*;
use flyte::Runner;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Items of the throughput runs.
const ITEMS: u64 = 20_000;
/// Calls of the latency run, one after another.
const CALLS: u64 = 300;

#[task]
fn noop(i: u64) -> u64 {
    i
}

/// A task that takes a while: the one the killed worker holds.
#[task]
async fn nap(i: u64, ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    i
}

#[task]
async fn many(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(noop, 0..n).concurrency(4096).await?;
    Ok(out.len() as u64)
}

/// One call after another: when each was called and when its result was
/// back, in microseconds since the Unix epoch (the clock the store's
/// timestamps use, to split a call into its stages).
#[task]
async fn one_by_one(n: u64) -> Result<Vec<(u64, u64)>, TaskError> {
    let mut times = Vec::with_capacity(n as usize);
    for i in 0..n {
        let called = unix_micros();
        noop(i).await?;
        times.push((called, unix_micros()));
    }
    Ok(times)
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[task]
async fn naps(n: u64, ms: u64) -> Result<u64, TaskError> {
    let out = flyte::map(move |i| nap(i, ms), 0..n).await?;
    Ok(out.len() as u64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--worker") {
        let concurrency = args[at + 2].parse().expect("a concurrency");
        if let Err(e) = flyte::fleet::Worker::new(&args[at + 1])
            .concurrency(concurrency)
            .run()
        {
            eprintln!("worker: {e}");
        }
        return;
    }
    let Ok(admin) = std::env::var("FLYTE_BENCH_POSTGRES_URL") else {
        eprintln!(
            "fleet bench skipped: set FLYTE_BENCH_POSTGRES_URL to a PostgreSQL server \
             (postgres://user:password@localhost/postgres)"
        );
        return;
    };
    let trials = if args.iter().any(|a| a == "--quick") {
        1
    } else {
        3
    };
    println!("fleet bench: PostgreSQL on loopback, 2 cores");
    // First, on an idle fleet and database: after the throughput runs,
    // PostgreSQL vacuums their rows for a while. `--latency`: only it.
    if args.iter().any(|a| a == "--million") {
        million(&admin);
        return;
    }
    let db = Database::new(&admin, "latency");
    latency(&db);
    drop(db);
    if !args.iter().any(|a| a == "--latency") {
        throughput(&admin, trials);
        let db = Database::new(&admin, "recovery");
        recovery(&db);
    }
}

/// The fleets measured: (workers, slots per worker). 8 slots is the
/// width people give a worker of a 2-core machine; 256 is wide.
const FLEETS: [(usize, usize); 4] = [(2, 8), (2, 256), (1, 256), (4, 256)];

/// Tasks per second, in-process and on each fleet of [`FLEETS`], each on a
/// brand-new database: its first run is what a new fleet gets before
/// PostgreSQL has any statistics of its tables; the median of the runs
/// after it, what it gets from then on.
fn throughput(admin: &str, trials: usize) {
    println!("  {ITEMS} trivial tasks:");
    let local = median(trials, || {
        let t = Instant::now();
        let n = Runner::new()
            .persist(false)
            .run(many(ITEMS))
            .into_output()
            .unwrap();
        assert_eq!(n, ITEMS);
        t.elapsed()
    });
    let home = std::env::temp_dir().join(format!("flyte-fleet-bench-{}", std::process::id()));
    let recorded = median(trials, || {
        let t = Instant::now();
        let n = Runner::new()
            .home(&home)
            .run(many(ITEMS))
            .into_output()
            .unwrap();
        assert_eq!(n, ITEMS);
        t.elapsed()
    });
    let _ = std::fs::remove_dir_all(&home);
    println!(
        "  local, recorded (the default):  {:>8.0} tasks/s",
        ITEMS as f64 / recorded.as_secs_f64()
    );
    println!(
        "  local, unrecorded (persist off): {:>7.0} tasks/s",
        ITEMS as f64 / local.as_secs_f64()
    );
    // `--fleets 2x256,2x8`: only those.
    let only: Option<Vec<String>> = std::env::args()
        .skip_while(|a| a != "--fleets")
        .nth(1)
        .map(|list| list.split(',').map(str::to_owned).collect());
    for (workers, slots) in FLEETS {
        let name = format!("{workers}x{slots}");
        if only.as_ref().is_some_and(|only| !only.contains(&name)) {
            continue;
        }
        let db = Database::new(admin, &name);
        let fleet = Fleet::start(&db.url, workers, slots);
        let run = || {
            let t = Instant::now();
            let n = Runner::new()
                .postgres(&db.url)
                .run(many(ITEMS))
                .into_output()
                .unwrap();
            assert_eq!(n, ITEMS);
            t.elapsed()
        };
        let first = run();
        let before = Costs::now(&db.url, &fleet);
        let warm = median(trials, run);
        let costs = before.until_now(&db.url, &fleet, ITEMS * trials as u64);
        fleet.stop();
        let rate = |d: Duration| ITEMS as f64 / d.as_secs_f64();
        println!(
            "fleet {workers}x{slots} tasks/s {:.0} (first run on a new database: {:.0}, {:.2}x; \
             {:.1}x the recorded local run's time)",
            rate(warm),
            rate(first),
            rate(first) / rate(warm),
            warm.as_secs_f64() / recorded.as_secs_f64()
        );
        println!("    per action: {costs}");
    }
}

/// What the machine spent: CPU time of PostgreSQL's processes (found in
/// `/proc` by name, so only for a server on this machine), of this
/// process (the driver) and of the workers, and the WAL PostgreSQL wrote.
struct Costs {
    postgres_cpu: f64,
    driver_cpu: f64,
    workers_cpu: f64,
    wal_lsn: f64,
}

impl Costs {
    fn now(url: &str, fleet: &Fleet) -> Costs {
        let postgres_cpu = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "postgres")
            })
            .map(|e| cpu_seconds(&e.file_name().to_string_lossy(), true))
            .sum();
        Costs {
            postgres_cpu,
            driver_cpu: cpu_seconds("self", false),
            workers_cpu: fleet
                .workers
                .iter()
                .map(|w| cpu_seconds(&w.id().to_string(), false))
                .sum(),
            wal_lsn: query(url, "SELECT pg_current_wal_lsn() - '0/0'")
                .parse()
                .unwrap_or(f64::NAN),
        }
    }

    /// What was spent since `self`, per action of `actions`, as a line.
    fn until_now(self, url: &str, fleet: &Fleet, actions: u64) -> String {
        let now = Costs::now(url, fleet);
        let n = actions as f64;
        // Statistics reach the view within a second or so.
        std::thread::sleep(Duration::from_millis(1000));
        let hot = query(
            url,
            "SELECT round(100 * n_tup_hot_upd::numeric / nullif(n_tup_upd, 0)) || '%'
             FROM pg_stat_user_tables WHERE relname = 'flyte_actions'",
        );
        format!(
            "PostgreSQL {:.3} ms CPU, {:.0} bytes of WAL (record updates in place: {hot}); \
             driver {:.3} ms CPU; workers {:.3} ms CPU",
            (now.postgres_cpu - self.postgres_cpu) * 1000.0 / n,
            (now.wal_lsn - self.wal_lsn) / n,
            (now.driver_cpu - self.driver_cpu) * 1000.0 / n,
            (now.workers_cpu - self.workers_cpu) * 1000.0 / n,
        )
    }
}

/// User and system CPU seconds of a process from `/proc/<pid>/stat`, with
/// those of its children that ended if `children` (PostgreSQL's postmaster
/// holds there the backends of closed connections); 0 when it is gone.
fn cpu_seconds(pid: &str, children: bool) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's name, which may hold spaces.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime: fields 14 to 17 of the whole line.
    let wanted: &[usize] = if children {
        &[11, 12, 13, 14]
    } else {
        &[11, 12]
    };
    let ticks: f64 = wanted
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // CLK_TCK is 100 on every Linux this bench runs on.
    ticks / 100.0
}

/// Items of the `--million` run.
const MILLION: u64 = 1_000_000;

/// `--million`: 1,000,000 trivial tasks on 2 workers x 256 (wide): the
/// growth of the driver's and each worker's peak memory, the rate of the
/// first and the last 100,000 (finished rows must not slow claims), the
/// bytes an action takes in PostgreSQL, and what `flyte gc` gives back.
fn million(admin: &str) {
    let db = Database::new(admin, "million");
    let fleet = Fleet::start(&db.url, 2, 256);
    let driver_before = status_kib("self", "VmRSS");
    let workers_before: Vec<u64> = fleet
        .workers
        .iter()
        .map(|w| status_kib(&w.id().to_string(), "VmRSS"))
        .collect();
    let t = Instant::now();
    let n = Runner::new()
        .postgres(&db.url)
        .progress(flyte::Progress::None)
        .run(many(MILLION))
        .into_output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(n, MILLION);
    let driver_peak = status_kib("self", "VmHWM");
    let workers_peak: Vec<u64> = fleet
        .workers
        .iter()
        .map(|w| status_kib(&w.id().to_string(), "VmHWM"))
        .collect();
    fleet.stop();
    println!(
        "  {MILLION} trivial tasks, 2 workers x 256: {:.1} s, {:.0} tasks/s",
        took.as_secs_f64(),
        MILLION as f64 / took.as_secs_f64()
    );
    println!(
        "  peak memory growth: driver {:.1} MiB; workers {}",
        (driver_peak.saturating_sub(driver_before)) as f64 / 1024.0,
        workers_before
            .iter()
            .zip(&workers_peak)
            .map(|(b, p)| format!("{:.1} MiB", p.saturating_sub(*b) as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let tenth = MILLION / 10;
    let spans = query(
        &db.url,
        &format!(
            "WITH o AS (SELECT ended_at, row_number() OVER (ORDER BY ended_at) AS n
                        FROM flyte_actions WHERE task LIKE '%.noop')
             SELECT extract(epoch FROM max(ended_at) FILTER (WHERE n <= {tenth})
                                    - min(ended_at) FILTER (WHERE n <= {tenth})) || ' ' ||
                    extract(epoch FROM max(ended_at) FILTER (WHERE n > {MILLION} - {tenth})
                                    - min(ended_at) FILTER (WHERE n > {MILLION} - {tenth}))
             FROM o"
        ),
    );
    let mut spans = spans
        .split_whitespace()
        .map(|s| s.parse::<f64>().unwrap_or(f64::NAN));
    let (first, last) = (
        spans.next().unwrap_or(f64::NAN),
        spans.next().unwrap_or(f64::NAN),
    );
    println!(
        "  first {tenth}: {:.0} tasks/s, last {tenth}: {:.0} tasks/s ({:.2}x)",
        tenth as f64 / first,
        tenth as f64 / last,
        first / last
    );
    let size: f64 = query(&db.url, "SELECT pg_total_relation_size('flyte_actions')")
        .parse()
        .unwrap_or(f64::NAN);
    let rows: f64 = query(&db.url, "SELECT count(*) FROM flyte_actions")
        .parse()
        .unwrap_or(f64::NAN);
    println!(
        "  in PostgreSQL: {:.0} MiB for {rows:.0} actions, {:.0} bytes an action (table, indexes, dead versions)",
        size / 1048576.0,
        size / rows
    );
    let store = flyte::store::open_postgres(&db.url).unwrap();
    let runs: Vec<_> = store
        .reader()
        .unwrap()
        .list_runs(&flyte::store::RunFilter::default())
        .unwrap()
        .into_iter()
        .filter_map(|r| {
            store
                .run_log()
                .find_run(flyte::store::RunRef::Id(&r.id))
                .ok()
                .flatten()
        })
        .map(|(key, _)| key)
        .collect();
    let t = Instant::now();
    let operations = store.operations().unwrap();
    let deleted = operations.delete_runs(&runs).unwrap();
    operations.compact().unwrap();
    println!(
        "  gc (delete the run, vacuum): {deleted} run, {:.1} s; {} actions left, {:.0} MiB kept for the next runs to reuse",
        t.elapsed().as_secs_f64(),
        query(&db.url, "SELECT count(*) FROM flyte_actions"),
        query(&db.url, "SELECT pg_total_relation_size('flyte_actions')")
            .parse::<f64>()
            .unwrap_or(f64::NAN)
            / 1048576.0
    );
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`: the peak).
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim_start_matches(':')
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// What a query prints.
fn query(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-qAtc", sql])
        .output()
        .expect("psql runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One call at a time, on an idle fleet of one worker; then where a
/// call's time goes, from the store's timestamps.
fn latency(db: &Database) {
    let fleet = Fleet::start(&db.url, 1, 16);
    let calls = Runner::new()
        .postgres(&db.url)
        .run(one_by_one(CALLS))
        .into_output()
        .unwrap();
    fleet.stop();
    let local = Runner::new()
        .persist(false)
        .run(one_by_one(CALLS))
        .into_output()
        .unwrap();
    let took = |calls: &[(u64, u64)]| -> Vec<u64> { calls.iter().map(|(a, b)| b - a).collect() };
    let (mut remote, mut local) = (took(&calls), took(&local));
    let (p50, p99) = (percentile(&mut remote, 50), percentile(&mut remote, 99));
    let (l50, l99) = (percentile(&mut local, 50), percentile(&mut local, 99));
    println!(
        "  one call at a time, idle fleet:  p50 {:.2} ms, p99 {:.2} ms (local: p50 {:.3} ms, p99 {:.3} ms)",
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        l50 as f64 / 1000.0,
        l99 as f64 / 1000.0
    );
    stages(db, &calls);
}

/// Splits each call of the latency run at the store's timestamps of its
/// action (queued: the submitting statement; started and ended: the
/// worker's body) and prints the median of each stage.
fn stages(db: &Database, calls: &[(u64, u64)]) {
    let rows = query(
        &db.url,
        "SELECT string_agg(format('%s %s %s',
                 (extract(epoch FROM queued_at) * 1e6)::bigint,
                 (extract(epoch FROM started_at) * 1e6)::bigint,
                 (extract(epoch FROM ended_at) * 1e6)::bigint), ' ' ORDER BY queued_at)
         FROM flyte_actions WHERE task LIKE '%noop' AND state = 'succeeded'",
    );
    let numbers: Vec<u64> = rows.split(' ').filter_map(|n| n.parse().ok()).collect();
    if numbers.len() != calls.len() * 3 {
        println!(
            "  (stages: {} actions recorded for {} calls)",
            numbers.len() / 3,
            calls.len()
        );
        return;
    }
    let mut stage = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for ((called, back), at) in calls.iter().zip(numbers.chunks(3)) {
        let (queued, started, ended) = (at[0], at[1], at[2]);
        stage[0].push(queued.saturating_sub(*called));
        stage[1].push(started.saturating_sub(queued));
        stage[2].push(ended.saturating_sub(started));
        stage[3].push(back.saturating_sub(ended));
    }
    let [mut submit, mut claim, mut body, mut back] = stage;
    println!(
        "  where a call's time goes (p50): to its submission {:.2} ms, submitted to begun on the worker {:.2} ms, the body {:.2} ms, ended to back in the caller {:.2} ms",
        percentile(&mut submit, 50) as f64 / 1000.0,
        percentile(&mut claim, 50) as f64 / 1000.0,
        percentile(&mut body, 50) as f64 / 1000.0,
        percentile(&mut back, 50) as f64 / 1000.0,
    );
}

/// Two workers hold 8 naps of 500 ms each; one is killed as soon as they
/// start. The run ends when the survivor has run them.
fn recovery(db: &Database) {
    let mut fleet = Fleet::start(&db.url, 2, 8);
    std::thread::sleep(Duration::from_millis(500));
    let url = db.url.clone();
    let driver = std::thread::spawn(move || {
        let t = Instant::now();
        let n = Runner::new()
            .postgres(&url)
            .run(naps(16, 500))
            .into_output()
            .unwrap();
        assert_eq!(n, 16);
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(250));
    let killed_at = Instant::now();
    let mut victim = fleet.workers.remove(0);
    victim.kill().expect("kill -9");
    victim.wait().ok();
    let whole = driver.join().unwrap();
    let recovered = killed_at.elapsed();
    fleet.stop();
    println!(
        "  kill -9 of a worker holding 8 actions: run done {:.1} s after the kill \
         (the lease: 10 s from its last renewal, up to 2 s before the kill; the reaper: <= 2 s; the work: 0.5 s; whole run {:.1} s)",
        recovered.as_secs_f64(),
        whole.as_secs_f64()
    );
}

/// Worker processes of this binary.
struct Fleet {
    workers: Vec<Child>,
}

impl Fleet {
    fn start(url: &str, n: usize, concurrency: usize) -> Fleet {
        let exe = std::env::current_exe().expect("this binary");
        let workers = (0..n)
            .map(|_| {
                Command::new(&exe)
                    .args(["--worker", url, &concurrency.to_string()])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("a worker")
            })
            .collect();
        // Registered before the first run.
        std::thread::sleep(Duration::from_millis(700));
        Fleet { workers }
    }

    /// SIGTERM: each worker leaves the fleet.
    fn stop(self) {
        for mut w in self.workers {
            let _ = Command::new("kill").arg(w.id().to_string()).status();
            let _ = w.wait();
        }
    }
}

/// A database of this bench, dropped at the end.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    fn new(admin: &str, what: &str) -> Database {
        let name = format!("flyte_bench_{}_{what}", std::process::id());
        psql(admin, &format!("CREATE DATABASE {name}"));
        // The same server and parameters (`?sslmode=...`), another database.
        let (path, query) = admin.split_once('?').map_or((admin, ""), |(p, q)| (p, q));
        let base = path.rsplit_once('/').map_or(path, |(b, _)| b);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Database {
            admin: admin.to_owned(),
            url: format!("{base}/{name}{query}"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn psql(url: &str, sql: &str) {
    let ok = Command::new("psql")
        .args([url, "-qAtc", sql])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "psql {sql} failed");
}

fn median(trials: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..trials).map(|_| f()).collect();
    times.sort();
    times[times.len() / 2]
}

fn percentile(v: &mut [u64], p: usize) -> u64 {
    v.sort_unstable();
    v[(v.len() * p / 100).min(v.len() - 1)]
}
