//! Which containers use which volumes.
//!
//! The containers service fills it when it records a container that mounts volumes (create,
//! and restore at start for every record it loads) and empties it when a record is deleted.
//! The volume service reads it: `rm` answers 409 naming the users, `dangling` and `prune` skip
//! volumes in use. It lives in memory only: the container records are the truth and restore
//! rebuilds it before any request is served.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

#[derive(Default)]
pub struct VolumeRefs {
    by_volume: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl VolumeRefs {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.by_volume.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, volume: &str, container: &str) {
        self.map()
            .entry(volume.to_string())
            .or_default()
            .insert(container.to_string());
    }

    /// Forgets every volume `container` used (its record is gone).
    pub fn remove_container(&self, container: &str) {
        self.map().retain(|_, users| {
            users.remove(container);
            !users.is_empty()
        });
    }

    /// The ids of the containers using `volume`, sorted.
    pub fn users(&self, volume: &str) -> Vec<String> {
        self.map()
            .get(volume)
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn in_use(&self, volume: &str) -> bool {
        self.map().get(volume).is_some_and(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_in_use_until_its_last_container_goes() {
        let refs = VolumeRefs::default();
        refs.add("data", "b");
        refs.add("data", "a");
        refs.add("logs", "a");
        assert_eq!(refs.users("data"), ["a", "b"]);
        refs.remove_container("a");
        assert_eq!(refs.users("data"), ["b"]);
        assert!(!refs.in_use("logs"));
        refs.remove_container("b");
        assert!(!refs.in_use("data"));
        assert!(refs.users("data").is_empty());
    }
}
