//! Which sysctls a container may set: only those the kernel scopes to a namespace the
//! container owns (the rules and words of runc's `validateSysctl`), so a container can never
//! change the host's settings.

use super::{NsMode, SpecError};

/// IPC-namespaced sysctls (exact names); `fs.mqueue.*` is the other IPC family.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checks one sysctl against the namespaces the container gets.
pub fn check_sysctl(name: &str, ipc: &NsMode, net: &NsMode, uts: &NsMode) -> Result<(), SpecError> {
    let refused = |why: &str| Err(SpecError::Sysctl(format!("sysctl {name:?} {why}")));
    if IPC_SYSCTLS.contains(&name) || name.starts_with("fs.mqueue.") {
        return match ipc {
            NsMode::Host => refused("not allowed in host ipc namespace"),
            _ => Ok(()),
        };
    }
    if name.starts_with("net.") {
        return match net {
            NsMode::Host => refused("not allowed in host network namespace"),
            _ => Ok(()),
        };
    }
    if name == "kernel.domainname" || name == "kernel.hostname" {
        return match uts {
            NsMode::Host => refused("not allowed in host UTS namespace"),
            // runc: set them through the spec's hostname/domainname instead.
            _ if name == "kernel.hostname" => {
                refused("is not allowed as it conflicts with the OCI \"hostname\" field")
            }
            _ => refused("is not allowed as it conflicts with the OCI \"domainname\" field"),
        };
    }
    refused("is not in a separate kernel namespace")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_only() {
        let p = NsMode::Private;
        assert!(check_sysctl("net.ipv4.ip_forward", &p, &p, &p).is_ok());
        assert!(check_sysctl("kernel.shmmax", &p, &p, &p).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", &p, &p, &p).is_ok());
        assert_eq!(
            check_sysctl("kernel.panic", &p, &p, &p)
                .unwrap_err()
                .to_string(),
            "sysctl \"kernel.panic\" is not in a separate kernel namespace"
        );
        assert!(check_sysctl("net.ipv4.ip_forward", &p, &NsMode::Host, &p)
            .unwrap_err()
            .to_string()
            .contains("host network namespace"));
        assert!(check_sysctl("kernel.sem", &NsMode::Host, &p, &p).is_err());
    }
}
