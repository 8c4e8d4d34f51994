//! Named volumes of the local driver: a directory `<data-root>/volumes/<name>/_data` and a
//! row in `meta.db`.
//!
//! The row is the commit point. Create makes the directory, then inserts the row; remove
//! deletes the row, then the directory. So a directory without a row is a create or a remove
//! that a crash cut short, and [`VolumeService::recover`] deletes it at start; a row always has
//! its directory.
//!
//! Which containers use a volume is [`refs::VolumeRefs`] (in `Ctx`): `remove` answers 409
//! naming them, `dangling` and `prune` skip them. Containers take a volume through
//! [`VolumeService::use_volume`], which creates it if needed and records the user in one step
//! under the service's lock, so a concurrent `rm` sees either no volume or a used one.
//!
//! The local driver's options (`type`, `device`, `o`; `size` only as zero) are checked at
//! create ([`opts`]) and stored in the row; a volume with them is mounted on its `_data` while
//! containers run with it ([`mount`]). Nothing is ever deleted through a mount
//! (`wharf_storage::mountinfo`): `rm` unmounts first and refuses while anything stays mounted below.
//! Other drivers are refused.

mod mount;
#[cfg(test)]
mod mount_tests;
mod pending;
use wharf_storage::mountinfo;
pub mod opts;
pub mod refs;
#[cfg(test)]
mod tests;
mod usage;

use crate::ctx::Ctx;
use crate::error::EngineError;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wharf_api::filters::{FilterSet, Filters};
use wharf_api::volume::{Volume, VolumeCreateRequest, VolumePruneResponse};
use wharf_storage::VolumeRecord;

pub const LOCAL_DRIVER: &str = "local";
/// The label dockerd puts on volumes created without a name; prune takes only these by default.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

pub const LIST_FILTERS: FilterSet = FilterSet {
    applied: &["dangling", "driver", "label", "name"],
    not_yet: &[],
};
pub const PRUNE_FILTERS: FilterSet = FilterSet {
    applied: &["all", "label", "label!"],
    not_yet: &[],
};

/// The running containers that mounted each volume with mount options (see [`mount`]).
type Active = BTreeMap<String, BTreeSet<String>>;

pub struct VolumeService {
    ctx: Arc<Ctx>,
    /// Held across each create, remove and prune, and briefly by mount and unmount, so that
    /// a name's row, directory and users change together with respect to other requests.
    lock: Mutex<Active>,
    /// One per volume name, taken before `lock` by mount, unmount and rm: mount(2) can block
    /// for long (an unreachable nfs server) and must hold up only its own volume.
    mounting: Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>,
}

type Result<T> = std::result::Result<T, EngineError>;

fn storage(op: &'static str) -> impl FnOnce(wharf_storage::StorageError) -> EngineError {
    move |e| EngineError::storage(op, e)
}

fn no_such_volume(name: &str) -> EngineError {
    EngineError::not_found(format!("get {name}: no such volume"))
}

/// moby's local driver: at least two characters, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.len() == 1 {
        return Err(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        );
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        ));
    }
    Ok(())
}

impl VolumeService {
    pub fn new(ctx: Arc<Ctx>) -> VolumeService {
        VolumeService {
            ctx,
            lock: Mutex::new(Active::new()),
            mounting: Mutex::default(),
        }
    }

    fn root(&self) -> PathBuf {
        self.ctx.data_root.join("volumes")
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Active> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The per-volume lock of `name` (see `mounting`).
    fn volume_lock(&self, name: &str) -> Arc<Mutex<()>> {
        self.mounting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    fn record(&self, name: &str) -> Result<VolumeRecord> {
        self.ctx
            .db
            .get_volume(name)
            .map_err(storage("reading a volume"))?
            .ok_or_else(|| no_such_volume(name))
    }

    /// Deletes every directory under `volumes/` that has no row: creates and removes a crash
    /// interrupted (unmounting what is mounted below first, and keeping a directory that
    /// cannot be unmounted). Runs before any request.
    pub fn recover(&self) -> Result<usize> {
        let root = self.root();
        std::fs::create_dir_all(&root)
            .map_err(|e| EngineError::io(format!("preparing {}", root.display()), e))?;
        let known: std::collections::BTreeSet<String> = self
            .ctx
            .db
            .list_volumes()
            .map_err(storage("listing volumes"))?
            .into_iter()
            .map(|v| v.name)
            .collect();
        let entries = std::fs::read_dir(&root)
            .map_err(|e| EngineError::io(format!("reading {}", root.display()), e))?;
        let mut cleaned = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
                continue;
            }
            if let Err(e) = mountinfo::unmount_all(&entry.path()) {
                tracing::warn!(volume = %name, error = %e, "leftover volume directory kept");
                continue;
            }
            remove_tree(&entry.path())?;
            cleaned += 1;
        }
        for name in &known {
            // A row without its directory cannot come from a crash (the directory is made
            // first and removed last); recreate it empty rather than serve a dangling path.
            let data = root.join(name).join("_data");
            if !data.exists() {
                tracing::warn!(volume = %name, "volume directory missing; recreating it empty");
                std::fs::create_dir_all(&data)
                    .map_err(|e| EngineError::io(format!("creating {}", data.display()), e))?;
            }
        }
        Ok(cleaned)
    }

    pub fn create(&self, req: VolumeCreateRequest) -> Result<Volume> {
        let _g = self.guard();
        self.create_locked(req)
    }

    fn create_locked(&self, req: VolumeCreateRequest) -> Result<Volume> {
        let driver = if req.driver.is_empty() {
            LOCAL_DRIVER.to_string()
        } else {
            req.driver.clone()
        };
        // `null` and `{}` are kept apart and answered back as sent, as dockerd does.
        let mut labels = req.labels;
        let name = if req.name.is_empty() {
            labels
                .get_or_insert_with(BTreeMap::new)
                .insert(ANONYMOUS_LABEL.into(), String::new());
            crate::ids::new_id().map_err(|e| EngineError::io("generating a volume name", e))?
        } else {
            req.name
        };
        if driver != LOCAL_DRIVER {
            return Err(EngineError::not_found(format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            )));
        }
        let opts = req.driver_opts;
        if let Some(existing) = self
            .ctx
            .db
            .get_volume(&name)
            .map_err(storage("reading a volume"))?
        {
            // dockerd answers the volume that exists, whatever labels or options were asked
            // for (it checks them only when its driver makes a new volume).
            return self.to_api(existing);
        }
        // dockerd's order: the driver, then the local driver checks the name, then options.
        validate_name(&name).map_err(|m| EngineError::invalid(format!("create {name}: {m}")))?;
        opts::validate(opts.as_ref().unwrap_or(&BTreeMap::new()))
            .map_err(|m| EngineError::invalid(format!("create {name}: {m}")))?;
        let dir = self.root().join(&name);
        let data = dir.join("_data");
        std::fs::create_dir_all(&data)
            .map_err(|e| EngineError::io(format!("creating {}", data.display()), e))?;
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::VOLUME_DIR_MADE);
        let rec = VolumeRecord {
            name: name.clone(),
            driver: driver.clone(),
            labels: json(&labels)?,
            options: json(&opts)?,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        if let Err(e) = self.ctx.db.insert_volume(&rec) {
            let _ = remove_tree(&dir);
            return Err(EngineError::storage("recording a volume", e));
        }
        self.ctx.events.volume("create", &name, &driver);
        self.to_api(rec)
    }

    pub fn inspect(&self, name: &str) -> Result<Volume> {
        match self
            .ctx
            .db
            .get_volume(name)
            .map_err(storage("reading a volume"))?
        {
            Some(rec) => self.to_api(rec),
            None => Err(no_such_volume(name)),
        }
    }

    /// A container's claim on a volume: the named volume (created with `labels` if it does not
    /// exist, as `docker run -v name:/path` does) or, for an empty `name`, a new anonymous one;
    /// `container` is recorded as its user before the lock is released.
    pub fn use_volume(
        &self,
        name: &str,
        driver: &str,
        labels: BTreeMap<String, String>,
        container: &str,
    ) -> Result<Volume> {
        let labels = (!labels.is_empty()).then_some(labels);
        self.use_volume_with(name, driver, labels, None, container)
    }

    /// [`use_volume`](Self::use_volume) with the create's labels and driver options as a
    /// `--mount type=volume,volume-opt=…` gives them (`None`: none sent; they apply only when
    /// the volume is new, as dockerd's).
    pub fn use_volume_with(
        &self,
        name: &str,
        driver: &str,
        labels: Option<BTreeMap<String, String>>,
        driver_opts: Option<BTreeMap<String, String>>,
        container: &str,
    ) -> Result<Volume> {
        let req = VolumeCreateRequest {
            name: name.to_string(),
            driver: driver.to_string(),
            labels,
            driver_opts,
            ..Default::default()
        };
        let _g = self.guard();
        let v = self.create_locked(req)?;
        self.ctx.volume_refs.add(&v.name, container);
        Ok(v)
    }

    /// Where a volume's data lives on the host: what a container's mount binds.
    pub fn data_path(&self, name: &str) -> PathBuf {
        self.root().join(name).join("_data")
    }

    pub fn list(&self, filters: &Filters) -> Result<Vec<Volume>> {
        filters.check(&LIST_FILTERS)?;
        let dangling = if filters.contains("dangling") {
            Some(filters.bool_or_default("dangling", true)?)
        } else {
            None
        };
        let mut out = Vec::new();
        for rec in self
            .ctx
            .db
            .list_volumes()
            .map_err(storage("listing volumes"))?
        {
            let v = self.to_api(rec)?;
            let by_name = filters.get("name");
            let by_driver = filters.get("driver");
            if dangling.is_none_or(|d| d != self.ctx.volume_refs.in_use(&v.name))
                && (by_name.is_empty() || by_name.iter().any(|n| v.name.contains(n.as_str())))
                && (by_driver.is_empty() || by_driver.contains(&v.driver))
                && filters.match_labels(v.labels.as_ref().unwrap_or(&BTreeMap::new()))
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// `force` makes an unknown name a success, as dockerd's.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let vl = self.volume_lock(name);
        let _v = vl.lock().unwrap_or_else(|p| p.into_inner());
        let g = self.guard();
        match self.remove_locked(&g, name)? {
            Some(_) => Ok(()),
            None if force => Ok(()),
            None => Err(no_such_volume(name)),
        }
    }

    /// Unmounts (a volume with mount options), deletes the row (the commit point), then the
    /// directory; the size it held when asked. A volume some container uses is refused in
    /// dockerd's words, with their ids; so is one still mounted by a container (`active`).
    fn remove_locked(&self, active: &Active, name: &str) -> Result<Option<u64>> {
        let Some(rec) = self
            .ctx
            .db
            .get_volume(name)
            .map_err(storage("reading a volume"))?
        else {
            return Ok(None);
        };
        let mut users: BTreeSet<String> = self.ctx.volume_refs.users(name).into_iter().collect();
        users.extend(active.get(name).into_iter().flatten().cloned());
        if !users.is_empty() {
            let users: Vec<String> = users.into_iter().collect();
            return Err(EngineError::conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        self.unmount_for_remove(name, &rec.options)?;
        let dir = self.root().join(name);
        let size = usage::dir_size(&dir.join("_data")).unwrap_or(0);
        if !self
            .ctx
            .db
            .delete_volume(name)
            .map_err(storage("removing a volume"))?
        {
            return Ok(None);
        }
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::VOLUME_RECORD_DELETED);
        // The row is gone: a failure here leaves a directory the next start deletes.
        if let Err(e) = remove_tree(&dir) {
            tracing::warn!(volume = %name, error = %e, "volume directory left for the next start");
        }
        self.ctx.events.volume("destroy", name, &rec.driver);
        Ok(Some(size))
    }

    /// Unreferenced local volumes without options; only anonymous ones unless `all=true`.
    pub fn prune(&self, filters: &Filters) -> Result<VolumePruneResponse> {
        filters.check(&PRUNE_FILTERS)?;
        let all = filters.bool_or_default("all", false)?;
        let g = self.guard();
        let mut rep = VolumePruneResponse::default();
        for rec in self
            .ctx
            .db
            .list_volumes()
            .map_err(storage("listing volumes"))?
        {
            let labels = parse_opt_map(&rec.labels)?.unwrap_or_default();
            let options = parse_opt_map(&rec.options)?.unwrap_or_default();
            // dockerd's prune never takes a volume with options, `all` or not: its data is
            // not local (a bind, an nfs export, a tmpfs), so nothing would be reclaimed.
            if rec.driver != LOCAL_DRIVER || !options.is_empty() {
                continue;
            }
            if !all && !labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !filters.match_labels(&labels) || !not_labels(filters, &labels) {
                continue;
            }
            if self.ctx.volume_refs.in_use(&rec.name) || mount::is_used(&g, &rec.name) {
                continue;
            }
            // As dockerd: a volume that cannot go (something still mounted below it) is
            // logged and skipped; the prune goes on.
            match self.remove_locked(&g, &rec.name) {
                Ok(Some(size)) => {
                    rep.space_reclaimed += size;
                    rep.volumes_deleted.push(rec.name);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(volume = %rec.name, error = %e, "prune skipped a volume"),
            }
        }
        self.ctx.events.volume_prune(rep.space_reclaimed);
        Ok(rep)
    }

    fn to_api(&self, rec: VolumeRecord) -> Result<Volume> {
        Ok(Volume {
            created_at: rec.created,
            mountpoint: self
                .root()
                .join(&rec.name)
                .join("_data")
                .to_string_lossy()
                .into_owned(),
            labels: parse_opt_map(&rec.labels)?,
            options: parse_opt_map(&rec.options)?,
            driver: rec.driver,
            name: rec.name,
            scope: "local".into(),
            usage_data: None,
        })
    }
}

/// `label!`: none of these `key` or `key=value` may match.
fn not_labels(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    !filters
        .get("label!")
        .iter()
        .any(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
}

fn json(m: &Option<BTreeMap<String, String>>) -> Result<String> {
    serde_json::to_string(m).map_err(|e| EngineError::internal(format!("encoding a volume: {e}")))
}

/// A stored label or option map: `null` (none sent) or an object.
fn parse_opt_map(s: &str) -> Result<Option<BTreeMap<String, String>>> {
    serde_json::from_str(s).map_err(|e| EngineError::internal(format!("reading a volume: {e}")))
}

/// Deletes a volume's tree, never through a mount: with anything mounted below, nothing is
/// deleted (the caller unmounts first; a mount that stays is a bind whose data is not ours).
fn remove_tree(p: &Path) -> Result<()> {
    if let Some(m) = mountinfo::mounts_under(p).first() {
        return Err(EngineError::internal(format!(
            "refusing to remove {}: {} is mounted below it",
            p.display(),
            m.display()
        )));
    }
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(EngineError::io(format!("removing {}", p.display()), e)),
    }
}
