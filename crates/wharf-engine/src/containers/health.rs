//! Docker healthchecks: `Config.Healthcheck` merged with the image's, probes run as execs
//! through the exec machinery, `State.Health` (status, failing streak, last five results),
//! `health_status: ...` events.
//!
//! The decisions (merge, defaults, what a result does to the state, when the next probe runs)
//! are pure functions, tested below; the monitor loop only times, probes (through the
//! [`ProbeHook`], which runs the probe on the exec service) and records. One loop
//! runs per container run: it ends by itself when that run ends, so stop, kill, rm and a
//! restart need no hook. Like dockerd (which stops its monitor on pause), no probe runs while
//! the container is paused.

use super::model::Status;
use super::{blocking, lock, Container, ContainerService};
use crate::error::EngineError;
use crate::timefmt;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use wharf_api::container::{ContainerConfig, Health, HealthConfig, HealthcheckResult};

pub const STARTING: &str = "starting";
pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";
/// The `health` filter's value for containers without a healthcheck.
pub const NONE: &str = "none";

/// Docker's defaults (moby daemon/health.go).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_PERIOD: Duration = Duration::ZERO;
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
const MAX_LOG_ENTRIES: usize = 5;
/// Longer probe output is cut here and marked with "...".
pub const MAX_OUTPUT_LEN: usize = 4096;
/// dockerd's `containertypes.MinimumDuration`.
const MIN_DURATION_NS: i64 = 1_000_000;
/// A probe's result changes only the log and streak most of the time; writing those to SQLite
/// (fsync) after every probe of a 200 ms interval would be a disk flush five times a second
/// per container. Status changes are saved at once, the rest at most this often: like dockerd,
/// the log is persisted best-effort.
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// Runs one probe command in a container and gives its exit code and output, dockerd's -1 and
/// a message when it could not run or timed out. Probes are execs (so `exec_*` events appear as
/// with dockerd); the engine hands the exec service's hook (`crate::exec::probe`) to the
/// containers service at construction, so that the containers need not know the exec service.
pub type ProbeHook = Box<
    dyn Fn(Arc<Container>, Vec<String>, Duration) -> BoxFuture<'static, (i64, String)>
        + Send
        + Sync,
>;

/// A container's effective healthcheck, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// What the probe exec runs.
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

fn or_default(ns: i64, default: Duration) -> Duration {
    if ns <= 0 {
        default
    } else {
        Duration::from_nanos(ns.unsigned_abs())
    }
}

/// The healthcheck to run, or None for no healthcheck, `["NONE"]` or an unknown test type
/// (dockerd logs and ignores those).
pub fn settings(cfg: &ContainerConfig) -> Option<Settings> {
    let hc = cfg.healthcheck.as_ref()?;
    let (kind, rest) = hc.test.split_first()?;
    let cmd: Vec<String> = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => {
            let shell: Vec<String> = cfg
                .extra
                .get("Shell")
                .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.into_iter().chain(rest.iter().cloned()).collect()
        }
        _ => return None,
    };
    if cmd.is_empty() {
        return None;
    }
    Some(Settings {
        cmd,
        interval: or_default(hc.interval, DEFAULT_INTERVAL),
        timeout: or_default(hc.timeout, DEFAULT_TIMEOUT),
        start_period: or_default(hc.start_period, DEFAULT_START_PERIOD),
        start_interval: or_default(hc.start_interval, DEFAULT_START_INTERVAL),
        retries: if hc.retries <= 0 {
            DEFAULT_RETRIES
        } else {
            hc.retries
        },
    })
}

/// dockerd's merge at create: the container's fields override the image's one by one; an
/// empty Test inherits the image's (so `["NONE"]` is how a container disables it).
pub fn merge(user: Option<HealthConfig>, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    let Some(mut u) = user else {
        return image.cloned();
    };
    if let Some(i) = image {
        if u.test.is_empty() {
            u.test = i.test.clone();
        }
        for (mine, theirs) in [
            (&mut u.interval, i.interval),
            (&mut u.timeout, i.timeout),
            (&mut u.start_period, i.start_period),
            (&mut u.start_interval, i.start_interval),
            (&mut u.retries, i.retries),
        ] {
            if *mine == 0 {
                *mine = theirs;
            }
        }
    }
    Some(u)
}

/// dockerd's `validateHealthCheck`, in its words.
pub fn validate(hc: Option<&HealthConfig>) -> Result<(), EngineError> {
    let Some(hc) = hc else { return Ok(()) };
    for (name, v) in [
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ] {
        if v != 0 && v < MIN_DURATION_NS {
            return Err(EngineError::invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if hc.retries < 0 {
        return Err(EngineError::invalid(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    Ok(())
}

fn starting() -> Health {
    Health {
        status: STARTING.into(),
        failing_streak: 0,
        log: Vec::new(),
    }
}

/// At each start: back to `starting` with no streak; the log is kept, as dockerd does.
pub fn reset(cfg: &ContainerConfig, health: &mut Option<Health>) {
    if settings(cfg).is_none() {
        return;
    }
    match health {
        Some(h) => {
            h.status = STARTING.into();
            h.failing_streak = 0;
        }
        None => *health = Some(starting()),
    }
}

/// Applies one probe result (dockerd's `handleProbeResult`). `since_start` is how long after
/// the container's start the probe began: failures inside the start period do not count
/// while the container has never been healthy. True when the status changed.
pub fn record(
    h: &mut Health,
    result: HealthcheckResult,
    since_start: Duration,
    start_period: Duration,
    retries: i64,
) -> bool {
    let old = h.status.clone();
    if h.log.len() >= MAX_LOG_ENTRIES {
        let drop = h.log.len() + 1 - MAX_LOG_ENTRIES;
        h.log.drain(..drop);
    }
    let ok = result.exit_code == 0;
    h.log.push(result);
    if ok {
        h.failing_streak = 0;
        h.status = HEALTHY.into();
    } else if !(h.status == STARTING && since_start < start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = UNHEALTHY.into();
        }
    }
    h.status != old
}

/// The wait before the next probe (dockerd's `getInterval`): the start interval while still
/// starting inside the start period, and never past the end of the start period.
pub fn next_delay(s: &Settings, since_start: Duration, status: &str) -> Duration {
    if since_start >= s.start_period {
        return s.interval;
    }
    let remaining = s.start_period - since_start;
    if remaining < s.interval {
        return remaining;
    }
    if status == STARTING {
        s.start_interval
    } else {
        s.interval
    }
}

/// What `docker ps` shows after "Up ...": `(healthy)`, `(unhealthy)`, `(health: starting)`.
pub fn status_suffix(h: &Health) -> String {
    if h.status == STARTING {
        "health: starting".into()
    } else {
        h.status.clone()
    }
}

/// The `health` filter's value for a container.
pub fn filter_value(h: Option<&Health>) -> &str {
    h.map_or(NONE, |h| h.status.as_str())
}

pub fn valid_filter_value(v: &str) -> bool {
    matches!(v, STARTING | HEALTHY | UNHEALTHY | NONE)
}

/// Probe output, at most `MAX_OUTPUT_LEN` bytes, "..." appended when more was cut.
#[derive(Default)]
pub struct Output {
    buf: Vec<u8>,
    truncated: bool,
}

impl Output {
    pub fn push(&mut self, data: &[u8]) {
        let keep = (MAX_OUTPUT_LEN - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..keep]);
        if keep < data.len() {
            self.truncated = true;
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.buf).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// dockerd's result text for a probe that ran out of time (its output so far, if any).
pub fn timeout_message(timeout: Duration, output: &str) -> String {
    let t = go_duration(timeout);
    if output.is_empty() {
        format!("Health check exceeded timeout ({t})")
    } else {
        format!("Health check exceeded timeout ({t}): {output}")
    }
}

/// Go's `time.Duration.String()`, which dockerd uses in the timeout message ("1s", "200ms",
/// "1m30s").
pub fn go_duration(d: Duration) -> String {
    fn frac(v: u128, scale: u128) -> String {
        let (whole, rem) = (v / scale, v % scale);
        if rem == 0 {
            return whole.to_string();
        }
        let width = scale.ilog10() as usize;
        let digits = format!("{rem:0width$}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
    let ns = d.as_nanos();
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{}µs", frac(ns, 1_000)),
        1_000_000..=999_999_999 => format!("{}ms", frac(ns, 1_000_000)),
        _ => {
            let secs = ns / 1_000_000_000;
            let (h, m) = (secs / 3600, (secs / 60) % 60);
            let mut out = String::new();
            if h > 0 {
                out.push_str(&format!("{h}h"));
            }
            if h > 0 || m > 0 {
                out.push_str(&format!("{m}m"));
            }
            out.push_str(&frac(ns % 60_000_000_000, 1_000_000_000));
            out.push('s');
            out
        }
    }
}

fn since_start(started_at: &str) -> Duration {
    Duration::from_secs_f64(timefmt::seconds_since(started_at))
}

/// Resolves once run number `run` is over (or the container is gone).
async fn run_over(events: &mut watch::Receiver<super::RunEvents>, run: u64) {
    let _ = events.wait_for(|e| e.finished >= run || e.removed).await;
}

impl ContainerService {
    /// Starts probing the container's current run, if it has a healthcheck. Called wherever
    /// a run begins or is re-adopted after a daemon restart.
    pub(super) fn spawn_health_monitor(&self, c: &Arc<Container>) {
        let Some(settings) = settings(&c.spec.config) else {
            return;
        };
        let run = c.events.borrow().started;
        {
            // A container started by a wharfd without healthchecks has no Health yet.
            let mut st = lock(&c.state);
            if st.health.is_none() {
                st.health = Some(starting());
            }
        }
        let svc = self.handle();
        let c = c.clone();
        tokio::spawn(async move {
            let mut events = c.events.subscribe();
            let mut saved_at = Instant::now();
            loop {
                let (started_at, status) = {
                    let st = lock(&c.state);
                    let status = st.health.as_ref().map(|h| h.status.clone());
                    (st.started_at.clone(), status.unwrap_or_default())
                };
                let delay = next_delay(&settings, since_start(&started_at), &status);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = run_over(&mut events, run) => return,
                }
                if lock(&c.state).paused {
                    continue;
                }
                let Some(engine) = svc.upgrade() else { return };
                let probe_start = since_start(&started_at);
                let start = timefmt::now_rfc3339();
                let (exit_code, output) = tokio::select! {
                    r = (engine.probe)(c.clone(), settings.cmd.clone(), settings.timeout) => r,
                    // The container is gone; its probe's result no longer matters.
                    _ = run_over(&mut events, run) => return,
                };
                let result = HealthcheckResult {
                    start,
                    end: timefmt::now_rfc3339(),
                    exit_code,
                    output,
                };
                let changed = {
                    let mut st = lock(&c.state);
                    let over = c.events.borrow().finished >= run;
                    if over || st.status != Status::Running {
                        return;
                    }
                    let h = st.health.get_or_insert_with(starting);
                    let changed = record(
                        h,
                        result,
                        probe_start,
                        settings.start_period,
                        settings.retries,
                    );
                    changed.then(|| h.status.clone())
                };
                if changed.is_some() || saved_at.elapsed() >= SAVE_EVERY {
                    engine.save_health(&c).await;
                    saved_at = Instant::now();
                }
                if let Some(status) = changed {
                    engine.emit(&c, &format!("health_status: {status}"), &[]);
                }
            }
        });
    }

    /// Persists the state while holding its lock, and only while the run is current: a
    /// probe finishing as the container exits must not write "running" over the exit that
    /// `on_exit` records.
    async fn save_health(&self, c: &Arc<Container>) {
        let (ctx, c) = (self.ctx.clone(), c.clone());
        let saved = blocking(move || {
            let st = lock(&c.state);
            if st.status != Status::Running {
                return Ok(());
            }
            let json = serde_json::to_string(&*st).map_err(|e| e.to_string())?;
            ctx.db
                .update_container_state(c.id(), &json)
                .map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "saving health state");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(hc: Option<HealthConfig>) -> ContainerConfig {
        ContainerConfig {
            healthcheck: hc,
            ..Default::default()
        }
    }

    fn test(t: &[&str]) -> HealthConfig {
        HealthConfig {
            test: t.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn res(code: i64) -> HealthcheckResult {
        HealthcheckResult {
            exit_code: code,
            ..Default::default()
        }
    }

    /// Feeds exit codes at the given seconds after start; the status after each.
    fn run(codes: &[(i64, u64)], start_period: u64, retries: i64) -> (Health, Vec<String>) {
        let mut h = starting();
        let mut seen = Vec::new();
        for (code, at) in codes {
            record(
                &mut h,
                res(*code),
                Duration::from_secs(*at),
                Duration::from_secs(start_period),
                retries,
            );
            seen.push(h.status.clone());
        }
        (h, seen)
    }

    #[test]
    fn settings_defaults_and_test_kinds() {
        assert_eq!(settings(&cfg(None)), None);
        assert_eq!(settings(&cfg(Some(test(&["NONE"])))), None);
        assert_eq!(settings(&cfg(Some(test(&[])))), None);
        assert_eq!(settings(&cfg(Some(test(&["WHAT", "x"])))), None);
        assert_eq!(settings(&cfg(Some(test(&["CMD"])))), None);
        let s = settings(&cfg(Some(test(&["CMD-SHELL", "test -f /ok"])))).unwrap();
        assert_eq!(s.cmd, vec!["/bin/sh", "-c", "test -f /ok"]);
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.timeout, Duration::from_secs(30));
        assert_eq!(s.start_period, Duration::ZERO);
        assert_eq!(s.start_interval, Duration::from_secs(5));
        assert_eq!(s.retries, 3);
        let s = settings(&cfg(Some(HealthConfig {
            interval: 200_000_000,
            retries: 1,
            ..test(&["CMD", "true", "x"])
        })))
        .unwrap();
        assert_eq!(s.cmd, vec!["true", "x"]);
        assert_eq!(s.interval, Duration::from_millis(200));
        assert_eq!(s.retries, 1);
        // Config.Shell replaces /bin/sh -c.
        let mut c = cfg(Some(test(&["CMD-SHELL", "echo"])));
        c.extra
            .insert("Shell".into(), serde_json::json!(["/bin/ash", "-e", "-c"]));
        assert_eq!(
            settings(&c).unwrap().cmd,
            vec!["/bin/ash", "-e", "-c", "echo"]
        );
    }

    #[test]
    fn merge_field_by_field() {
        let image = HealthConfig {
            interval: 5,
            timeout: 6,
            retries: 7,
            ..test(&["CMD", "img"])
        };
        assert_eq!(merge(None, Some(&image)), Some(image.clone()));
        assert_eq!(merge(None, None), None);
        let m = merge(
            Some(HealthConfig {
                timeout: 60,
                ..Default::default()
            }),
            Some(&image),
        )
        .unwrap();
        assert_eq!(m.test, vec!["CMD", "img"]);
        assert_eq!((m.interval, m.timeout, m.retries), (5, 60, 7));
        // --no-healthcheck keeps NONE, which disables the image's check.
        let m = merge(Some(test(&["NONE"])), Some(&image)).unwrap();
        assert_eq!(m.test, vec!["NONE"]);
        assert_eq!(settings(&cfg(Some(m))), None);
    }

    #[test]
    fn validation_in_dockers_words() {
        assert!(validate(None).is_ok());
        let bad = HealthConfig {
            interval: 999,
            ..Default::default()
        };
        assert_eq!(
            validate(Some(&bad)).unwrap_err().message(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        let bad = HealthConfig {
            retries: -1,
            ..Default::default()
        };
        assert_eq!(
            validate(Some(&bad)).unwrap_err().message(),
            "Retries in Healthcheck cannot be negative"
        );
        let ok = HealthConfig {
            interval: 1_000_000,
            ..Default::default()
        };
        assert!(validate(Some(&ok)).is_ok());
    }

    #[test]
    fn success_is_healthy_and_resets_the_streak() {
        let (h, seen) = run(&[(1, 10), (1, 20), (0, 30)], 0, 3);
        assert_eq!(seen, vec![STARTING, STARTING, HEALTHY]);
        assert_eq!(h.failing_streak, 0);
    }

    #[test]
    fn unhealthy_after_retries_consecutive_failures() {
        let (h, seen) = run(&[(0, 1), (1, 2), (2, 3), (1, 4), (1, 5)], 0, 3);
        assert_eq!(seen, vec![HEALTHY, HEALTHY, HEALTHY, UNHEALTHY, UNHEALTHY]);
        assert_eq!(h.failing_streak, 4);
        // -1 (a timeout) is a failure like any other.
        let (_, seen) = run(&[(-1, 1)], 0, 1);
        assert_eq!(seen, vec![UNHEALTHY]);
    }

    #[test]
    fn start_period_failures_do_not_count_until_healthy() {
        // Inside a 10 s start period failures are free while starting...
        let (h, seen) = run(&[(1, 1), (1, 2), (1, 3), (1, 4)], 10, 2);
        assert_eq!(seen, vec![STARTING; 4]);
        assert_eq!(h.failing_streak, 0);
        // ...after it they count...
        let (_, seen) = run(&[(1, 1), (1, 11), (1, 12)], 10, 2);
        assert_eq!(seen, vec![STARTING, STARTING, UNHEALTHY]);
        // ...and once healthy, they count even inside it.
        let (h, seen) = run(&[(0, 1), (1, 2), (1, 3)], 10, 2);
        assert_eq!(seen, vec![HEALTHY, HEALTHY, UNHEALTHY]);
        assert_eq!(h.failing_streak, 2);
    }

    #[test]
    fn log_keeps_the_last_five_and_changes_are_reported() {
        let mut h = starting();
        let mut changes = Vec::new();
        for (i, code) in [0, 0, 1, 1, 1, 0, 0].iter().enumerate() {
            let r = HealthcheckResult {
                output: i.to_string(),
                exit_code: *code,
                ..Default::default()
            };
            if record(&mut h, r, Duration::from_secs(9), Duration::ZERO, 3) {
                changes.push(h.status.clone());
            }
        }
        assert_eq!(changes, vec![HEALTHY, UNHEALTHY, HEALTHY]);
        let outs: Vec<&str> = h.log.iter().map(|r| r.output.as_str()).collect();
        assert_eq!(outs, vec!["2", "3", "4", "5", "6"]);
    }

    #[test]
    fn reset_at_start_keeps_the_log() {
        let c = cfg(Some(test(&["CMD", "true"])));
        let mut h = None;
        reset(&c, &mut h);
        assert_eq!(h, Some(starting()));
        let mut h = Some(Health {
            status: UNHEALTHY.into(),
            failing_streak: 7,
            log: vec![res(1)],
        });
        reset(&c, &mut h);
        let h = h.unwrap();
        assert_eq!(
            (h.status.as_str(), h.failing_streak, h.log.len()),
            (STARTING, 0, 1)
        );
        let mut none = None;
        reset(&cfg(Some(test(&["NONE"]))), &mut none);
        assert_eq!(none, None);
    }

    #[test]
    fn intervals_follow_the_start_period() {
        let s = Settings {
            cmd: vec!["true".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            start_period: Duration::from_secs(60),
            start_interval: Duration::from_secs(5),
            retries: 3,
        };
        let at = Duration::from_secs;
        assert_eq!(next_delay(&s, at(0), STARTING), at(5));
        assert_eq!(next_delay(&s, at(0), HEALTHY), at(30));
        // Never past the end of the start period.
        assert_eq!(next_delay(&s, at(40), HEALTHY), at(20));
        assert_eq!(next_delay(&s, at(58), STARTING), at(2));
        assert_eq!(next_delay(&s, at(60), STARTING), at(30));
        let no_period = Settings {
            start_period: Duration::ZERO,
            ..s
        };
        assert_eq!(next_delay(&no_period, at(0), STARTING), at(30));
    }

    #[test]
    fn output_is_truncated_at_4096_bytes() {
        let mut o = Output::default();
        o.push(b"hello ");
        assert_eq!(o.text(), "hello ");
        o.push(&[b'x'; 5000]);
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT_LEN + 3);
        assert!(t.ends_with("xxx..."));
        o.push(b"more");
        assert_eq!(o.text().len(), MAX_OUTPUT_LEN + 3);
    }

    #[test]
    fn durations_like_go() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(ms(200)), "200ms");
        assert_eq!(go_duration(ms(1)), "1ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(5)), "5ns");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(30_000)), "30s");
        assert_eq!(go_duration(ms(90_000)), "1m30s");
        assert_eq!(go_duration(ms(3_600_000)), "1h0m0s");
    }

    #[test]
    fn shown_like_docker() {
        let mut h = starting();
        assert_eq!(status_suffix(&h), "health: starting");
        h.status = HEALTHY.into();
        assert_eq!(status_suffix(&h), "healthy");
        assert_eq!(filter_value(Some(&h)), HEALTHY);
        assert_eq!(filter_value(None), NONE);
        assert!(valid_filter_value("none") && !valid_filter_value("sick"));
    }
}
