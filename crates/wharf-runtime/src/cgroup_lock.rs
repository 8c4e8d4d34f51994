//! Pre-paying the RCU grace period of the first cgroup migration.
//!
//! Moving a task between cgroups (`cgroup.procs` writes, v1 and v2) takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When no migration happened in the last grace period
//! or so, that first waits for a full RCU grace period (8-20 ms measured on a 2-vCPU VM),
//! holding `cgroup_mutex`, so every cgroup mkdir or migration behind it waits too. libcontainer's
//! intermediate process pays this on every container start, and an exec's on every exec.
//!
//! [`CgroupLockWarmer::poke`] "moves" the caller into the cgroup it already is in: no effect
//! except that the lock is left in its writer-ready state for about one more grace period, so a
//! migration shortly after is cheap. [`CgroupLockKeeper`] pokes from a thread of its own every
//! few milliseconds for a while after each container start, so the starts of a burst (a
//! `docker run` loop, `compose up`) find the lock ready instead of waiting out a grace period
//! behind the one the previous poke began.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How often the keeper pokes at first. The lock goes idle about one grace period after the
/// last migration; here (HZ=250) it stayed ready with pokes 12 ms apart, also with both CPUs
/// busy, and went idle with 20 ms. A kernel with shorter grace periods (HZ=1000) shows up as
/// slow pokes, and the keeper then pokes more often (see [`next_interval`]).
pub const KEEP_INTERVAL: Duration = Duration::from_millis(8);
/// The keeper never pokes more often than this.
const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// A poke that took longer found the lock idle and waited out a grace period.
const SLOW_POKE: Duration = Duration::from_millis(1);
/// How long after the last [`CgroupLockKeeper::touch`] the lock is kept ready.
pub const KEEP_WINDOW: Duration = Duration::from_secs(3);

/// Our own `cgroup.procs`, opened once.
pub struct CgroupLockWarmer(File);

impl CgroupLockWarmer {
    /// Picks a hierarchy where a self-migration has no side effects (not cpuset, whose attach
    /// resets CPU affinity; pids first, whose attach only moves a counter). None if there is
    /// no writable one (not root, no cgroupfs): poking is an optimisation only.
    pub fn open() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        candidates(&text)
            .into_iter()
            .find_map(|d| {
                OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .ok()
            })
            .map(Self)
    }

    /// Blocks for up to one RCU grace period when the lock was idle, microseconds otherwise:
    /// call it from a thread that may block (in async code, `spawn_blocking`).
    pub fn poke(&self) -> io::Result<()> {
        // pid 0 is the writer itself (its whole thread group): already there, nothing moves.
        self.0.write_at(b"0", 0).map(|_| ())
    }
}

/// Keeps the lock writer-ready for [`KEEP_WINDOW`] after each [`touch`](Self::touch): a
/// thread pokes every [`KEEP_INTERVAL`] (each poke tens of microseconds once the lock is ready;
/// about 1% of a CPU while it keeps going) and sleeps while nothing is starting. The first
/// poke after a quiet period is the one that waits out the grace period, on that thread, while
/// the caller goes on.
pub struct CgroupLockKeeper {
    shared: Arc<Shared>,
    window: Duration,
}

struct Shared {
    state: Mutex<KeepState>,
    wake: Condvar,
}

#[derive(Default)]
struct KeepState {
    until: Option<Instant>,
    closed: bool,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CgroupLockKeeper {
    /// None without a writable `cgroup.procs` (see [`CgroupLockWarmer::open`]) or if the
    /// thread cannot be started: keeping the lock ready is an optimisation only.
    pub fn open() -> Option<Self> {
        let warmer = CgroupLockWarmer::open()?;
        Self::spawn(move || warmer.poke(), KEEP_INTERVAL, KEEP_WINDOW).ok()
    }

    fn spawn(
        mut poke: impl FnMut() -> io::Result<()> + Send + 'static,
        interval: Duration,
        window: Duration,
    ) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(KeepState::default()),
            wake: Condvar::new(),
        });
        let theirs = shared.clone();
        std::thread::Builder::new()
            .name("cgroup-lock".into())
            .spawn(move || keep(&theirs, &mut poke, interval))?;
        Ok(Self { shared, window })
    }

    /// A container (or exec) is about to start: keep the lock ready until `window` from now.
    /// Never blocks on the kernel.
    pub fn touch(&self) {
        let now = Instant::now();
        let mut st = guard(&self.shared.state);
        let idle = st.until.is_none_or(|u| u <= now);
        st.until = Some(now + self.window);
        if idle {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for CgroupLockKeeper {
    fn drop(&mut self) {
        guard(&self.shared.state).closed = true;
        self.shared.wake.notify_one();
    }
}

fn keep(shared: &Shared, poke: &mut dyn FnMut() -> io::Result<()>, mut interval: Duration) {
    loop {
        let mut first = false;
        {
            let mut st = guard(&shared.state);
            loop {
                if st.closed {
                    return;
                }
                if st.until.is_some_and(|u| u > Instant::now()) {
                    break;
                }
                first = true;
                st = shared.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
        }
        let t = Instant::now();
        if poke().is_err() {
            // The cgroup went away or refuses writes: nothing left to keep warm.
            return;
        }
        interval = next_interval(interval, t.elapsed(), first);
        std::thread::sleep(interval);
    }
}

/// The first poke of a burst is expected to wait out a grace period. A later slow one means
/// the lock went idle between two pokes: the grace periods of this kernel are shorter than the
/// interval, and every poke would then hold `cgroup_mutex` through one, stalling the starts it
/// is meant to speed up. Poke twice as often from then on.
fn next_interval(interval: Duration, took: Duration, first: bool) -> Duration {
    if !first && took > SLOW_POKE {
        (interval / 2).max(MIN_INTERVAL)
    } else {
        interval
    }
}

/// `cgroup.procs` directories to try, best first, from `/proc/self/cgroup` text.
fn candidates(proc_self_cgroup: &str) -> Vec<std::path::PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            continue;
        }
        if ctrls.is_empty() {
            v2.push(root.join(rel));
            v2.push(root.join("unified").join(rel));
        } else if !ctrls.starts_with("name=") && !ctrls.split(',').any(|c| c == "cpuset") {
            let dir = root.join(ctrls).join(rel);
            if ctrls == "pids" {
                v1.insert(0, dir);
            } else {
                v1.push(dir);
            }
        }
    }
    v1.extend(v2);
    v1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting_keeper(window: Duration) -> (CgroupLockKeeper, Arc<AtomicUsize>) {
        let pokes = Arc::new(AtomicUsize::new(0));
        let p = pokes.clone();
        let k = CgroupLockKeeper::spawn(
            move || {
                p.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
            Duration::from_millis(1),
            window,
        )
        .unwrap();
        (k, pokes)
    }

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn keeper_pokes_only_after_a_touch_and_stops_after_the_window() {
        let (k, pokes) = counting_keeper(Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(pokes.load(Ordering::SeqCst), 0, "idle keeper poked");
        k.touch();
        wait_for("pokes after a touch", || pokes.load(Ordering::SeqCst) >= 3);
        // Once the window has passed the thread sleeps: at most a poke already under way.
        std::thread::sleep(Duration::from_millis(250));
        let settled = pokes.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert!(pokes.load(Ordering::SeqCst) <= settled + 1);
        // A later touch wakes it again.
        k.touch();
        wait_for("pokes after a second touch", || {
            pokes.load(Ordering::SeqCst) >= settled + 3
        });
    }

    #[test]
    fn a_slow_poke_after_the_first_halves_the_interval() {
        let ms = Duration::from_millis;
        assert_eq!(next_interval(ms(8), ms(15), true), ms(8));
        assert_eq!(
            next_interval(ms(8), Duration::from_micros(40), false),
            ms(8)
        );
        assert_eq!(next_interval(ms(8), ms(4), false), ms(4));
        assert_eq!(next_interval(ms(1), ms(4), false), ms(1));
    }

    #[test]
    fn keeper_thread_ends_when_dropped() {
        let (k, pokes) = counting_keeper(Duration::from_secs(60));
        k.touch();
        wait_for("a poke", || pokes.load(Ordering::SeqCst) >= 1);
        drop(k);
        std::thread::sleep(Duration::from_millis(50));
        let after = pokes.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert!(pokes.load(Ordering::SeqCst) <= after + 1);
    }

    #[test]
    fn prefers_pids_skips_cpuset_and_named() {
        let c = candidates("9:name=systemd:/\n8:pids:/a\n7:cpu,cpuacct:/a\n3:cpuset:/a\n0::/a\n");
        assert_eq!(
            c,
            vec![
                PathBuf::from("/sys/fs/cgroup/pids/a"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/a"),
                PathBuf::from("/sys/fs/cgroup/a"),
                PathBuf::from("/sys/fs/cgroup/unified/a"),
            ]
        );
        assert!(candidates("1:pids:/../x\n").is_empty());
    }
}
