//! Restart policies: `no`, `always`, `unless-stopped`, `on-failure[:N]`, with Docker's backoff.

use super::model::Status;
use super::{lock, Container, ContainerService};
use crate::error::EngineError;
use crate::timefmt;
use std::sync::Arc;
use std::time::Duration;
use wharf_api::container::{HostConfig, RestartPolicy};

pub const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff, as in Docker.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Docker's backoff (moby `restartmanager`): `pending` is what the next restart would wait,
/// `ran` how long the run that just ended lasted. Returns this restart's delay and the one
/// after it: 100 ms, doubling up to 1 min, and back to 100 ms after a run of 10 s or more.
pub(super) fn backoff(pending: Duration, ran: Duration) -> (Duration, Duration) {
    let now = if ran >= RESET_AFTER {
        FIRST_DELAY
    } else {
        pending
    };
    (now, (now * 2).min(MAX_DELAY))
}

/// How long a run lasted, from its RFC 3339 `StartedAt` and `FinishedAt` (zero when either
/// does not parse or they are out of order).
pub(super) fn run_length(started_at: &str, finished_at: &str) -> Duration {
    match (
        timefmt::parse_rfc3339(started_at),
        timefmt::parse_rfc3339(finished_at),
    ) {
        (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// Validates the policy at create, in dockerd's words.
pub fn validate(hc: &HostConfig) -> Result<(), EngineError> {
    let p = &hc.restart_policy;
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" | "on-failure" => {}
        other => {
            return Err(EngineError::invalid(format!(
                "invalid restart policy '{other}'"
            )))
        }
    }
    if p.maximum_retry_count < 0 {
        return Err(EngineError::invalid(
            "invalid value for maximum retry count",
        ));
    }
    if p.maximum_retry_count > 0 && p.name != "on-failure" {
        return Err(EngineError::invalid(format!(
            "maximum retry count cannot be used with restart policy '{}'",
            p.name
        )));
    }
    if hc.auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(EngineError::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(())
}

/// The policy in force: the last `docker update --restart`, else the one given at create.
pub fn effective_policy(c: &Container) -> RestartPolicy {
    lock(&c.state)
        .restart_policy
        .clone()
        .unwrap_or_else(|| c.spec.host_config.restart_policy.clone())
}

/// Whether a run that just ended with `code` is restarted.
fn wants_restart(p: &RestartPolicy, code: i64, restart_count: i64) -> bool {
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0 && (p.maximum_retry_count == 0 || restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

impl ContainerService {
    /// Called when a run ended: schedules the policy's restart after the backoff.
    pub(super) fn maybe_restart(&self, c: &Arc<Container>) {
        let st = c.state();
        if st.manually_stopped
            || c.events.borrow().removed
            || !wants_restart(&effective_policy(c), st.exit_code, st.restart_count)
        {
            return;
        }
        let ran = run_length(&st.started_at, &st.finished_at);
        let delay = {
            let mut b = lock(&c.backoff);
            let (now, next) = backoff(*b, ran);
            *b = next;
            now
        };
        c.set_restarting(true);
        let svc = self.handle();
        let c = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(svc) = svc.upgrade() else { return };
            let _op = c.op.lock().await;
            {
                let st = lock(&c.state);
                // A user start, stop, kill or rm in the meantime wins.
                if !c.is_restarting() || st.status != Status::Exited || st.manually_stopped {
                    // Tests wait for this line: the moment the restart would have happened.
                    tracing::debug!(container = %c.id(), "restart policy: pending restart cancelled");
                    return;
                }
            }
            lock(&c.state).restart_count += 1;
            let result = svc.start_locked(&c).await;
            c.set_restarting(false);
            match result {
                Ok(()) => svc.emit(&c, "restart", &[]),
                Err(e) => {
                    tracing::warn!(container = %c.id(), error = %e, "restart policy: start failed");
                    let _ = svc.persist_state(&c);
                    svc.maybe_restart(&c);
                }
            }
        });
    }

    /// A user stopped it: no policy restarts it, and a pending restart is cancelled.
    pub(super) fn mark_manually_stopped(&self, c: &Container, stopped: bool) {
        lock(&c.state).manually_stopped = stopped;
        c.set_restarting(false);
        if stopped {
            *lock(&c.backoff) = FIRST_DELAY;
        }
        let _ = self.persist_state(c);
    }

    /// At daemon start: `always` and `unless-stopped` containers that are not running start
    /// (`unless-stopped` only if no user stopped it), and an `on-failure` container whose backoff
    /// was cut short by the daemon's exit gets its restart.
    pub(super) fn start_by_policy(&self, c: &Arc<Container>) {
        let st = c.state();
        if st.status == Status::Running {
            return;
        }
        let p = &effective_policy(c);
        let start = match p.name.as_str() {
            "always" => true,
            "unless-stopped" => !st.manually_stopped,
            "on-failure" => {
                st.status == Status::Exited
                    && !st.manually_stopped
                    && wants_restart(p, st.exit_code, st.restart_count)
            }
            _ => false,
        };
        if start {
            if p.name == "always" {
                lock(&c.state).manually_stopped = false;
            }
            self.maybe_restart_now(c);
        }
    }

    fn maybe_restart_now(&self, c: &Arc<Container>) {
        c.set_restarting(true);
        *lock(&c.backoff) = Duration::ZERO;
        let svc = self.handle();
        let c = c.clone();
        tokio::spawn(async move {
            let Some(svc) = svc.upgrade() else { return };
            let _op = c.op.lock().await;
            if !c.is_restarting() {
                return;
            }
            let result = svc.start_locked(&c).await;
            c.set_restarting(false);
            *lock(&c.backoff) = FIRST_DELAY;
            if let Err(e) = result {
                tracing::warn!(container = %c.id(), error = %e, "starting by restart policy at daemon start");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(name: &str, max: i64, rm: bool) -> HostConfig {
        HostConfig {
            restart_policy: RestartPolicy {
                name: name.into(),
                maximum_retry_count: max,
                ..Default::default()
            },
            auto_remove: rm,
            ..Default::default()
        }
    }

    #[test]
    fn validation() {
        assert!(validate(&hc("always", 0, false)).is_ok());
        assert!(validate(&hc("on-failure", 3, false)).is_ok());
        assert!(validate(&hc("sometimes", 0, false)).is_err());
        assert!(validate(&hc("always", 3, false)).is_err());
        assert!(validate(&hc("always", 0, true)).is_err());
        assert!(validate(&hc("no", 0, true)).is_ok());
    }

    #[test]
    fn decisions() {
        let p = |n: &str, m| RestartPolicy {
            name: n.into(),
            maximum_retry_count: m,
            ..Default::default()
        };
        assert!(wants_restart(&p("always", 0), 0, 100));
        assert!(!wants_restart(&p("on-failure", 0), 0, 0));
        assert!(wants_restart(&p("on-failure", 2), 1, 1));
        assert!(!wants_restart(&p("on-failure", 2), 1, 2));
        assert!(!wants_restart(&p("no", 0), 1, 0));
    }

    /// The delays of consecutive restarts of runs that each end at once.
    fn delays_from(mut pending: Duration, runs: &[Duration]) -> Vec<Duration> {
        runs.iter()
            .map(|ran| {
                let (now, next) = backoff(pending, *ran);
                pending = next;
                now
            })
            .collect()
    }

    #[test]
    fn backoff_doubles_from_100ms_up_to_a_minute() {
        let ms = Duration::from_millis;
        let got = delays_from(FIRST_DELAY, &[Duration::ZERO; 12]);
        let want: Vec<Duration> = [
            100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn backoff_starts_over_after_a_run_of_10_seconds() {
        let ms = Duration::from_millis;
        let short = ms(9_999);
        let long = Duration::from_secs(10);
        let got = delays_from(FIRST_DELAY, &[short, short, short, long, short, short]);
        let want: Vec<Duration> = [100, 200, 400, 100, 200, 400].into_iter().map(ms).collect();
        assert_eq!(got, want);
        // From the cap too, and the cap is where a long-failing container stays.
        assert_eq!(backoff(MAX_DELAY, long), (ms(100), ms(200)));
        assert_eq!(backoff(MAX_DELAY, short), (MAX_DELAY, MAX_DELAY));
    }

    #[test]
    fn run_length_from_docker_timestamps() {
        assert_eq!(
            run_length(
                "2024-01-01T00:00:00.250000000Z",
                "2024-01-01T00:00:10.500000000Z"
            ),
            Duration::from_millis(10_250)
        );
        // Not finished yet (FinishedAt is the zero time) or unparsable: no reset.
        assert_eq!(
            run_length("2024-01-01T00:00:00Z", crate::timefmt::ZERO_TIME),
            Duration::ZERO
        );
        assert_eq!(run_length("", "2024-01-01T00:00:00Z"), Duration::ZERO);
    }
}
