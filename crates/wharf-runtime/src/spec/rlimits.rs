//! rlimits, with the one clamping rule Wharf has: a process without CAP_SYS_RESOURCE cannot
//! give a child a hard limit above its own. Docker's default `nofile` is lowered to the daemon's
//! ceiling (nobody asked for that exact number); a limit the user asked for that cannot be
//! granted is refused at create rather than silently lowered.

use super::SpecError;
use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};
use std::collections::HashMap;

/// Docker's default `nofile` limit for containers (soft = hard).
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// A `--ulimit name=soft:hard` as the daemon received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The hard limits wharfd cannot exceed (empty when it holds CAP_SYS_RESOURCE).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RlimitCeiling(HashMap<String, u64>);

const NAMES: [(&str, PosixRlimitType, libc::__rlimit_resource_t); 16] = [
    ("core", PosixRlimitType::RlimitCore, libc::RLIMIT_CORE),
    ("cpu", PosixRlimitType::RlimitCpu, libc::RLIMIT_CPU),
    ("data", PosixRlimitType::RlimitData, libc::RLIMIT_DATA),
    ("fsize", PosixRlimitType::RlimitFsize, libc::RLIMIT_FSIZE),
    ("locks", PosixRlimitType::RlimitLocks, libc::RLIMIT_LOCKS),
    (
        "memlock",
        PosixRlimitType::RlimitMemlock,
        libc::RLIMIT_MEMLOCK,
    ),
    (
        "msgqueue",
        PosixRlimitType::RlimitMsgqueue,
        libc::RLIMIT_MSGQUEUE,
    ),
    ("nice", PosixRlimitType::RlimitNice, libc::RLIMIT_NICE),
    ("nofile", PosixRlimitType::RlimitNofile, libc::RLIMIT_NOFILE),
    ("nproc", PosixRlimitType::RlimitNproc, libc::RLIMIT_NPROC),
    ("rss", PosixRlimitType::RlimitRss, libc::RLIMIT_RSS),
    ("rtprio", PosixRlimitType::RlimitRtprio, libc::RLIMIT_RTPRIO),
    ("rttime", PosixRlimitType::RlimitRttime, libc::RLIMIT_RTTIME),
    (
        "sigpending",
        PosixRlimitType::RlimitSigpending,
        libc::RLIMIT_SIGPENDING,
    ),
    ("stack", PosixRlimitType::RlimitStack, libc::RLIMIT_STACK),
    ("as", PosixRlimitType::RlimitAs, libc::RLIMIT_AS),
];

fn lookup(name: &str) -> Option<(PosixRlimitType, libc::__rlimit_resource_t)> {
    NAMES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, r)| (*t, *r))
}

/// Bit number of CAP_SYS_RESOURCE in the capability sets (linux/capability.h).
const CAP_SYS_RESOURCE: u32 = 24;

impl RlimitCeiling {
    /// This process's ceiling: its hard limits, unless it may raise them.
    pub fn of_this_process() -> RlimitCeiling {
        let may_raise = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            })
            .is_none_or(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0);
        if may_raise {
            return RlimitCeiling::default();
        }
        let mut m = HashMap::new();
        for (name, _, resource) in NAMES {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the valid struct we pass.
            if unsafe { libc::getrlimit(resource, &mut cur) } == 0
                && cur.rlim_max != libc::RLIM_INFINITY
            {
                m.insert(name.to_string(), cur.rlim_max);
            }
        }
        RlimitCeiling(m)
    }

    /// A ceiling given explicitly (tests).
    pub fn with(limits: &[(&str, u64)]) -> RlimitCeiling {
        RlimitCeiling(limits.iter().map(|(n, v)| (n.to_string(), *v)).collect())
    }

    fn get(&self, name: &str) -> Option<u64> {
        self.0.get(name).copied()
    }
}

/// Checks a user's ulimits (names, soft ≤ hard, within the ceiling) in Docker's words.
pub fn validate_ulimits(ulimits: &[Ulimit], ceiling: &RlimitCeiling) -> Result<(), SpecError> {
    for u in ulimits {
        if lookup(&u.name).is_none() {
            return Err(SpecError::Ulimit(format!(
                "invalid ulimit type: {}",
                u.name
            )));
        }
        if u.soft > u.hard {
            return Err(SpecError::Ulimit(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        if u.hard < 0 && u.hard != -1 {
            return Err(SpecError::Ulimit(format!(
                "invalid ulimit {}: {} is negative",
                u.name, u.hard
            )));
        }
        let hard = as_rlim(u.hard);
        if let Some(max) = ceiling.get(&u.name) {
            if hard > max {
                return Err(SpecError::Ulimit(format!(
                    "cannot set ulimit {} to {}: wharfd's own hard limit is {max} and it lacks CAP_SYS_RESOURCE to raise it",
                    u.name, u.hard
                )));
            }
        }
    }
    Ok(())
}

/// -1 means unlimited, as in Docker.
fn as_rlim(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(libc::RLIM_INFINITY)
}

/// The process's rlimits: Docker's default `nofile` (lowered to the ceiling) unless the user
/// set `nofile`, then the user's, in their order.
pub fn rlimits(ulimits: &[Ulimit], ceiling: &RlimitCeiling) -> Result<Vec<PosixRlimit>, SpecError> {
    validate_ulimits(ulimits, ceiling)?;
    let mut out = Vec::new();
    if !ulimits.iter().any(|u| u.name == "nofile") {
        let n = ceiling
            .get("nofile")
            .map_or(DEFAULT_NOFILE, |c| c.min(DEFAULT_NOFILE));
        out.push(
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(n)
                .hard(n)
                .build()?,
        );
    }
    for u in ulimits {
        let Some((typ, _)) = lookup(&u.name) else {
            continue;
        };
        out.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(as_rlim(u.soft))
                .hard(as_rlim(u.hard))
                .build()?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn default_nofile_is_clamped_user_limits_are_not() {
        let free = RlimitCeiling::default();
        let r = rlimits(&[], &free).unwrap();
        assert_eq!((r[0].soft(), r[0].hard()), (DEFAULT_NOFILE, DEFAULT_NOFILE));

        let low = RlimitCeiling::with(&[("nofile", 524_288)]);
        let r = rlimits(&[], &low).unwrap();
        assert_eq!(r[0].hard(), 524_288);

        let r = rlimits(&[u("nofile", 100, 200), u("nproc", 10, 20)], &low).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].typ(), r[0].soft(), r[0].hard()),
            (PosixRlimitType::RlimitNofile, 100, 200)
        );
        assert_eq!(r[1].typ(), PosixRlimitType::RlimitNproc);

        let e = rlimits(&[u("nofile", 1, 600_000)], &low)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lacks CAP_SYS_RESOURCE"), "{e}");
        let e = rlimits(&[u("nofile", 20, 10)], &free)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ulimit soft limit must be less than or equal to hard limit: 20 > 10"
        );
        let e = rlimits(&[u("bogus", 1, 1)], &free).unwrap_err().to_string();
        assert_eq!(e, "invalid ulimit type: bogus");
        let r = rlimits(&[u("core", -1, -1)], &free).unwrap();
        assert_eq!(r[1].hard(), libc::RLIM_INFINITY);
    }
}
