//! The display thread: samples the board ten times a second (first after
//! 500 ms, so short runs print nothing) and draws on stderr, a bar through
//! indicatif on a terminal, timestamped lines elsewhere.

use super::board::Board;
use super::render::{bar_lines, log_lines, View};
use super::Shown;
use crate::policies::signals::StopHandle;
use flyte_core::backend::RunStore;
use flyte_core::store::RunKey;
use flyte_core::sync::lock;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

const FIRST_DRAW: Duration = Duration::from_millis(500);
const SAMPLE: Duration = Duration::from_millis(100);
/// Lines are appended less often than the bar is redrawn: logs stay readable.
const LINE_EVERY: Duration = Duration::from_secs(2);
/// How often a recorded run publishes its display for `flyte watch`.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
/// The width the published display is drawn at.
const PUBLISHED_WIDTH: usize = 120;

/// The bars on screen, so that `flyte::progress::stderr` writes above them.
pub(crate) fn active() -> &'static Mutex<Option<MultiProgress>> {
    static ACTIVE: OnceLock<Mutex<Option<MultiProgress>>> = OnceLock::new();
    ACTIVE.get_or_init(Mutex::default)
}

/// A running display; [`Display::finish`] draws the last state and stops it.
pub(crate) struct Display {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Display {
    /// Starts drawing `board`; a recorded run (`store`) also publishes what
    /// is shown, once a second, for `flyte watch`.
    pub(crate) fn start(
        board: Arc<Board>,
        shown: Shown,
        run: Arc<StopHandle>,
        store: Option<(Arc<dyn RunStore>, RunKey)>,
    ) -> Display {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("flyte-progress".into())
            .spawn(move || draw_until_stopped(&board, shown, &run, &signal, store))
            .ok();
        Display { stop, thread }
    }

    pub(crate) fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn draw_until_stopped(
    board: &Board,
    shown: Shown,
    run: &StopHandle,
    stop: &(Mutex<bool>, Condvar),
    store: Option<(Arc<dyn RunStore>, RunKey)>,
) {
    let mut published: Option<Instant> = None;
    let mut screen = match shown {
        Shown::Bar => Screen::bars(),
        Shown::Lines => Screen::Lines { last: None },
    };
    let mut rates = Rates::default();
    let mut wait = FIRST_DRAW;
    let mut drawn = false;
    loop {
        let stopped = {
            let guard = lock(&stop.0);
            let (guard, _) = stop
                .1
                .wait_timeout_while(guard, wait, |stopped| !*stopped)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *guard
        };
        wait = SAMPLE;
        let mut view = board.sample(run.cancel.is_cancelled());
        rates.fill(&mut view);
        // A run that ended before the first draw leaves no trace.
        if stopped && !drawn {
            return;
        }
        screen.draw(&view, stopped);
        drawn = true;
        if let Some((store, key)) = &store {
            let due = stopped || published.is_none_or(|t| t.elapsed() >= PUBLISH_EVERY);
            if let (true, Some(operations)) = (due, store.as_operations()) {
                operations.publish_progress(*key, &bar_lines(&view, PUBLISHED_WIDTH));
                published = Some(Instant::now());
            }
        }
        if stopped {
            screen.finish();
            return;
        }
    }
}

enum Screen {
    Bars {
        multi: MultiProgress,
        bars: Vec<ProgressBar>,
    },
    Lines {
        last: Option<Instant>,
    },
}

impl Screen {
    fn bars() -> Screen {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        *lock(active()) = Some(multi.clone());
        Screen::Bars {
            multi,
            bars: Vec::new(),
        }
    }

    fn draw(&mut self, view: &View, last: bool) {
        match self {
            Screen::Bars { multi, bars } => {
                let width = console_width();
                let lines = bar_lines(view, width);
                while bars.len() < lines.len() {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
                    bars.push(bar);
                }
                for (bar, line) in bars.iter().zip(lines) {
                    bar.set_message(line);
                }
            }
            Screen::Lines { last: shown } => {
                if !last && shown.is_some_and(|t| t.elapsed() < LINE_EVERY) {
                    return;
                }
                *shown = Some(Instant::now());
                let clock = clock();
                let mut err = std::io::stderr().lock();
                for line in log_lines(view, &clock) {
                    let _ = writeln!(err, "{line}");
                }
            }
        }
    }

    fn finish(self) {
        if let Screen::Bars { bars, .. } = self {
            for bar in bars {
                bar.finish();
            }
            *lock(active()) = None;
        }
    }
}

fn console_width() -> usize {
    console::Term::stderr()
        .size_checked()
        .map_or(100, |(_, w)| usize::from(w))
        .max(20)
}

/// `HH:MM:SS` in UTC.
fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// Items ended per second at each site, smoothed over about a second.
#[derive(Default)]
struct Rates {
    last: HashMap<(String, String), (Instant, u64, f64)>,
}

impl Rates {
    fn fill(&mut self, view: &mut View) {
        let now = Instant::now();
        for site in &mut view.sites {
            let done = site.succeeded + site.failed + site.cancelled;
            let key = (site.parent.clone(), site.task.clone());
            let rate = match self.last.get(&key) {
                Some(&(at, before, rate)) => {
                    let dt = now.duration_since(at).as_secs_f64();
                    if dt <= 0.0 {
                        rate
                    } else {
                        let now_rate = done.saturating_sub(before) as f64 / dt;
                        if rate == 0.0 {
                            now_rate
                        } else {
                            0.7 * rate + 0.3 * now_rate
                        }
                    }
                }
                None => done as f64 / view.elapsed.as_secs_f64().max(0.001),
            };
            site.rate = rate;
            self.last.insert(key, (now, done, rate));
        }
    }
}
