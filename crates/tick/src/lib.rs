//! The fixed-rate tick loop.
//!
//! A bevy [`App`] runs on its own OS thread. Every tick is exactly one call to
//! [`App::update`], and [`TickPlugin`] makes the `RunFixedMainLoop` schedule run
//! `FixedMain` exactly once per update, so one tick = one fixed step:
//!
//! `First → PreUpdate (drain inbound channels) → FixedMain (game logic, FixedUpdate)
//!  → Update → PostUpdate (emit events, collect dirty state) → Last`.
//!
//! The runner owns the clock (bevy_time is not used): deadlines are computed from the
//! start instant (`start + n × period`), so the rate does not drift; a tick that
//! finishes after the next deadline counts as an overrun and the schedule is re-based
//! instead of bursting to catch up.
//!
//! **Command steps.** With a [`CommandPhase`], the loop does not sleep between ticks
//! but waits on its [`Bell`]: when something rings it (a command arrived), it runs a
//! *command step* at once (at most one per [`CommandPhase::gap`], and none closer than
//! that to the next tick): the same `App::update`, with [`Step::Commands`] set, so
//! `RunFixedMainLoop` runs [`CommandMain`] instead of `FixedMain`. The tick number does
//! not move and no tick is recorded; PreUpdate and PostUpdate run as on a tick, so a
//! command is drained, applied and handed to persistence without waiting for the next
//! tick.
//!
//! [`TickStats`] is written by the tick thread with relaxed atomics only and read by
//! async code (HTTP handlers, metrics) without ever blocking the tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bevy_app::{App, FixedMain, Plugin, RunFixedMainLoop, RunFixedMainLoopSystems};
use bevy_ecs::prelude::*;

mod histogram;
mod timings;
pub use histogram::{Histogram, HistogramSnapshot, LATENCY_BOUNDS};
pub use timings::{SystemTiming, SystemTimingLayer, system_timings};

/// Number of recent ticks kept for percentiles and history (one minute at 20 Hz).
pub const WINDOW: usize = 1200;

/// Errors of the tick loop.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("tick rate must be a finite number between 0.1 and 1000 Hz, got {0}")]
    InvalidRate(f64),
    #[error("could not spawn the tick thread: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("the tick thread panicked")]
    Panicked,
}

/// What the simulation knows about the current tick. Inserted by [`TickPlugin`],
/// updated by the runner before each update.
#[derive(Resource, Debug, Clone, Copy)]
pub struct TickInfo {
    /// Number of the tick being run; the first tick is 1.
    pub number: u64,
    /// Fixed period of one tick.
    pub period: Duration,
}

/// Runs instead of `FixedMain` in a command step between two ticks (see the module
/// docs). Game logic that answers commands adds its systems here; time-driven logic
/// stays in `FixedMain`.
#[derive(bevy_ecs::schedule::ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommandMain;

/// Which kind of step the current `App::update` is. Set by the runner.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Step {
    /// A fixed tick: `FixedMain` runs.
    #[default]
    Tick,
    /// A command step between ticks: [`CommandMain`] runs.
    Commands,
}

/// Wakes the tick thread between ticks for a command step. Cheap to clone; ringing
/// never blocks (an atomic flag and, when it was not rung yet, an unpark).
#[derive(Clone, Debug, Default)]
pub struct Bell {
    inner: Arc<BellInner>,
}

#[derive(Debug, Default)]
struct BellInner {
    rung: AtomicBool,
    thread: std::sync::OnceLock<std::thread::Thread>,
}

impl Bell {
    /// Asks for a command step (something is waiting for the tick thread).
    pub fn ring(&self) {
        if !self.inner.rung.swap(true, Ordering::AcqRel)
            && let Some(t) = self.inner.thread.get()
        {
            t.unpark();
        }
    }
    fn is_rung(&self) -> bool {
        self.inner.rung.load(Ordering::Acquire)
    }
    fn clear(&self) {
        self.inner.rung.store(false, Ordering::Release);
    }
    fn attach_current_thread(&self) {
        let _ = self.inner.thread.set(std::thread::current());
    }
}

/// Command steps between ticks: what wakes them and how close they may follow each
/// other (see the module docs).
#[derive(Clone, Debug)]
pub struct CommandPhase {
    pub bell: Bell,
    /// The least time from the end of one command step to the start of the next (and
    /// from a command step's start to the next tick's deadline): what arrives within it
    /// is batched into one step.
    pub gap: Duration,
}

/// Runs on the tick thread after every tick, outside every other schedule (so all of
/// them are visible in `Schedules`), and every few milliseconds while the loop is paused.
/// For serving requests from outside (the inspector); game logic never runs here.
#[derive(bevy_ecs::schedule::ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub struct TickService;

/// Makes every [`App::update`] run `FixedMain` exactly once and keeps [`TickInfo`].
#[derive(Debug, Clone, Copy)]
pub struct TickPlugin {
    pub period: Duration,
}

impl Plugin for TickPlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(TickInfo {
            number: 0,
            period: self.period,
        })
        .init_resource::<Step>()
        .init_schedule(TickService)
        .init_schedule(CommandMain)
        .add_systems(
            RunFixedMainLoop,
            run_fixed_main_once.in_set(RunFixedMainLoopSystems::FixedMainLoop),
        );
    }
}

fn run_fixed_main_once(world: &mut World) {
    match world.get_resource::<Step>().copied().unwrap_or_default() {
        Step::Tick => world.run_schedule(FixedMain),
        Step::Commands => world.run_schedule(CommandMain),
    }
}

/// Converts a rate in Hz to a period, validating it.
pub fn period_from_rate(rate_hz: f64) -> Result<Duration, TickError> {
    if !rate_hz.is_finite() || !(0.1..=1000.0).contains(&rate_hz) {
        return Err(TickError::InvalidRate(rate_hz));
    }
    Ok(Duration::from_secs_f64(1.0 / rate_hz))
}

/// Shared tick figures. Cheap to clone; readers never block the tick thread.
#[derive(Clone, Debug)]
pub struct TickStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug)]
struct StatsInner {
    period_ns: u64,
    started: Instant,
    number: AtomicU64,
    overruns: AtomicU64,
    /// Nanoseconds since `started` at which the last tick began.
    last_start_ns: AtomicU64,
    /// Duration of recent ticks in nanoseconds, indexed by tick number % WINDOW.
    durations: Box<[AtomicU64]>,
    /// Nanoseconds since `started` at which each recent tick began.
    starts: Box<[AtomicU64]>,
    /// Every tick's duration.
    histogram: Histogram,
    /// Command steps run between ticks, and their total duration.
    command_steps: AtomicU64,
    command_ns: AtomicU64,
}

/// A consistent-enough view of the tick figures at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TickSnapshot {
    /// Number of ticks completed.
    pub number: u64,
    /// Configured rate in Hz.
    pub target_rate_hz: f64,
    /// Measured rate over the window, in Hz (0 until two ticks have run).
    pub actual_rate_hz: f64,
    /// Duration of the last completed tick, in microseconds.
    pub last_us: f64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Ticks that ended after the next tick's deadline.
    pub overruns: u64,
    /// Ticks in the window the percentiles are computed over.
    pub window: usize,
    pub paused: bool,
    /// Command steps run between ticks since start.
    pub command_steps: u64,
}

/// One tick in [`TickStats::history`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TickRecord {
    pub number: u64,
    /// Start, in milliseconds since the loop started.
    pub start_ms: f64,
    pub duration_us: f64,
}

impl TickStats {
    fn new(period: Duration) -> Self {
        let period_ns = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        Self {
            inner: Arc::new(StatsInner {
                period_ns,
                started: Instant::now(),
                number: AtomicU64::new(0),
                overruns: AtomicU64::new(0),
                last_start_ns: AtomicU64::new(0),
                durations: (0..WINDOW).map(|_| AtomicU64::new(0)).collect(),
                starts: (0..WINDOW).map(|_| AtomicU64::new(0)).collect(),
                histogram: Histogram::latency(),
                command_steps: AtomicU64::new(0),
                command_ns: AtomicU64::new(0),
            }),
        }
    }

    fn record(&self, number: u64, start: Instant, duration: Duration, overrun: bool) {
        let i = (number % WINDOW as u64) as usize;
        let start_ns = nanos(start.saturating_duration_since(self.inner.started));
        self.inner.durations[i].store(nanos(duration), Ordering::Relaxed);
        self.inner.starts[i].store(start_ns, Ordering::Relaxed);
        self.inner.last_start_ns.store(start_ns, Ordering::Relaxed);
        if overrun {
            self.inner.overruns.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.histogram.observe(duration);
        // Publish last: readers use `number` to know which slots are valid.
        self.inner.number.store(number, Ordering::Release);
    }

    fn record_command_step(&self, duration: Duration) {
        self.inner
            .command_ns
            .fetch_add(nanos(duration), Ordering::Relaxed);
        self.inner.command_steps.fetch_add(1, Ordering::Relaxed);
    }

    /// Command steps run between ticks so far, and their total duration.
    pub fn command_steps(&self) -> (u64, Duration) {
        (
            self.inner.command_steps.load(Ordering::Relaxed),
            Duration::from_nanos(self.inner.command_ns.load(Ordering::Relaxed)),
        )
    }

    /// Number of completed ticks.
    pub fn number(&self) -> u64 {
        self.inner.number.load(Ordering::Acquire)
    }

    /// Configured period.
    pub fn period(&self) -> Duration {
        Duration::from_nanos(self.inner.period_ns)
    }

    /// Figures over the last `WINDOW` ticks.
    pub fn snapshot(&self, paused: bool) -> TickSnapshot {
        let number = self.number();
        let records = self.history(WINDOW);
        let mut durations: Vec<f64> = records.iter().map(|r| r.duration_us).collect();
        durations.sort_by(f64::total_cmp);
        let actual_rate_hz = match (records.first(), records.last()) {
            (Some(first), Some(last)) if records.len() >= 2 && last.start_ms > first.start_ms => {
                (records.len() - 1) as f64 / ((last.start_ms - first.start_ms) / 1000.0)
            }
            _ => 0.0,
        };
        TickSnapshot {
            number,
            target_rate_hz: 1e9 / self.inner.period_ns.max(1) as f64,
            actual_rate_hz,
            last_us: records.last().map_or(0.0, |r| r.duration_us),
            p50_us: percentile(&durations, 0.50),
            p95_us: percentile(&durations, 0.95),
            p99_us: percentile(&durations, 0.99),
            max_us: durations.last().copied().unwrap_or(0.0),
            overruns: self.inner.overruns.load(Ordering::Relaxed),
            window: durations.len(),
            paused,
            command_steps: self.inner.command_steps.load(Ordering::Relaxed),
        }
    }

    /// Every tick's duration since start, as a cumulative histogram.
    pub fn histogram(&self) -> HistogramSnapshot {
        self.inner.histogram.snapshot()
    }

    /// Ticks that ended after the next tick's deadline.
    pub fn overruns(&self) -> u64 {
        self.inner.overruns.load(Ordering::Relaxed)
    }

    /// The last `n` ticks (at most `WINDOW`), oldest first.
    pub fn history(&self, n: usize) -> Vec<TickRecord> {
        let number = self.number();
        let n = n
            .min(WINDOW)
            .min(usize::try_from(number).unwrap_or(usize::MAX));
        let first = number + 1 - n as u64;
        (first..=number)
            .map(|k| {
                let i = (k % WINDOW as u64) as usize;
                TickRecord {
                    number: k,
                    start_ms: self.inner.starts[i].load(Ordering::Relaxed) as f64 / 1e6,
                    duration_us: self.inner.durations[i].load(Ordering::Relaxed) as f64 / 1e3,
                }
            })
            .collect()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Nearest-rank percentile of sorted values; 0 when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Pause, resume and single-step the loop from any thread.
#[derive(Clone, Debug, Default)]
pub struct TickControl {
    inner: Arc<ControlInner>,
}

#[derive(Debug, Default)]
struct ControlInner {
    paused: AtomicBool,
    steps: AtomicU64,
    stop: AtomicBool,
    /// Rounds the loop has spent paused (each one ran `TickService` and no tick): lets a
    /// caller see that the loop has taken a pause, without waiting on the clock.
    idle_rounds: AtomicU64,
}

impl TickControl {
    pub fn pause(&self) {
        self.inner.paused.store(true, Ordering::SeqCst);
    }
    pub fn resume(&self) {
        self.inner.paused.store(false, Ordering::SeqCst);
    }
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }
    /// Requests exactly one tick while paused. Returns false (and does nothing) when
    /// the loop is running.
    pub fn step(&self) -> bool {
        if !self.is_paused() {
            return false;
        }
        self.inner.steps.fetch_add(1, Ordering::SeqCst);
        true
    }
    fn take_step(&self) -> bool {
        self.inner
            .steps
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| s.checked_sub(1))
            .is_ok()
    }
    /// Rounds the loop has spent paused so far. Once this grows after [`pause`], no
    /// tick is in flight and none starts until [`step`] or [`resume`]: how a caller
    /// (a test) knows the pause has taken hold, without waiting on the clock.
    ///
    /// [`pause`]: TickControl::pause
    /// [`step`]: TickControl::step
    /// [`resume`]: TickControl::resume
    pub fn idle_rounds(&self) -> u64 {
        self.inner.idle_rounds.load(Ordering::SeqCst)
    }
    fn stop_requested(&self) -> bool {
        self.inner.stop.load(Ordering::SeqCst)
    }
}

/// The running loop. Dropping it stops the thread.
#[derive(Debug)]
pub struct TickLoop {
    stats: TickStats,
    control: TickControl,
    thread: Option<JoinHandle<()>>,
}

impl TickLoop {
    /// Adds [`TickPlugin`] to `app` and runs it on a new thread at `rate_hz`.
    ///
    /// `make_app` runs on the tick thread, so the App never crosses threads.
    pub fn spawn(
        rate_hz: f64,
        make_app: impl FnOnce() -> App + Send + 'static,
    ) -> Result<Self, TickError> {
        Self::spawn_with(rate_hz, None, make_app)
    }

    /// [`Self::spawn`], with command steps between ticks when `commands` is given.
    pub fn spawn_with(
        rate_hz: f64,
        commands: Option<CommandPhase>,
        make_app: impl FnOnce() -> App + Send + 'static,
    ) -> Result<Self, TickError> {
        let period = period_from_rate(rate_hz)?;
        let stats = TickStats::new(period);
        let control = TickControl::default();
        let (s, c) = (stats.clone(), control.clone());
        let thread = std::thread::Builder::new()
            .name("tick".into())
            .spawn(move || {
                if let Some(phase) = &commands {
                    phase.bell.attach_current_thread();
                }
                let mut app = make_app();
                app.add_plugins(TickPlugin { period });
                run_loop(&mut app, period, &s, &c, commands.as_ref());
            })?;
        Ok(Self {
            stats,
            control,
            thread: Some(thread),
        })
    }

    pub fn stats(&self) -> &TickStats {
        &self.stats
    }

    pub fn control(&self) -> &TickControl {
        &self.control
    }

    /// Stops after the current tick and waits for the thread.
    pub fn stop(mut self) -> Result<(), TickError> {
        self.control.inner.stop.store(true, Ordering::SeqCst);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| TickError::Panicked),
            None => Err(TickError::Panicked),
        }
    }
}

impl Drop for TickLoop {
    fn drop(&mut self) {
        self.control.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs one tick: sets [`TickInfo`], updates the app.
pub fn run_tick(app: &mut App, number: u64) {
    if let Some(mut info) = app.world_mut().get_resource_mut::<TickInfo>() {
        info.number = number;
    }
    app.update();
    app.world_mut().run_schedule(TickService);
}

/// Runs one command step: an update with [`Step::Commands`] set (no tick counted).
pub fn run_command_step(app: &mut App) {
    app.world_mut().insert_resource(Step::Commands);
    app.update();
    app.world_mut().insert_resource(Step::Tick);
}

/// Waits until `next` (the next tick's deadline), running command steps when the bell
/// rings (see the module docs). Returns early when paused or stopped.
fn between_ticks(
    app: &mut App,
    next: Instant,
    phase: &CommandPhase,
    stats: &TickStats,
    control: &TickControl,
) {
    let mut last_end: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= next || control.stop_requested() || control.is_paused() {
            return;
        }
        if phase.bell.is_rung() {
            let earliest = last_end.map_or(now, |end| end + phase.gap);
            if earliest > now {
                std::thread::park_timeout(earliest.min(next) - now);
                continue;
            }
            if next - now < phase.gap {
                // The tick is about to take it.
                std::thread::park_timeout(next - now);
                continue;
            }
            phase.bell.clear();
            let start = Instant::now();
            run_command_step(app);
            let end = Instant::now();
            stats.record_command_step(end - start);
            last_end = Some(end);
            continue;
        }
        std::thread::park_timeout(next - now);
    }
}

fn run_loop(
    app: &mut App,
    period: Duration,
    stats: &TickStats,
    control: &TickControl,
    commands: Option<&CommandPhase>,
) {
    // While paused, wake at this interval to look for steps, resume or stop.
    let idle_poll = period.min(Duration::from_millis(5));
    let mut base = Instant::now();
    let mut since_base: u32 = 0;
    let mut number: u64 = 0;
    while !control.stop_requested() {
        if control.is_paused() && !control.take_step() {
            app.world_mut().run_schedule(TickService);
            control.inner.idle_rounds.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(idle_poll);
            // Resume on a fresh schedule rather than bursting through missed ticks.
            base = Instant::now();
            since_base = 0;
            continue;
        }
        let start = Instant::now();
        number += 1;
        if let Some(phase) = commands {
            // The tick drains everything that rang so far.
            phase.bell.clear();
        }
        run_tick(app, number);
        let end = Instant::now();
        since_base = since_base.saturating_add(1);
        let next = base + period * since_base;
        let overrun = end > next;
        stats.record(number, start, end - start, overrun);
        if overrun {
            base = end;
            since_base = 0;
        } else if !control.is_paused() {
            match commands {
                Some(phase) => between_ticks(app, next, phase, stats, control),
                None => std::thread::sleep(next - end),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bevy_app::FixedUpdate;

    use std::sync::atomic::AtomicU64;

    #[derive(Resource, Default, Clone)]
    struct Counter(Arc<AtomicU64>);

    fn count(c: Res<Counter>) {
        c.0.fetch_add(1, Ordering::SeqCst);
    }

    fn counting_app(counter: Counter) -> impl FnOnce() -> App + Send + 'static {
        move || {
            let mut app = App::new();
            app.insert_resource(counter).add_systems(FixedUpdate, count);
            app
        }
    }

    #[test]
    fn one_update_is_one_fixed_step() {
        let counter = Counter::default();
        let mut app = counting_app(counter.clone())();
        app.add_plugins(TickPlugin {
            period: Duration::from_millis(50),
        });
        for n in 1..=5 {
            run_tick(&mut app, n);
        }
        assert_eq!(counter.0.load(Ordering::SeqCst), 5);
        assert_eq!(app.world().resource::<TickInfo>().number, 5);
    }

    #[derive(Resource, Default, Clone)]
    struct Commands(Arc<AtomicU64>);

    fn count_commands(c: Res<Commands>) {
        c.0.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_command_step_runs_command_main_and_counts_no_tick() {
        let counter = Counter::default();
        let commands = Commands::default();
        let mut app = counting_app(counter.clone())();
        app.insert_resource(commands.clone())
            .add_systems(CommandMain, count_commands)
            .add_plugins(TickPlugin {
                period: Duration::from_millis(50),
            });
        run_tick(&mut app, 1);
        run_command_step(&mut app);
        run_command_step(&mut app);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "FixedMain ran once");
        assert_eq!(commands.0.load(Ordering::SeqCst), 2);
        assert_eq!(app.world().resource::<TickInfo>().number, 1);
        assert_eq!(*app.world().resource::<Step>(), Step::Tick, "reset after");
    }

    /// At 1 Hz, a ring is answered by a command step long before the next tick.
    #[test]
    fn a_ring_between_ticks_runs_a_command_step_at_once() {
        let counter = Counter::default();
        let commands = Commands::default();
        let make = counting_app(counter.clone());
        let cc = commands.clone();
        let bell = Bell::default();
        let phase = CommandPhase {
            bell: bell.clone(),
            gap: Duration::from_millis(1),
        };
        let tick = TickLoop::spawn_with(1.0, Some(phase), move || {
            let mut app = make();
            app.insert_resource(cc)
                .add_systems(CommandMain, count_commands);
            app
        })
        .unwrap();
        wait_for("the first tick", || tick.stats().number() >= 1);
        let t = Instant::now();
        bell.ring();
        wait_for("a command step", || commands.0.load(Ordering::SeqCst) >= 1);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "not left for the next tick"
        );
        assert_eq!(tick.stats().number(), 1, "no tick counted");
        assert_eq!(tick.stats().command_steps().0, 1);
        // A later ring makes another step.
        bell.ring();
        bell.ring();
        wait_for("a second command step", || {
            commands.0.load(Ordering::SeqCst) >= 2
        });
        tick.stop().unwrap();
    }

    /// Polls `done` every millisecond until it holds; panics with `what` after 10 s.
    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Pauses the loop and returns once it has spent `rounds` rounds paused, so no tick
    /// is in flight any more.
    fn pause_and_settle(control: &TickControl, rounds: u64) {
        let idle = control.idle_rounds();
        control.pause();
        wait_for("the loop to take the pause", || {
            control.idle_rounds() >= idle + rounds
        });
    }

    #[test]
    fn service_schedule_runs_after_ticks_and_while_paused() {
        #[derive(Resource, Default, Clone)]
        struct Idle(Arc<AtomicU64>);
        fn idle(c: Res<Idle>) {
            c.0.fetch_add(1, Ordering::SeqCst);
        }
        let counter = Counter::default();
        let idle_count = Idle::default();
        let ic = idle_count.clone();
        let make = counting_app(counter.clone());
        let tick = TickLoop::spawn(200.0, move || {
            let mut app = make();
            app.insert_resource(ic).add_systems(TickService, idle);
            app
        })
        .unwrap();
        wait_for("five ticks", || tick.stats().number() >= 5);
        let ticks = counter.0.load(Ordering::SeqCst);
        let served = idle_count.0.load(Ordering::SeqCst);
        assert!(
            served >= ticks.saturating_sub(1) && served > 0,
            "after each tick: {served} vs {ticks}"
        );
        pause_and_settle(tick.control(), 1);
        let before = idle_count.0.load(Ordering::SeqCst);
        let ticked = tick.stats().number();
        wait_for("three paused rounds", || {
            idle_count.0.load(Ordering::SeqCst) >= before + 3
        });
        assert_eq!(
            tick.stats().number(),
            ticked,
            "and while paused, not ticking"
        );
        tick.stop().unwrap();
    }

    #[test]
    fn rejects_bad_rates() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY, 5000.0] {
            assert!(matches!(
                period_from_rate(r),
                Err(TickError::InvalidRate(_))
            ));
        }
        assert_eq!(period_from_rate(20.0).unwrap(), Duration::from_millis(50));
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn pause_then_step_advances_exactly_one_tick() {
        let counter = Counter::default();
        let tick = TickLoop::spawn(200.0, counting_app(counter.clone())).unwrap();
        let control = tick.control();
        // Once the loop has been idle a round, any tick in flight has finished.
        pause_and_settle(control, 1);
        let before = tick.stats().number();
        let idle = control.idle_rounds();
        wait_for("ten paused rounds", || control.idle_rounds() >= idle + 10);
        assert_eq!(tick.stats().number(), before, "paused loop must not tick");
        assert!(control.step());
        wait_for("the stepped tick", || tick.stats().number() > before);
        // Two more idle rounds: the loop is back to waiting, and ran no second tick.
        let idle = control.idle_rounds();
        wait_for("the loop to idle again", || {
            control.idle_rounds() >= idle + 2
        });
        assert_eq!(tick.stats().number(), before + 1);
        control.resume();
        assert!(!control.step(), "step is refused while running");
        let resumed_from = counter.0.load(Ordering::SeqCst);
        wait_for("ticks after resume", || {
            counter.0.load(Ordering::SeqCst) >= resumed_from + 3
        });
        tick.stop().unwrap();
        let counted = counter.0.load(Ordering::SeqCst);
        assert!(
            counted >= resumed_from + 3,
            "ticks resumed: {counted} vs {resumed_from}"
        );
    }

    #[test]
    fn stats_track_ticks_and_history() {
        let counter = Counter::default();
        let tick = TickLoop::spawn(500.0, counting_app(counter.clone())).unwrap();
        wait_for("twenty ticks", || tick.stats().number() >= 20);
        let snap = tick.stats().snapshot(false);
        assert!(snap.number >= 20);
        assert_eq!(snap.target_rate_hz.round(), 500.0);
        assert!(snap.p50_us <= snap.p99_us && snap.p99_us <= snap.max_us);
        let h = tick.stats().histogram();
        assert!(h.count >= 20 && h.buckets.last().unwrap().1 == h.count);
        assert!(h.buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative");
        assert!(h.sum_seconds > 0.0);
        let hist = tick.stats().history(10);
        assert_eq!(hist.len(), 10);
        assert!(hist.windows(2).all(|w| w[1].number == w[0].number + 1));
        assert!(hist.windows(2).all(|w| w[1].start_ms >= w[0].start_ms));
        tick.stop().unwrap();
        assert!(counter.0.load(Ordering::SeqCst) >= 20);
    }
}
