//! Docker's capability rules (moby `oci/caps`): names with or without `CAP_`, in any case,
//! `ALL`, and how `--cap-add`/`--cap-drop` combine with the default set.

use super::{privileged_capabilities, SpecError, DEFAULT_CAPABILITIES};
use oci_spec::runtime::{Capabilities, Capability};

/// What the user wrote after normalising: `ALL`, or one capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cap {
    All,
    One(Capability),
}

/// Docker's `NormalizeLegacyCapabilities`: upper-case, `CAP_` prefixed, known to the kernel.
fn normalize(name: &str) -> Result<Cap, SpecError> {
    let upper = name.trim().to_uppercase();
    if upper == "ALL" {
        return Ok(Cap::All);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    serde_json::from_value::<Capability>(serde_json::Value::String(full.clone()))
        .map(Cap::One)
        .map_err(|_| SpecError::UnknownCapability(full))
}

/// Checks names without building anything (create-time validation).
pub fn validate_capabilities(names: &[String]) -> Result<(), SpecError> {
    names.iter().try_for_each(|n| normalize(n).map(|_| ()))
}

/// The capability set of a container: every capability wharfd may grant when privileged;
/// otherwise Docker's defaults, with `add` and `drop` applied the way dockerd applies them
/// (`ALL` in `add` grants everything but `drop`; `ALL` in `drop` keeps only `add`).
pub fn container_capabilities(
    privileged: bool,
    add: &[String],
    drop: &[String],
) -> Result<Capabilities, SpecError> {
    if privileged {
        return Ok(privileged_capabilities());
    }
    let add: Vec<Cap> = add.iter().map(|n| normalize(n)).collect::<Result<_, _>>()?;
    let drop: Vec<Cap> = drop
        .iter()
        .map(|n| normalize(n))
        .collect::<Result<_, _>>()?;
    let ones = |v: &[Cap]| -> Capabilities {
        v.iter()
            .filter_map(|c| match c {
                Cap::One(c) => Some(*c),
                Cap::All => None,
            })
            .collect()
    };
    let (add_set, drop_set) = (ones(&add), ones(&drop));
    let caps = if add.contains(&Cap::All) {
        // "All" means all that wharfd holds: asking the kernel for more fails the start.
        privileged_capabilities()
            .into_iter()
            .filter(|c| !drop_set.contains(c))
            .collect()
    } else if drop.contains(&Cap::All) {
        add_set
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop_set.contains(c))
            .chain(add_set)
            .collect()
    };
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_in_any_form() {
        assert_eq!(
            normalize("net_admin").unwrap(),
            Cap::One(Capability::NetAdmin)
        );
        assert_eq!(
            normalize("CAP_SYS_ADMIN").unwrap(),
            Cap::One(Capability::SysAdmin)
        );
        assert_eq!(normalize("all").unwrap(), Cap::All);
        let err = normalize("foo").unwrap_err().to_string();
        assert_eq!(err, "unknown capability: \"CAP_FOO\"");
    }

    #[test]
    fn add_and_drop_like_docker() {
        let c = container_capabilities(false, &s(&["NET_ADMIN"]), &s(&["CHOWN"])).unwrap();
        assert!(c.contains(&Capability::NetAdmin));
        assert!(!c.contains(&Capability::Chown));
        assert!(c.contains(&Capability::Kill));

        let c = container_capabilities(false, &s(&["KILL"]), &s(&["ALL"])).unwrap();
        assert_eq!(c, [Capability::Kill].into_iter().collect());

        let c = container_capabilities(false, &[], &s(&["all"])).unwrap();
        assert!(c.is_empty());

        let c = container_capabilities(false, &s(&["ALL"]), &s(&["MKNOD"])).unwrap();
        assert!(!c.contains(&Capability::Mknod));
        assert!(c.len() > DEFAULT_CAPABILITIES.len());

        let c = container_capabilities(false, &[], &[]).unwrap();
        assert_eq!(c, DEFAULT_CAPABILITIES.iter().copied().collect());
    }
}
