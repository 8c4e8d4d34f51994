//! `docker top`: the container's processes, read from /proc for its cgroup, so nothing needs to
//! exist inside the container. The default columns are `ps -ef`'s, as Docker shows them.

use super::{blocking, ContainerService};
use crate::error::{Cause, EngineError};
use wharf_api::container::TopResponse;

struct Proc {
    pid: i32,
    ppid: i32,
    uid: u32,
    start_ticks: u64,
    cpu_ticks: u64,
    tty_nr: i64,
    cmd: String,
}

fn read_proc(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after ")" start at field 3 (state).
    let ppid = f.get(1)?.parse().ok()?;
    let tty_nr = f.get(4)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let start_ticks = f.get(19)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cmd = if args.is_empty() {
        format!("[{comm}]")
    } else {
        args.join(" ")
    };
    Some(Proc {
        pid,
        ppid,
        uid,
        start_ticks,
        cpu_ticks: utime + stime,
        tty_nr,
        cmd,
    })
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn boot_time() -> i64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Seconds since boot.
fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// procps' `C`: integer percent of one CPU used over the process's lifetime.
fn cpu_percent(cpu_ticks: u64, start_ticks: u64, hz: u64, uptime_secs: f64) -> u64 {
    let lived = uptime_secs - start_ticks as f64 / hz as f64;
    if lived <= 0.0 {
        return 0;
    }
    (cpu_ticks as f64 / hz as f64 * 100.0 / lived) as u64
}

/// procps' TTY name from `tty_nr` (major in bits 8-15, minor in bits 0-7 and 20-31): `pts/N`
/// for the pty majors 136-143, `ttyN` for the consoles, `?` for none.
fn tty_name(tty_nr: u64) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => "?".into(),
    }
}

/// `ps -ef` rows for these pids.
fn ps_ef(pids: &[i32]) -> TopResponse {
    let hz = clock_ticks();
    let btime = boot_time();
    let up = uptime();
    let now = chrono::Local::now();
    let mut processes = Vec::new();
    for &pid in pids {
        let Some(p) = read_proc(pid) else { continue };
        let started = chrono::DateTime::from_timestamp(btime + (p.start_ticks / hz) as i64, 0)
            .map(|t| t.with_timezone(&chrono::Local));
        let stime = match started {
            Some(t) if t.date_naive() == now.date_naive() => t.format("%H:%M").to_string(),
            Some(t) => t.format("%b%d").to_string(),
            None => "?".into(),
        };
        let secs = p.cpu_ticks / hz;
        let time = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
        let tty = tty_name(p.tty_nr as u64);
        processes.push(vec![
            user_name(p.uid),
            p.pid.to_string(),
            p.ppid.to_string(),
            cpu_percent(p.cpu_ticks, p.start_ticks, hz, up).to_string(),
            stime,
            tty,
            time,
            p.cmd,
        ]);
    }
    TopResponse {
        titles: ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        processes,
    }
}

/// Any other `ps_args`: run the host's `ps` with them (as dockerd does) and keep the rows whose
/// PID column names a process of the container.
fn host_ps(ps_args: &str, pids: &[i32]) -> Result<TopResponse, EngineError> {
    let out = std::process::Command::new("ps")
        .args(ps_args.split_whitespace())
        .output()
        .map_err(|e| e.during("running ps"))?;
    if !out.status.success() {
        return Err(EngineError::internal(format!(
            "ps {ps_args} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let Some(pid_col) = titles.iter().position(|t| t == "PID") else {
        return Err(EngineError::internal(format!(
            "Couldn't find PID field in ps output for ps_args {ps_args:?}"
        )));
    };
    let n = titles.len();
    let mut processes = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < n {
            continue;
        }
        if f[pid_col].parse::<i32>().is_ok_and(|p| pids.contains(&p)) {
            let mut row: Vec<String> = f[..n - 1].iter().map(|s| s.to_string()).collect();
            row.push(f[n - 1..].join(" "));
            processes.push(row);
        }
    }
    Ok(TopResponse { titles, processes })
}

impl ContainerService {
    pub async fn top(&self, name: &str, ps_args: &str) -> Result<TopResponse, EngineError> {
        let c = self.resolve(name)?;
        if !c.is_running() {
            return Err(EngineError::NotRunning(c.id().to_string()));
        }
        let cgroups_path = self.cgroups_path(&c);
        let args = ps_args.trim().to_string();
        blocking(move || {
            let pids = wharf_runtime::cgroupfs::pids(&cgroups_path).map_err(|e| {
                EngineError::internal(format!("listing the container's processes: {e}"))
            })?;
            if args.is_empty() || args == "-ef" {
                Ok(ps_ef(&pids))
            } else {
                host_ps(&args, &pids)
            }
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_over_the_lifetime() {
        // 50 ticks of CPU at 100 Hz over a life of 2 s: 25 %.
        assert_eq!(cpu_percent(50, 1000, 100, 12.0), 25);
        assert_eq!(cpu_percent(0, 1000, 100, 12.0), 0);
        // Started "now" (clock skew): no division by zero.
        assert_eq!(cpu_percent(5, 1200, 100, 12.0), 0);
    }

    #[test]
    fn tty_names_like_procps() {
        assert_eq!(tty_name(0), "?");
        // /dev/pts/0 is 136:0; /dev/pts/300 is 137:44.
        assert_eq!(tty_name(136 << 8), "pts/0");
        assert_eq!(tty_name((137 << 8) | 44), "pts/300");
        // Minor above 255: its high bits sit at bit 20.
        assert_eq!(tty_name((136 << 8) | (1 << 20) | 2), "pts/258");
        assert_eq!(tty_name((4 << 8) | 1), "tty1");
        assert_eq!(tty_name((4 << 8) | 64), "ttyS0");
    }
}
