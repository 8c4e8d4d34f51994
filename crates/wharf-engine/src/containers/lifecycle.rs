//! create, start, exit handling, stop, kill, restart, remove, rename, wait, attach, logs.

use super::config;
use super::joins::{check_platform, default_net_sysctls};
use super::logconfig::{self, LogSettings};
use super::logs::{self, LogFiles, LogFilter};
use super::model::{ContainerRuntimeState, ContainerSpec, Status};
use super::rootfs::{
    hostname_file, hosts_file, resolv_conf_with, resolve_groups, resolve_user, DnsOverrides,
};
use super::shim::{self, LaunchArgs};
use super::signals::parse_signal;
use super::{blocking, lock, Container, ContainerService, RunEvents};
use crate::error::{Cause, EngineError};
use crate::{ids, names, timefmt};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use wharf_api::container::{ContainerCreateRequest, ContainerCreateResponse, WaitResponse};
use wharf_backend::{
    AttachOptions, AttachSession, LogsOptions, LogsSession, StdinSink, WaitCondition,
};
use wharf_runtime::shim_proto::{Request, StartErrorKind};
use wharf_runtime::spec::{build_spec, NsMode};

const DEFAULT_STOP_TIMEOUT: i64 = 10;

fn internal(what: &str, e: impl Cause) -> EngineError {
    e.during(what)
}

impl ContainerService {
    /// Creation cannot be cancelled half-way: it runs to its end in a task of its own, so a
    /// client that hangs up (the server drops this future) never leaves a directory, snapshot
    /// or record without the rest. Then, unlike dockerd, which keeps a container nobody will
    /// hear of, the task removes what it made: an abandoned create leaves nothing. A body
    /// still arriving is not read on, so a hang-up mid-body makes nothing at all. Past the
    /// answer (the client gone while it is written) the container stays, listed and
    /// removable like any other.
    pub async fn create(
        &self,
        name: Option<String>,
        platform: Option<String>,
        req: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, EngineError> {
        let me = self
            .handle()
            .upgrade()
            .ok_or_else(|| EngineError::internal("the daemon is shutting down"))?;
        let (answer, asked) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let created = me.create_whole(name, platform, req).await;
            if let Err(Ok(abandoned)) = answer.send(created) {
                tracing::info!(
                    id = %abandoned.id,
                    "creating the container: the client went away; removing the container it asked for"
                );
                if let Err(e) = me.remove(&abandoned.id, true, true).await {
                    tracing::warn!(id = %abandoned.id, error = %e, "cannot remove the container of an abandoned create");
                }
            }
        });
        asked.await.map_err(|_| {
            EngineError::internal("creating the container: the create ended without an answer")
        })?
    }

    /// Runs `work` to its end in a task of its own, whatever becomes of the caller's future.
    async fn run_whole<T, F>(
        &self,
        what: &str,
        work: impl FnOnce(Arc<ContainerService>) -> F,
    ) -> Result<T, EngineError>
    where
        F: std::future::Future<Output = Result<T, EngineError>> + Send + 'static,
        T: Send + 'static,
    {
        let me = self
            .handle()
            .upgrade()
            .ok_or_else(|| EngineError::internal("the daemon is shutting down"))?;
        tokio::spawn(work(me)).await.map_err(|e| e.during(what))?
    }

    async fn create_whole(
        &self,
        name: Option<String>,
        platform: Option<String>,
        req: ContainerCreateRequest,
    ) -> Result<ContainerCreateResponse, EngineError> {
        self.warm_cgroup_lock();
        let warnings = Vec::new();
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = names::validate(&n).map_err(EngineError::invalid)?;
                if let Ok(existing) = self.resolve(&format!("/{n}")) {
                    if existing.name() == n {
                        return Err(name_conflict(&n, existing.id()));
                    }
                }
                n
            }
            None => self.unused_name(),
        };
        if req.config.image.is_empty() {
            return Err(EngineError::invalid("Config.Image is required"));
        }
        let body = serde_json::to_value(&req).map_err(|e| internal("reading the request", e))?;
        crate::honour::check(crate::honour::create::TABLE, "Config", &body)?;
        crate::honour::values::create(&req, &body)?;
        let image = self.images.resolve(&req.config.image)?;
        check_platform(platform.as_deref(), &req.config.image, &image.config)?;
        let id = ids::new_id().map_err(|e| internal("generating an id", e))?;
        let host_hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| ids::short(&id).to_string());
        let merged = config::merge(
            &req,
            &image.config.config,
            &config::MergeContext {
                id: &id,
                host: &self.ctx.host,
                host_hostname: &host_hostname,
            },
        )?;
        for d in merged.host_config.resources.devices.iter().flatten() {
            super::devices::resolve(d).map_err(EngineError::invalid)?;
        }
        let keep_log = logconfig::of_host_config(&merged.host_config)? != LogSettings::None;
        let resolved = self.resolve_mounts(&id, &merged).await?;

        let spec = ContainerSpec {
            id: id.clone(),
            created: timefmt::now_rfc3339(),
            path: merged.path,
            args: merged.args,
            image_id: image.record.id.clone(),
            config: merged.config,
            host_config: merged.host_config,
            networking_config: merged.networking_config,
            snapshot_key: format!("{}{id}", super::SNAPSHOT_PREFIX),
            mounts: resolved.mounts.clone(),
            mount_extras: resolved.extras.clone(),
        };

        let state = ContainerRuntimeState {
            started_at: timefmt::ZERO_TIME.into(),
            finished_at: timefmt::ZERO_TIME.into(),
            ..Default::default()
        };
        let record = wharf_storage::ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            image_id: spec.image_id.clone(),
            config: serde_json::to_string(&spec).map_err(|e| internal("encoding config", e))?,
            state: serde_json::to_string(&state).map_err(|e| internal("encoding state", e))?,
            created: spec.created.clone(),
        };
        let ctx = self.ctx.clone();
        let exec_root = self.ctx.exec_root.clone();
        let data_dir = self.data_dir(&id);
        let log = self.log_path(&id);
        let snapshot_key = spec.snapshot_key.clone();
        let parent = image.record.chain_id.clone();
        let volumes = self.volumes.clone();
        let exec_dir = self.exec_dir(&id);
        let rootfs = self.rootfs_dir(&id);
        let copy = crate::mounts::resolve::needs_copy(&resolved).then(|| resolved.clone());
        let cid = id.clone();
        let saved = blocking(move || {
            let undo = || {
                let _ = ctx.snaps.remove(&snapshot_key);
                let _ = std::fs::remove_dir_all(&data_dir);
            };
            std::fs::create_dir_all(&data_dir)
                .map_err(|e| internal(&format!("creating {}", data_dir.display()), e))?;
            // The shim appends to this; creating it now lets an attach before start watch it.
            // `none` has no log file.
            if keep_log {
                if let Err(e) = std::fs::File::create(&log) {
                    undo();
                    return Err(internal("creating the log file", e));
                }
            }
            if let Err(e) = ctx.snaps.prepare(&snapshot_key, Some(&parent)) {
                undo();
                return Err(internal("preparing the container's writable layer", e));
            }
            if let Some(r) = copy {
                // dockerd copies the image's content into empty volumes at create, so a
                // container that never starts (`--volumes-from` a data container) has it too.
                if let Err(e) = populate_volumes(&ctx, &volumes, &cid, &r, &snapshot_key, &rootfs) {
                    super::release_run_dir(&exec_dir);
                    undo();
                    return Err(e);
                }
                super::release_run_dir(&exec_dir);
            }
            // The record is the container: a crash before it leaves files no record owns,
            // which restore tears down (`collect_orphans`).
            crate::failpoint::hit(&exec_root, crate::failpoint::CREATE_PREPARED);
            if let Err(e) = ctx.db.insert_container(&record) {
                undo();
                return Err(if e.is_conflict() {
                    name_conflict(&record.name, "")
                } else {
                    internal("saving the container", e)
                });
            }
            Ok(())
        })
        .await?;
        if let Err(e) = saved {
            self.release_mounts(&id, &resolved, true).await;
            if e.kind() == wharf_api::ErrorKind::Conflict {
                let existing = self
                    .resolve(&name)
                    .map(|c| c.id().to_string())
                    .unwrap_or_default();
                return Err(name_conflict(&name, &existing));
            }
            return Err(e);
        }
        let c = Arc::new(Container::new(spec, name, state));
        self.insert(c.clone());
        self.emit(&c, "create", &[]);
        Ok(ContainerCreateResponse { id, warnings })
    }

    /// The container's mounts, volumes claimed (`crate::mounts::resolve`).
    async fn resolve_mounts(
        &self,
        id: &str,
        merged: &config::Merged,
    ) -> Result<crate::mounts::resolve::Resolved, EngineError> {
        let hc = merged.host_config.clone();
        let asked = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v| !v.is_empty());
        let none = !asked(&hc.binds)
            && hc.mounts.as_ref().is_none_or(|m| m.is_empty())
            && !asked(&hc.volumes_from)
            && merged.config.volumes.as_ref().is_none_or(|v| v.is_empty());
        if none {
            // The common create: no hop to the blocking pool.
            return Ok(Default::default());
        }
        let config_volumes: Vec<String> = merged
            .config
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        // The donors of `VolumesFrom`, looked up now (their mounts are fixed at create).
        let mut donors = std::collections::HashMap::new();
        for spec in hc.volumes_from.iter().flatten() {
            if let Ok((name, _)) = crate::mounts::parse::parse_volumes_from(spec) {
                let found = self.resolve(&name).map(|d| crate::mounts::resolve::Donor {
                    mounts: d.spec.mounts.clone(),
                    extras: d.spec.mount_extras.clone(),
                });
                donors.insert(name, found);
            }
        }
        let (ctx, volumes, id) = (self.ctx.clone(), self.volumes.clone(), id.to_string());
        blocking(move || {
            let donor = |name: &str| match donors.get(name) {
                Some(Ok(d)) => Ok(crate::mounts::resolve::Donor {
                    mounts: d.mounts.clone(),
                    extras: d.extras.clone(),
                }),
                Some(Err(e)) => Err(EngineError::invalid(e.message())),
                None => Err(EngineError::no_such_container(name)),
            };
            crate::mounts::resolve::resolve(
                &volumes,
                &ctx.volume_refs,
                &id,
                &hc,
                &config_volumes,
                &ctx.data_root.to_string_lossy(),
                &donor,
            )
        })
        .await?
    }

    /// Forgets the container as a user of its volumes; `remove_anonymous` also removes its
    /// anonymous volumes (`rm -v`, `--rm`, a create that failed).
    async fn release_mounts(
        &self,
        id: &str,
        r: &crate::mounts::resolve::Resolved,
        remove_anonymous: bool,
    ) {
        if !r.mounts.iter().any(|m| m.r#type == "volume") {
            // No volume, no user recorded: nothing to release.
            return;
        }
        let (ctx, volumes, id, r) = (
            self.ctx.clone(),
            self.volumes.clone(),
            id.to_string(),
            r.clone(),
        );
        let _ = blocking(move || {
            crate::mounts::resolve::release(&volumes, &ctx.volume_refs, &id, &r, remove_anonymous)
        })
        .await;
    }

    /// `rm -v`'s intent, written before the record is deleted: each anonymous volume marked.
    async fn mark_anonymous_volumes(&self, c: &Container) -> Result<(), EngineError> {
        let names: Vec<String> = c
            .spec
            .mounts
            .iter()
            .filter(|m| {
                m.r#type == "volume"
                    && c.spec
                        .mount_extras
                        .get(&m.destination)
                        .is_some_and(|e| e.anonymous)
            })
            .map(|m| m.name.clone())
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let volumes = self.volumes.clone();
        blocking(move || names.iter().try_for_each(|n| volumes.mark_for_removal(n))).await?
    }

    /// A run's end (or failed start): each of its volumes is unmounted.
    pub(super) async fn unmount_volumes(&self, c: &Container) {
        if !c.spec.mounts.iter().any(|m| m.r#type == "volume") {
            return;
        }
        let (ctx, volumes, id, mounts) = (
            self.ctx.clone(),
            self.volumes.clone(),
            c.id().to_string(),
            c.spec.mounts.clone(),
        );
        let _ = blocking(move || {
            crate::mounts::start::unmount_all(&volumes, &ctx.events, &id, &mounts)
        })
        .await;
    }

    fn unused_name(&self) -> String {
        for retry in 0..16u32 {
            let n = names::generate(retry / 4);
            if self.resolve(&format!("/{n}")).is_err() {
                return n;
            }
        }
        names::generate(1)
    }

    /// hostname, hosts and resolv.conf are derived from the config at every start, so they live
    /// in the per-boot exec dir (a tmpfs, where writing them costs no disk flush).
    fn write_etc_files(&self, c: &Container) -> Result<(), EngineError> {
        let dir = self.exec_dir(c.id());
        let (cfg, hc) = (&c.spec.config, &c.spec.host_config);
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let extra: Vec<(String, String)> = hc
            .extra_hosts
            .iter()
            .flatten()
            .map(|h| config::parse_extra_host(h, self.ctx.host_gateway_ip))
            .collect::<Result<_, _>>()?;
        let none: Vec<String> = Vec::new();
        let dns = DnsOverrides {
            servers: hc.dns.as_deref().unwrap_or(&none),
            search: hc.dns_search.as_deref().unwrap_or(&none),
            options: hc.dns_options.as_deref().unwrap_or(&none),
        };
        for (file, body) in [
            ("hostname", hostname_file(&cfg.hostname)),
            ("hosts", hosts_file(&cfg.hostname, &cfg.domainname, &extra)),
            ("resolv.conf", resolv_conf_with(&host_resolv, dns)),
        ] {
            let body = body.map_err(EngineError::invalid)?;
            wharf_fs::atomic_write(&dir.join(file), body.as_bytes())
                .map_err(|e| internal(&format!("writing {file}"), e))?;
        }
        Ok(())
    }

    /// Like a create, a start runs to its end in a task of its own: a client that hung up
    /// would otherwise cut it between mounting the rootfs, launching the shim and saving
    /// `Running`, and leave a live process under a record that says `created`.
    pub async fn start(&self, name: &str) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        self.run_whole("starting the container", move |me| async move {
            let _op = c.op.lock().await;
            if c.is_running() {
                return Err(EngineError::not_modified());
            }
            me.mark_manually_stopped(&c, false);
            me.start_locked(&c).await
        })
        .await
    }

    pub(super) async fn start_locked(&self, c: &Arc<Container>) -> Result<(), EngineError> {
        self.warm_cgroup_lock();
        match c.state().status {
            Status::Running => return Err(EngineError::not_modified()),
            Status::Removing | Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id()
                )))
            }
            _ => {}
        }
        let id = c.id().to_string();
        let t0 = std::time::Instant::now();
        let exec_dir = self.exec_dir(&id);
        let rootfs = self.rootfs_dir(&id);
        let bundle = exec_dir.join("bundle");
        let prepared;
        {
            let ctx = self.ctx.clone();
            let (exec_dir, rootfs, bundle) = (exec_dir.clone(), rootfs.clone(), bundle.clone());
            let key = c.spec.snapshot_key.clone();
            let runtime_state = self.ctx.exec_root.join("runtime").join(&id);
            let shareable_shm = (c.spec.host_config.ipc_mode == "shareable")
                .then(|| super::joins::shm_mount(c.spec.host_config.shm_size));
            let live_readers = matches!(self.log_files(c)?.0, LogSettings::None)
                .then(|| self.live_log_readers(&id));
            let volumes = self.volumes.clone();
            let (cid, user_mounts, extras) = (
                id.clone(),
                c.spec.mounts.clone(),
                c.spec.mount_extras.clone(),
            );
            prepared = blocking(move || {
                // Leftovers of an earlier run (exit.json, socket) would confuse the new shim.
                super::release_run_dir(&exec_dir);
                // Runtime state of a run that ended without its shim cleaning up (a crash, or a
                // reboot without a fresh /run) makes the runtime refuse "container already exists".
                let _ = std::fs::remove_dir_all(&runtime_state);
                std::fs::create_dir_all(&bundle)
                    .map_err(|e| internal("creating the bundle dir", e))?;
                if let Some(target) = live_readers {
                    // The shim opens `<log>.readers`; followers pin the file that outlives runs.
                    let link =
                        wharf_runtime::logpin::readers_path(&exec_dir.join(logconfig::LIVE_FILE));
                    std::os::unix::fs::symlink(target, link)
                        .map_err(|e| internal("linking the live log's readers file", e))?;
                }
                std::fs::create_dir_all(&rootfs)
                    .map_err(|e| internal("creating the rootfs dir", e))?;
                let mounts = ctx
                    .snaps
                    .mounts(&key)
                    .map_err(|e| internal("reading the container's layers", e))?;
                wharf_storage::mount_all(&mounts, &rootfs)
                    .map_err(|e| internal("mounting the container's rootfs", e))?;
                if let Some(shm) = shareable_shm {
                    let dir = exec_dir.join(super::SHM_DIR);
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| internal("creating the shareable /dev/shm", e))?;
                    if let Err(e) = wharf_storage::mount_all(&[shm], &dir) {
                        super::release_run_dir(&exec_dir);
                        return Err(internal("mounting the shareable /dev/shm", e));
                    }
                }
                // Last: on an error it unmounts the volumes it mounted itself. Its errors
                // fail the start like a launch's (recorded, `--rm` honoured).
                Ok(crate::mounts::start::prepare(
                    &volumes,
                    &ctx.events,
                    &cid,
                    &user_mounts,
                    &extras,
                    &ctx.data_root,
                )
                .inspect_err(|_| super::release_run_dir(&exec_dir)))
            })
            .await??;
        }
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return self.start_failed(c, 128, e).await,
        };

        let mounted = t0.elapsed();
        // Stamped before the process can print, so `logs --since <StartedAt>` includes its
        // first line.
        let started_at = timefmt::now_rfc3339();
        let launched = self.launch(c, &rootfs, &bundle, prepared).await;
        tracing::debug!(
            container = %id,
            mount_us = mounted.as_micros() as u64,
            total_us = t0.elapsed().as_micros() as u64,
            "start: rootfs mounted and shim launched"
        );
        match launched {
            Ok(pid) => {
                crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::START_LAUNCHED);
                {
                    let mut st = lock(&c.state);
                    st.status = Status::Running;
                    st.pid = i64::from(pid);
                    st.exit_code = 0;
                    st.error.clear();
                    st.started_at = started_at;
                    // Like dockerd, FinishedAt keeps the previous run's end (restart shows it).
                    st.boot_id = self.ctx.boot_id.clone();
                    super::health::reset(&c.spec.config, &mut st.health);
                }
                c.events.send_modify(|e| e.started += 1);
                self.emit(c, "start", &[]);
                self.connect_stdin(c);
                // Watch for the exit before the commit below: a short-lived process may
                // already be gone, and its exit need not wait for the state's fsync.
                self.spawn_monitor(c.clone());
                let saved = self.persist_settled(c).await;
                tracing::debug!(container = %id, total_us = t0.elapsed().as_micros() as u64, "start: state saved");
                if let Err(e) = &saved {
                    // Not saved (a full disk): a start the client is told failed must not
                    // run on, to be stopped only at the next daemon start.
                    tracing::warn!(container = %id, error = %e, "start: running state not saved; stopping the process");
                    let _ = self.send_signal(c, libc::SIGKILL).await;
                    Self::wait_run_end(c, Some(Duration::from_secs(30))).await;
                }
                saved
            }
            Err((code, err)) => {
                // Not only files: a shim that started the process before the launch failed
                // (its report lost) must not be left running under a stopped record.
                self.reclaim_run(&id).await;
                self.unmount_volumes(c).await;
                self.start_failed(c, code, err).await
            }
        }
    }

    /// A start that failed: its exit code and error recorded, an `--rm` container removed.
    async fn start_failed(
        &self,
        c: &Arc<Container>,
        code: i64,
        err: EngineError,
    ) -> Result<(), EngineError> {
        {
            let mut st = lock(&c.state);
            st.exit_code = code;
            st.error = err.message().clone();
        }
        let _ = self.persist_state(c);
        c.events.send_modify(|e| e.exit_code = code);
        if c.spec.host_config.auto_remove {
            // Docker removes an --rm container whose start failed, which is what a
            // client waiting on `condition=removed` needs to finish.
            if let Err(e) = self.remove_locked(c, true).await {
                tracing::warn!(container = %c.id(), error = %e, "auto-remove after a failed start");
            }
        }
        Err(err)
    }

    /// Saves the container's state until what is saved is what is current. The start's
    /// "running" and an exit recorded meanwhile by `on_exit` race to the database; whichever
    /// commits first, the one that finds the state changed after its commit writes it again,
    /// so the last commit is always the latest state. Runs on the blocking pool (an fsync).
    async fn persist_settled(&self, c: &Arc<Container>) -> Result<(), EngineError> {
        let db = self.ctx.db.clone();
        let c = c.clone();
        blocking(move || loop {
            let st = c.state();
            let json = serde_json::to_string(&st).map_err(|e| internal("encoding state", e))?;
            db.update_container_state(c.id(), &json)
                .map_err(|e| internal(&format!("saving state of container {}", c.id()), e))?;
            let now =
                serde_json::to_string(&c.state()).map_err(|e| internal("encoding state", e))?;
            if now == json {
                return Ok(());
            }
        })
        .await?
    }

    /// Builds the spec and runs the shim. On failure: the exit code Docker would record and
    /// the error to return.
    async fn launch(
        &self,
        c: &Container,
        rootfs: &Path,
        bundle: &Path,
        mounts: crate::mounts::start::Prepared,
    ) -> Result<i32, (i64, EngineError)> {
        let fail = |e: EngineError| (128, e);
        let t0 = std::time::Instant::now();
        let cfg = &c.spec.config;
        let hc = &c.spec.host_config;
        self.write_etc_files(c).map_err(fail)?;
        let user = resolve_user(rootfs, &cfg.user).map_err(|m| fail(EngineError::invalid(m)))?;
        let group_add = resolve_groups(rootfs, hc.group_add.as_deref().unwrap_or(&[]))
            .map_err(|m| fail(EngineError::invalid(m)))?;
        let (pid, ipc, shm) = self.namespaces_to_join(c).map_err(fail)?;
        let mut devices = Vec::new();
        for d in hc.resources.devices.iter().flatten() {
            devices.extend(super::devices::resolve(d).map_err(|m| fail(EngineError::invalid(m)))?);
        }
        let private_pid = pid == NsMode::Private;
        let mut input = config::spec_input(
            &c.spec,
            &self.effective_resources(c),
            config::StartContext {
                rootfs: rootfs.to_path_buf(),
                etc_dir: self.exec_dir(c.id()),
                user,
                group_add,
                cgroups_path: self.cgroups_path(c),
                pid,
                ipc,
                shm,
                devices,
                rlimit_ceiling: self.ctx.host.rlimit_ceiling.clone(),
                default_net_sysctls: default_net_sysctls(),
                mounts,
                hook_binary: self.ctx.shim_path.clone(),
            },
        )
        .map_err(fail)?;
        // Docker's rule: an init only makes sense as PID 1 of a namespace of the container's own.
        if hc.init == Some(true) && private_pid {
            super::init::wrap(&self.ctx.data_root, &mut input).map_err(fail)?;
        }
        let spec = build_spec(&input).map_err(|e| fail(EngineError::invalid(e.to_string())))?;
        let json = serde_json::to_vec(&spec).map_err(|e| fail(internal("encoding spec", e)))?;
        wharf_fs::atomic_write(&bundle.join("config.json"), &json)
            .map_err(|e| fail(internal("writing config.json", e)))?;
        let exec_dir = self.exec_dir(c.id());
        let runtime_root = self.ctx.exec_root.join("runtime");
        let (log, log_max_size, log_attrs_file) = self.shim_log_args(c).map_err(fail)?;
        let prepared = t0.elapsed();
        let result = shim::launch(LaunchArgs {
            shim_path: &self.ctx.shim_path,
            id: c.id(),
            bundle,
            state_dir: &exec_dir,
            log: &log.path,
            log_max_size,
            log_max_file: log.max_file,
            log_attrs_file: log_attrs_file.as_deref(),
            runtime_root: &runtime_root,
            stdin: cfg.open_stdin,
            tty: cfg.tty,
            console_size: c.spec.host_config.console_size(),
        })
        .await
        .map_err(|e| fail(internal("starting wharf-shim", e)))?;
        // The shim's part: launcher, libcontainer's create (cgroups, namespaces, mounts) and
        // start, until the process runs or failed to.
        tracing::debug!(
            container = %c.id(),
            prepare_us = prepared.as_micros() as u64,
            shim_us = (t0.elapsed() - prepared).as_micros() as u64,
            "start: spec written and shim reported"
        );
        if result.ok {
            return result
                .pid
                .ok_or_else(|| fail(EngineError::internal("shim reported no pid")));
        }
        let msg = result.error.unwrap_or_else(|| "unknown error".into());
        let code = match result.error_kind {
            Some(StartErrorKind::NotFound) => 127,
            Some(StartErrorKind::NotExecutable) => 126,
            _ => 128,
        };
        let msg = format!(
            "failed to create task for container: OCI runtime create failed: wharf-shim: unable to start container process: {msg}: unknown"
        );
        // dockerd's setExitCodeFromError: a command that cannot be found or run is the
        // client's (400); the kernel refusing the exec (E2BIG, ENOMEM) is "unknown" (500).
        let err = match result.error_kind {
            Some(StartErrorKind::Refused) => EngineError::internal(msg),
            _ => EngineError::invalid(msg),
        };
        Err((code, err))
    }

    /// The files a container's output is read from: its json-file log, or with `none` the
    /// live buffer in its state dir.
    fn log_files(&self, c: &Container) -> Result<(LogSettings, LogFiles), EngineError> {
        let settings = logconfig::of_host_config(&c.spec.host_config)?;
        let files = match &settings {
            LogSettings::JsonFile(j) => {
                let path = self.log_path(c.id());
                LogFiles {
                    readers: wharf_runtime::logpin::readers_path(&path),
                    path,
                    max_file: j.max_file,
                }
            }
            // The live file goes with its run's state dir; its readers file lives as long as
            // the container, so an attach before the start can pin the run's first files.
            LogSettings::None => LogFiles {
                path: self.exec_dir(c.id()).join(logconfig::LIVE_FILE),
                max_file: logconfig::LIVE_MAX_FILE,
                readers: self.live_log_readers(c.id()),
            },
        };
        Ok((settings, files))
    }

    /// What the shim is told about the log: the files, `max-size` (0 = never rotate) and a
    /// file in the state dir with the `attrs` of every line, as json-file evaluates them when
    /// the container starts (a file: they can hold env values, which a command line shows to
    /// every local user).
    fn shim_log_args(
        &self,
        c: &Container,
    ) -> Result<(LogFiles, u64, Option<std::path::PathBuf>), EngineError> {
        let (settings, files) = self.log_files(c)?;
        let LogSettings::JsonFile(j) = settings else {
            return Ok((files, logconfig::LIVE_MAX_SIZE, None));
        };
        let cfg = &c.spec.config;
        let labels = cfg.labels.clone().unwrap_or_default();
        let env = cfg.env.clone().unwrap_or_default();
        let name = c.name();
        let log_path = files.path.display().to_string();
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let attrs = j.attrs(&logconfig::ContainerInfo {
            id: c.id(),
            name: &name,
            image_id: &c.spec.image_id,
            image_name: &cfg.image,
            path: &c.spec.path,
            args: &c.spec.args,
            labels: &labels,
            env: &env,
            log_path: &log_path,
            hostname: &hostname,
        });
        let attrs_file = if attrs.is_empty() {
            None
        } else {
            let json = serde_json::to_vec(&attrs).map_err(|e| internal("encoding log attrs", e))?;
            let f = self.exec_dir(c.id()).join("log-attrs.json");
            wharf_fs::atomic_write_mode(&f, &json, 0o600)
                .map_err(|e| internal("writing log-attrs.json", e))?;
            Some(f)
        };
        Ok((files, j.max_size.unwrap_or(0), attrs_file))
    }

    /// Moves stdin written by attachers (including before start) into the running process.
    fn connect_stdin(&self, c: &Arc<Container>) {
        if !c.spec.config.open_stdin {
            return;
        }
        let Some(mut rx) = lock(&c.stdin).pending.take() else {
            // Nobody attached stdin yet; the first attacher connects it.
            return;
        };
        let dir = self.exec_dir(c.id());
        tokio::spawn(async move {
            let mut conn = match shim::open_stdin(&dir).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "could not connect the container's stdin");
                    return;
                }
            };
            super::stdin::pump_to_shim(&mut rx, &mut conn).await;
        });
    }

    /// A sender for this container's stdin, creating the channel when needed.
    fn stdin_sender(&self, c: &Arc<Container>) -> mpsc::Sender<Bytes> {
        let mut slot = lock(&c.stdin);
        if let Some(tx) = slot.sender.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        // The slot keeps a sender for the whole run: stdin stays open between attachers and
        // closes only on an explicit close (StdinOnce) or when the process exits.
        let (tx, rx) = mpsc::channel::<Bytes>(256);
        slot.sender = Some(tx.clone());
        slot.pending = Some(rx);
        drop(slot);
        if c.is_running() {
            self.connect_stdin(c);
        }
        tx
    }

    pub(super) fn spawn_monitor(self: &ContainerService, c: Arc<Container>) {
        let svc = self.handle();
        tokio::spawn(async move {
            let Some(svc) = svc.upgrade() else { return };
            svc.spawn_health_monitor(&c);
            let dir = svc.exec_dir(c.id());
            let status = shim::wait_exit(&dir).await;
            svc.on_exit(&c, status).await;
        });
    }

    /// Records an exit and releases what the run held.
    pub(crate) async fn on_exit(
        &self,
        c: &Arc<Container>,
        status: Option<wharf_runtime::shim_proto::ExitStatus>,
    ) {
        let id = c.id().to_string();
        let t0 = std::time::Instant::now();
        let auto_remove = c.spec.host_config.auto_remove;
        if !auto_remove {
            // Awaited: a start right after must not race this unmount on the same path. An
            // auto-removed container never starts again, so its removal tears down in the
            // background instead (the unmount can wait out an RCU grace period).
            if status.is_none() {
                // The shim vanished (killed) without reaping: the container's processes may
                // still run in its cgroups, which nothing else would ever remove. Before any
                // restart policy can start a new run here.
                if let super::reclaim::Reclaimed::Stopped(_) = self.reclaim_run(&id).await {
                    tracing::warn!(container = %id, "a shim that seemed gone still answered; stopped its container");
                }
            } else {
                // Followers open the run's last files and let go of them, then they go.
                c.events.send_modify(|e| e.output_ended = e.started);
                let exec_dir = self.exec_dir(&id);
                let _ = blocking(move || super::release_run_dir(&exec_dir)).await;
            }
        }
        // The run's volumes are released whatever became of it.
        self.unmount_volumes(c).await;
        let oom = status.as_ref().is_some_and(|s| s.oom_killed);
        let code = {
            let mut st = lock(&c.state);
            st.status = Status::Exited;
            st.pid = 0;
            st.paused = false;
            match status {
                Some(s) => {
                    st.exit_code = i64::from(s.exit_code);
                    st.finished_at = s.finished_at;
                    st.oom_killed = s.oom_killed;
                }
                None => {
                    st.exit_code = 255;
                    st.finished_at = timefmt::now_rfc3339();
                    st.error = "the container's shim exited without an exit status".into();
                }
            }
            st.exit_code
        };
        // An auto-removed container's row is deleted next; a crash before that finds exit.json
        // again at restore and removes it then.
        if !auto_remove {
            if let Err(e) = self.persist_state(c) {
                tracing::error!(container = %id, error = %e, "saving exit state");
            }
        }
        // Stdin is per run.
        *lock(&c.stdin) = Default::default();
        c.events.send_modify(|e| {
            e.finished = e.started.max(e.finished + 1);
            e.output_ended = e.output_ended.max(e.finished);
            e.exit_code = code;
        });
        if oom {
            // Docker's order: oom, then die.
            self.emit(c, "oom", &[]);
        }
        self.emit(c, "die", &[("exitCode", code.to_string())]);
        if !auto_remove {
            self.maybe_restart(c);
        }
        tracing::debug!(container = %id, code, cleanup_us = t0.elapsed().as_micros() as u64, "container exited");
        if auto_remove {
            let _op = c.op.lock().await;
            if let Err(e) = self.remove_locked(c, true).await {
                tracing::warn!(container = %id, error = %e, "auto-remove failed");
            }
            tracing::debug!(container = %id, total_us = t0.elapsed().as_micros() as u64, "auto-removed");
        }
    }

    async fn signal(&self, c: &Container, sig: i32) -> Result<(), EngineError> {
        let sent = self.send_signal(c, sig).await;
        if sent.is_ok() {
            self.emit(c, "kill", &[("signal", sig.to_string())]);
        }
        self.thaw_after_signal(c).await;
        sent
    }

    async fn send_signal(&self, c: &Container, sig: i32) -> Result<(), EngineError> {
        let dir = self.exec_dir(c.id());
        let sent = shim::request(
            &dir,
            &Request::Kill {
                signal: sig,
                all: false,
            },
        )
        .await;
        let Err(e) = sent else { return Ok(()) };
        // A shim that is finishing (its init just died) closes its socket before wharfd has
        // processed the exit: that container is not running any more, whatever our state says.
        let exiting = shim::read_exit(&dir).is_some()
            || matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
            );
        if exiting {
            Self::wait_run_end(c, Some(Duration::from_secs(5))).await;
        }
        if c.is_running() {
            Err(internal(&format!("Cannot kill container: {}", c.id()), e))
        } else {
            Err(not_running(c.id()))
        }
    }

    /// Waits until the run that is current now has finished, at most `timeout`.
    async fn wait_run_end(c: &Container, timeout: Option<Duration>) -> bool {
        let mut rx = c.events.subscribe();
        let target = rx.borrow().started;
        let fut = async {
            loop {
                if rx.borrow_and_update().finished >= target || !c.is_running() {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
            None => {
                fut.await;
                true
            }
        }
    }

    pub async fn kill(&self, name: &str, signal: Option<String>) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        let sig = parse_signal(signal.as_deref().unwrap_or("SIGKILL"))?;
        // No op lock: a kill must get through while a stop is still waiting out its timeout.
        if c.is_restarting() {
            self.mark_manually_stopped(&c, true);
            return Ok(());
        }
        if !c.is_running() {
            return Err(not_running(c.id()));
        }
        if matches!(sig, libc::SIGKILL | libc::SIGTERM | libc::SIGINT) {
            self.mark_manually_stopped(&c, true);
        }
        self.signal(&c, sig).await?;
        if sig == libc::SIGKILL {
            Self::wait_run_end(&c, Some(Duration::from_secs(10))).await;
        }
        Ok(())
    }

    pub async fn stop(
        &self,
        name: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        if c.is_restarting() {
            // Stopping a container that waits out its restart backoff cancels the restart; a
            // restart already under way (it holds the op lock) is let finish, then stopped.
            self.mark_manually_stopped(&c, true);
            let _op = c.op.lock().await;
            if c.is_running() {
                self.stop_locked(&c, signal, timeout).await?;
            }
            // dockerd's stop succeeds on a restarting container, and says so, kill or not.
            self.emit(&c, "stop", &[]);
            return Ok(());
        }
        let _op = c.op.lock().await;
        if !c.is_running() {
            return Err(EngineError::not_modified());
        }
        self.mark_manually_stopped(&c, true);
        self.stop_locked(&c, signal, timeout).await?;
        self.emit(&c, "stop", &[]);
        Ok(())
    }

    async fn stop_locked(
        &self,
        c: &Arc<Container>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let sig_name = signal
            .filter(|s| !s.is_empty())
            .or_else(|| c.spec.config.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into());
        let sig = parse_signal(&sig_name)?;
        let t = timeout
            .or(c.spec.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        if sig != libc::SIGKILL {
            let _ = self.signal(c, sig).await;
            let grace = if t < 0 {
                None
            } else {
                Some(Duration::from_secs(t as u64))
            };
            if Self::wait_run_end(c, grace).await {
                return Ok(());
            }
        }
        let _ = self.signal(c, libc::SIGKILL).await;
        if Self::wait_run_end(c, Some(Duration::from_secs(30))).await {
            Ok(())
        } else {
            Err(EngineError::internal(format!(
                "Cannot stop container {}: it did not exit after SIGKILL",
                c.id()
            )))
        }
    }

    pub async fn restart(
        &self,
        name: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        let _op = c.op.lock().await;
        if c.is_running() {
            self.mark_manually_stopped(&c, true);
            self.stop_locked(&c, signal, timeout).await?;
            // dockerd's restart is its stop then its start, events included.
            self.emit(&c, "stop", &[]);
        }
        self.mark_manually_stopped(&c, false);
        self.start_locked(&c).await?;
        self.emit(&c, "restart", &[]);
        Ok(())
    }

    /// `remove_volumes` (`rm -v`) also removes the container's anonymous volumes.
    pub async fn remove(
        &self,
        name: &str,
        force: bool,
        remove_volumes: bool,
    ) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        if c.is_restarting() && !force {
            return Err(EngineError::conflict(format!(
                "You cannot remove a restarting container {}. Stop the container before attempting removal or force remove",
                c.id()
            )));
        }
        if force {
            // No restart policy may bring it back while it is being removed.
            self.mark_manually_stopped(&c, true);
        }
        let _op = c.op.lock().await;
        if c.is_running() {
            if !force {
                return Err(EngineError::conflict(format!(
                    "You cannot remove a running container {}. Stop the container before attempting removal or force remove",
                    c.id()
                )));
            }
            match self.signal(&c, libc::SIGKILL).await {
                // It ended on its own meanwhile: nothing left to kill.
                Err(e) if e.kind() == wharf_api::ErrorKind::Conflict && !c.is_running() => {}
                other => other?,
            }
            if !Self::wait_run_end(&c, Some(Duration::from_secs(30))).await {
                return Err(EngineError::internal(format!(
                    "Could not kill running container {}, cannot remove",
                    c.id()
                )));
            }
        } else {
            // Whatever runs for it though its record says it does not (a start cut by a
            // crash, a shim that outlived its report) stops before the record goes.
            match self.reclaim_run(c.id()).await {
                super::reclaim::Reclaimed::Stopped(_) => {
                    tracing::info!(container = %c.id(), "rm: stopped a process its record did not know of");
                }
                super::reclaim::Reclaimed::Stuck => {
                    return Err(EngineError::internal(format!(
                        "Could not kill running container {}, cannot remove",
                        c.id()
                    )));
                }
                _ => {}
            }
        }
        self.remove_locked(&c, remove_volumes).await
    }

    /// Deleting the record is the removal; the files go afterwards in the background, so the
    /// client (and a `wait?condition=removed`) is answered without waiting for unmount and
    /// `rm -rf`. A crash in between leaves a snapshot with no container, which restore removes.
    pub(super) async fn remove_locked(
        &self,
        c: &Arc<Container>,
        remove_volumes: bool,
    ) -> Result<(), EngineError> {
        let id = c.id().to_string();
        if c.events.borrow().removed {
            return Ok(());
        }
        lock(&c.state).status = Status::Removing;
        if remove_volumes {
            // Durable before the record goes, so a crash in between still removes them at
            // the next start (volumes/pending.rs).
            self.mark_anonymous_volumes(c).await?;
        }
        let ctx = self.ctx.clone();
        let cid = id.clone();
        let deleted = blocking(move || ctx.db.delete_container(&cid)).await?;
        if let Err(e) = deleted {
            if !e.is_not_found() {
                lock(&c.state).status = Status::Dead;
                return Err(internal("deleting the container record", e));
            }
        }
        // What the teardown below does not finish, restore does (leftovers without a record).
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::RM_RECORD_DELETED);
        self.forget(&id);
        // dockerd's order: the record, then the volumes' users and the anonymous volumes.
        let resolved = crate::mounts::resolve::Resolved {
            mounts: c.spec.mounts.clone(),
            extras: c.spec.mount_extras.clone(),
        };
        self.release_mounts(&id, &resolved, remove_volumes).await;
        c.events.send_modify(|e| e.removed = true);
        self.emit(c, "destroy", &[]);
        self.spawn_teardown(id, c.spec.snapshot_key.clone());
        Ok(())
    }

    /// Removes what a deleted container left: any process still running for it (through its
    /// shim, else libcontainer's forced delete of its cgroups), its rootfs mount, exec dir,
    /// runtime state and cgroups, data dir and writable layer.
    pub(super) fn spawn_teardown(&self, id: String, snapshot_key: String) {
        let svc = self.handle();
        let ctx = self.ctx.clone();
        let data_dir = self.data_dir(&id);
        tokio::spawn(async move {
            if let Some(svc) = svc.upgrade() {
                if let super::reclaim::Reclaimed::Stuck = svc.reclaim_run(&id).await {
                    // Its layer is still mounted in a live container; the next daemon start
                    // tries again (leftovers without a record).
                    return;
                }
            }
            let _ = blocking(move || teardown_files(&ctx, &id, &snapshot_key, &data_dir)).await;
        });
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let c = self.resolve(name)?;
        let new_name = names::validate(new_name).map_err(EngineError::invalid)?;
        if c.name() == new_name {
            return Err(EngineError::invalid(
                "Renaming a container with the same name as its current name",
            ));
        }
        if let Ok(other) = self.resolve(&format!("/{new_name}")) {
            if other.name() == new_name {
                return Err(name_conflict(&new_name, other.id()));
            }
        }
        self.ctx
            .db
            .rename_container(c.id(), &new_name)
            .map_err(|e| {
                if e.is_conflict() {
                    name_conflict(&new_name, "")
                } else {
                    internal("renaming", e)
                }
            })?;
        // One committed statement: after a crash the record has the new name, nothing else
        // names the container.
        crate::failpoint::hit(&self.ctx.exec_root, crate::failpoint::RENAME_SAVED);
        let old = std::mem::replace(&mut *lock(&c.name), new_name);
        self.emit(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    pub async fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<'static, WaitResponse>, EngineError> {
        let c = self.resolve(name)?;
        let mut rx = c.events.subscribe();
        let now = rx.borrow().clone();
        // Judged from the run events, not the state: on_exit marks the state exited a moment
        // before it publishes the exit code, and a waiter arriving in between must wait for it.
        let running = now.started > now.finished;
        let fut = async move {
            let done = |e: &RunEvents| match condition {
                WaitCondition::NotRunning => !running || e.finished > now.finished,
                WaitCondition::NextExit => e.finished > now.finished,
                WaitCondition::Removed => e.removed,
            };
            loop {
                let e = rx.borrow_and_update().clone();
                if done(&e) || e.removed {
                    return WaitResponse {
                        error: None,
                        status_code: e.exit_code,
                    };
                }
                if rx.changed().await.is_err() {
                    // The container went away with its channel: it was removed.
                    let e = rx.borrow().clone();
                    return WaitResponse {
                        error: None,
                        status_code: e.exit_code,
                    };
                }
            }
        };
        Ok(Box::pin(fut))
    }

    pub async fn logs(&self, name: &str, opts: LogsOptions) -> Result<LogsSession, EngineError> {
        let c = self.resolve(name)?;
        if !opts.stdout && !opts.stderr {
            return Err(EngineError::invalid("You must choose at least one stream"));
        }
        let (settings, files) = self.log_files(&c)?;
        if settings == LogSettings::None {
            return Err(EngineError::not_implemented(
                "configured logging driver does not support reading",
            ));
        }
        let filter = LogFilter {
            stdout: opts.stdout,
            stderr: opts.stderr,
            since: opts.since,
            until: opts.until,
            details: opts.details,
        };
        let (initial, cursor) = logs::replay(&files, &filter, opts.tail);
        let tty = c.spec.config.tty;
        let events = c.events.borrow().clone();
        if opts.follow && c.is_running() {
            let until = events.started;
            return Ok(LogsSession {
                tty,
                output: logs::follow(files, cursor, filter, c, until, initial),
            });
        }
        Ok(LogsSession {
            tty,
            output: Box::pin(futures_util::stream::iter(initial)),
        })
    }

    pub async fn attach(
        &self,
        name: &str,
        opts: AttachOptions,
    ) -> Result<AttachSession, EngineError> {
        let c = self.resolve(name)?;
        let filter = LogFilter {
            stdout: opts.stdout,
            stderr: opts.stderr,
            ..Default::default()
        };
        let (settings, files) = self.log_files(&c)?;
        let (initial, cursor) = if !opts.logs {
            (logs::Replay::empty(), files.end())
        } else if settings == LogSettings::None {
            // dockerd replays through the log driver, which `none` cannot read.
            return Err(EngineError::not_implemented(
                "configured logging driver does not support reading",
            ));
        } else {
            logs::replay(&files, &filter, None)
        };
        let events = c.events.borrow().clone();
        // Attached to a stopped container, we follow its next run (as `start -a` needs).
        let until = if c.is_running() {
            events.started
        } else {
            events.started + 1
        };
        let mut detach_keys = super::stdin::detach_keys(opts.detach_keys.as_deref())?;
        if !c.spec.config.tty {
            // dockerd looks for the keys only on a terminal; piped data passes untouched.
            detach_keys.clear();
        }
        let stdin = if opts.stdin && c.spec.config.open_stdin {
            Some(StdinSink {
                tx: self.stdin_sender(&c),
                // Docker: only a non-TTY StdinOnce attacher's EOF closes the container's stdin.
                close_on_eof: c.spec.config.stdin_once && !c.spec.config.tty,
            })
        } else {
            None
        };
        let output = if opts.stream {
            logs::follow(files, cursor, filter, c.clone(), until, initial)
        } else {
            Box::pin(futures_util::stream::iter(initial))
        };
        self.emit(&c, "attach", &[]);
        Ok(AttachSession {
            tty: c.spec.config.tty,
            output,
            stdin,
            detach_keys,
            on_detach: Some(self.detach_event(&c)),
        })
    }
}

/// The create's copy-up: the container's layers mounted where its runs mount them (the run
/// dir's cleanup unmounts them there), then each volume filled.
fn populate_volumes(
    ctx: &crate::ctx::Ctx,
    volumes: &crate::volumes::VolumeService,
    id: &str,
    r: &crate::mounts::resolve::Resolved,
    snapshot_key: &str,
    rootfs: &Path,
) -> Result<(), EngineError> {
    std::fs::create_dir_all(rootfs).map_err(|e| internal("creating the rootfs dir", e))?;
    let layers = ctx
        .snaps
        .mounts(snapshot_key)
        .map_err(|e| internal("reading the container's layers", e))?;
    wharf_storage::mount_all(&layers, rootfs)
        .map_err(|e| internal("mounting the container's rootfs", e))?;
    crate::mounts::resolve::populate(volumes, id, r, rootfs, &ctx.exec_root)
}

pub(super) fn not_running(id: &str) -> EngineError {
    EngineError::NotRunning(id.to_string())
}

fn name_conflict(name: &str, id: &str) -> EngineError {
    EngineError::NameInUse {
        name: name.to_string(),
        id: id.to_string(),
    }
}

/// The files of a deleted container, once nothing of it runs: writable layer and data dir.
fn teardown_files(ctx: &crate::ctx::Ctx, id: &str, snapshot_key: &str, data_dir: &Path) {
    if let Err(e) = ctx.snaps.remove(snapshot_key) {
        if !e.is_not_found() {
            tracing::warn!(container = %id, error = %e, "removing the writable layer; retried at the next daemon start");
        }
    }
    let _held = super::wait_for_log_readers(&wharf_runtime::logpin::readers_path(
        &data_dir.join(super::log_file_name(id)),
    ));
    let _ = std::fs::remove_dir_all(data_dir);
}
