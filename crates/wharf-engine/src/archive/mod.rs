//! `docker cp` (`HEAD`/`GET`/`PUT /containers/{id}/archive`) and `docker export`.
//!
//! Owns: resolving paths inside a container's root ([`root`]), writing a tree as a tar
//! ([`pack`]), extracting one safely ([`unpack`]), and reaching a container's filesystem,
//! running or not ([`view`]); docs/archive.md tells the whole story.
//! Must not touch: the container lifecycle (it only holds the container's operation lock).

pub mod pack;
pub mod unpack;
mod view;

#[cfg(test)]
mod tests;

use crate::containers::model::Status;
use crate::containers::{Container, ContainerService};
use crate::ctx::Ctx;
use crate::error::EngineError;
use bytes::Bytes;
use futures_util::StreamExt;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use unpack::{UnpackError, UnpackOptions, Unpacker};
use wharf_api::archive::{file_mode, ContainerPathStat};
use wharf_backend::BodyStream;
use wharf_fs::root::{self, display, is_dir, is_symlink, Root};

/// Chunks in flight between the tar thread and the response (each `pack::CHUNK` bytes).
const STREAM_DEPTH: usize = 8;

/// Where a stopped container's layer is mounted, inside a private namespace only.
const MOUNT_DIR: &str = "archive";

/// What a `PUT` asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    pub no_overwrite_dir_non_dir: bool,
    pub copy_uid_gid: bool,
}

pub struct ArchiveService {
    ctx: Arc<Ctx>,
    containers: Arc<ContainerService>,
}

fn not_found(path: &str, name: &str) -> EngineError {
    EngineError::not_found(format!(
        "Could not find the file {path} in container {name}"
    ))
}

fn internal(op: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("{op}: {e}"))
}

/// Go's `filepath.Base` of the path asked for (dockerd names the stat and the tar's top
/// entry with it).
fn base_name(path: &str) -> String {
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn mtime(st: &libc::stat) -> String {
    chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
        .map(|t| {
            // Go's RFC3339Nano: the fraction without trailing zeros.
            let s = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            match s.split_once('.') {
                Some((whole, frac)) => {
                    let digits = frac.trim_end_matches('Z').trim_end_matches('0');
                    if digits.is_empty() {
                        format!("{whole}Z")
                    } else {
                        format!("{whole}.{digits}Z")
                    }
                }
                None => s,
            }
        })
        .unwrap_or_else(|| crate::timefmt::ZERO_TIME.into())
}

/// The stat of `path` as dockerd's `containerFSView.Stat` answers it: lstat of the path (a
/// final symlink not followed unless the path ends in `/`), and for a symlink the path it
/// leads to inside the container, every link followed.
pub(crate) fn stat_path(
    root: &Root,
    path: &str,
) -> io::Result<(root::Resolved, ContainerPathStat)> {
    let r = root.resolve(path.as_bytes(), false)?;
    let Some(st) = r.stat.filter(|_| r.exists()) else {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    };
    let link_target = if is_symlink(&st) {
        display(&root.resolve(path.as_bytes(), true)?.comps)
    } else {
        String::new()
    };
    let stat = ContainerPathStat {
        name: base_name(path),
        size: st.st_size,
        mode: file_mode::from_unix(st.st_mode),
        mtime: mtime(&st),
        link_target,
    };
    Ok((r, stat))
}

/// Writes what `r` names as a tar under `as_name` (a directory with all it holds).
pub(crate) fn pack_resolved(
    root: &Root,
    r: &root::Resolved,
    as_name: &str,
    out: impl io::Write,
) -> io::Result<()> {
    let mut p = pack::Packer::new(out, false);
    match r.comps.split_last() {
        None => p.add_dir_fd(root.fd(), as_name.as_bytes())?,
        Some((name, parent)) => {
            let dir = root.open_resolved(parent, libc::O_PATH | libc::O_DIRECTORY)?;
            p.add(dir.as_fd(), name, as_name.as_bytes())?;
        }
    }
    p.finish()?.flush()
}

fn io_to_engine(path: &str, name: &str, e: io::Error) -> EngineError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => not_found(path, name),
        Some(libc::ENOTDIR) => EngineError::invalid(format!("{path}: not a directory")),
        Some(libc::ELOOP) => {
            EngineError::invalid(format!("{path}: too many levels of symbolic links"))
        }
        _ => internal(&format!("reading {path} in container {name}"), e),
    }
}

impl ArchiveService {
    pub fn new(ctx: Arc<Ctx>, containers: Arc<ContainerService>) -> ArchiveService {
        ArchiveService { ctx, containers }
    }

    /// Runs `job` with the container's filesystem (its running view with `export` false;
    /// the layer alone with it true), under the container's operation lock.
    async fn with_fs<T: Send + 'static>(
        &self,
        c: &Arc<Container>,
        export: bool,
        job: impl FnOnce(&Root) -> T + Send + 'static,
    ) -> Result<T, EngineError> {
        let _op = c.op_lock().lock().await;
        if c.is_removed() {
            return Err(EngineError::no_such_container(c.id()));
        }
        let st = c.state();
        if matches!(st.status, Status::Removing | Status::Dead) {
            return Err(EngineError::conflict(format!(
                "container {} is marked for removal",
                c.id()
            )));
        }
        let host_rootfs = self.containers.rootfs_dir(c.id());
        if st.status == Status::Running && st.pid > 0 {
            let pid = st.pid;
            let opened = crate::containers::blocking(move || {
                if export {
                    // The merged layer without the container's mounts, as dockerd exports.
                    Root::open(&host_rootfs)
                } else {
                    view::running_root(pid, &host_rootfs)
                }
            })
            .await?;
            match opened {
                Ok(root) => return crate::containers::blocking(move || job(&root)).await,
                Err(e) => {
                    // Its init is gone and the exit not yet recorded: once it is, the
                    // stopped view below is the right one.
                    tracing::debug!(container = %c.id(), error = %e, "archive: the running view is gone; waiting for the exit");
                    let mut events = c.events.subscribe();
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), async {
                        while c.is_running() {
                            if events.changed().await.is_err() {
                                break;
                            }
                        }
                    })
                    .await;
                    if c.is_running() {
                        return Err(EngineError::conflict(format!(
                            "container {} is stopping; try again",
                            c.id()
                        )));
                    }
                }
            }
        }
        let layer = self
            .ctx
            .snaps
            .mounts(&c.spec.snapshot_key)
            .map_err(|e| internal("reading the container's layers", e))?;
        let mount_dir = self.ctx.exec_root.join(MOUNT_DIR);
        std::fs::create_dir_all(&mount_dir)
            .map_err(|e| EngineError::io("creating the archive mount point", e))?;
        let v = view::Stopped {
            layer,
            binds: if export {
                Vec::new()
            } else {
                c.spec.mounts.clone()
            },
            mount_dir,
        };
        view::with_stopped(v, job)
            .await
            .map_err(|e| internal("opening the container's filesystem", e))
    }

    /// `HEAD /containers/{id}/archive`.
    pub async fn stat(&self, name: &str, path: &str) -> Result<ContainerPathStat, EngineError> {
        let c = self.containers.resolve(name)?;
        let p = path.to_string();
        let r = self
            .with_fs(&c, false, move |root| stat_path(root, &p))
            .await?;
        r.map(|(_, s)| s).map_err(|e| io_to_engine(path, name, e))
    }

    /// `GET /containers/{id}/archive`: the stat, then the tar, made as the client reads it.
    pub async fn get(
        self: &Arc<Self>,
        name: &str,
        path: &str,
    ) -> Result<(ContainerPathStat, BodyStream), EngineError> {
        let c = self.containers.resolve(name)?;
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_DEPTH);
        let me = self.clone();
        let (p, n, c2) = (path.to_string(), name.to_string(), c.clone());
        let stat_tx = Arc::new(std::sync::Mutex::new(Some(stat_tx)));
        let early = stat_tx.clone();
        tokio::spawn(async move {
            let ran = me
                .with_fs(&c2, false, move |root| {
                    let send = |r: Result<ContainerPathStat, EngineError>| {
                        if let Some(tx) = crate::containers::lock(&stat_tx).take() {
                            let _ = tx.send(r);
                        }
                    };
                    let (resolved, stat) = match stat_path(root, &p) {
                        Ok(x) => x,
                        Err(e) => return send(Err(io_to_engine(&p, &n, e))),
                    };
                    // dockerd names a directory's entries after the path asked for
                    // (`/etc/` → `etc/...`, `/etc/.` → `./...`), a file by its own name.
                    let as_name = if resolved.stat.as_ref().is_some_and(is_dir) {
                        base_name(&p)
                    } else {
                        resolved
                            .comps
                            .last()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_else(|| base_name(&p))
                    };
                    send(Ok(stat));
                    let mut out = pack::ChanWriter::new(tx);
                    if let Err(e) = pack_resolved(root, &resolved, &as_name, &mut out) {
                        tracing::warn!(error = %e, "archive: the tar stream ended early");
                        out.fail(e);
                    }
                })
                .await;
            if let Err(e) = ran {
                if let Some(tx) = crate::containers::lock(&early).take() {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let stat = stat_rx
            .await
            .map_err(|_| EngineError::internal("the archive task ended without an answer"))??;
        self.containers.emit(&c, "archive-path", &[]);
        let stream = tokio_stream_of(rx);
        Ok((stat, stream))
    }

    /// `PUT /containers/{id}/archive`: extracts the body into the directory `path`.
    pub async fn put(
        &self,
        name: &str,
        path: &str,
        opts: PutOptions,
        body: BodyStream,
    ) -> Result<(), EngineError> {
        let c = self.containers.resolve(name)?;
        let (mut on_drop, cancel, reader) = crate::images::ingest::cancellable_body(body);
        let (p, n) = (path.to_string(), name.to_string());
        let readonly_rootfs = c.spec.host_config.readonly_rootfs;
        let mounts = c.spec.mounts.clone();
        let user = c.spec.config.user.clone();
        let done = self
            .with_fs(&c, false, move |root| -> Result<(), EngineError> {
                let r = root
                    .resolve(p.as_bytes(), true)
                    .map_err(|e| match e.raw_os_error() {
                        Some(libc::ENOTDIR) => {
                            EngineError::invalid("extraction point is not a directory")
                        }
                        _ => io_to_engine(&p, &n, e),
                    })?;
                if !r.exists() {
                    return Err(not_found(&p, &n));
                }
                if !r.stat.as_ref().is_some_and(is_dir) {
                    return Err(EngineError::invalid("extraction point is not a directory"));
                }
                check_writable(&display(&r.comps), readonly_rootfs, &mounts)?;
                let chown = if opts.copy_uid_gid && !user.is_empty() {
                    Some(container_user(root, &user)?)
                } else {
                    None
                };
                let u = Unpacker::new(
                    root,
                    r.comps.clone(),
                    UnpackOptions {
                        no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
                        chown,
                    },
                );
                let reader = CancelRead {
                    inner: reader,
                    cancel,
                };
                u.unpack(reader).map_err(|e| match e {
                    UnpackError::Refused(m) | UnpackError::BadArchive(m) => EngineError::invalid(m),
                    UnpackError::Io { op, source } => EngineError::io(op, source),
                })
            })
            .await;
        on_drop.disarm();
        done??;
        self.containers.emit(&c, "extract-to-dir", &[]);
        Ok(())
    }

    /// `GET /containers/{id}/export`: the container's merged layer as a tar, without its
    /// mounts, made as the client reads it.
    pub async fn export(self: &Arc<Self>, name: &str) -> Result<BodyStream, EngineError> {
        let c = self.containers.resolve(name)?;
        match c.state().status {
            Status::Dead => {
                return Err(EngineError::conflict(format!(
                    "You cannot export container {} which is Dead",
                    c.id()
                )))
            }
            Status::Removing => {
                return Err(EngineError::conflict(format!(
                    "You cannot export container {} which is being removed",
                    c.id()
                )))
            }
            _ => {}
        }
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_DEPTH);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), EngineError>>();
        let ready_tx = Arc::new(std::sync::Mutex::new(Some(ready_tx)));
        let early = ready_tx.clone();
        let me = self.clone();
        let c2 = c.clone();
        tokio::spawn(async move {
            let ran = me
                .with_fs(&c2, true, move |root| {
                    if let Some(r) = crate::containers::lock(&ready_tx).take() {
                        let _ = r.send(Ok(()));
                    }
                    let mut out = pack::ChanWriter::new(tx);
                    let mut p = pack::Packer::new(&mut out, true);
                    let made = p
                        .add_dir_fd(root.fd(), b"")
                        .and_then(|()| p.finish().map(|_| ()));
                    match made.and_then(|()| io::Write::flush(&mut out)) {
                        Ok(()) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "export: the tar stream ended early");
                            out.fail(e);
                        }
                    }
                })
                .await;
            if let Err(e) = ran {
                if let Some(r) = crate::containers::lock(&early).take() {
                    let _ = r.send(Err(e));
                }
            }
        });
        ready_rx
            .await
            .map_err(|_| EngineError::internal("the export task ended without an answer"))?
            .map_err(|e| {
                EngineError::internal(format!("Error exporting container {name}: {}", e.message()))
            })?;
        self.containers.emit(&c, "export", &[]);
        Ok(tokio_stream_of(rx))
    }
}

/// dockerd's `checkIfPathIsInAVolume` and read-only rootfs rule.
fn check_writable(
    path: &str,
    readonly_rootfs: bool,
    mounts: &[wharf_api::container::MountPoint],
) -> Result<(), EngineError> {
    let in_mount = mounts.iter().find(|m| {
        let d = m.destination.trim_end_matches('/');
        path == d || path.starts_with(&format!("{d}/")) || d.is_empty()
    });
    match in_mount {
        Some(m) if !m.rw => Err(EngineError::invalid("mounted volume is marked read-only")),
        Some(_) => Ok(()),
        None if readonly_rootfs => {
            Err(EngineError::invalid("container rootfs is marked read-only"))
        }
        None => Ok(()),
    }
}

/// The container's `User`, resolved in its own `/etc/passwd` and `/etc/group` (read through
/// its root), for `copyUIDGID`.
fn container_user(root: &Root, user: &str) -> Result<(u32, u32), EngineError> {
    let read = |p: &str| -> String {
        let Ok(r) = root.resolve(p.as_bytes(), true) else {
            return String::new();
        };
        if !r.exists() {
            return String::new();
        }
        let Ok(fd) = root.open_resolved(&r.comps, libc::O_RDONLY | libc::O_NONBLOCK) else {
            return String::new();
        };
        let mut s = String::new();
        // Bounded: a passwd file is small; a hostile one must not eat memory.
        let _ = io::Read::read_to_string(
            &mut io::Read::take(std::fs::File::from(fd), 4 << 20),
            &mut s,
        );
        s
    };
    let u = crate::containers::rootfs::resolve_user_from(
        &read("/etc/passwd"),
        &read("/etc/group"),
        user,
    )
    .map_err(EngineError::invalid)?;
    Ok((u.uid, u.gid))
}

/// A blocking reader that stops when the request is gone.
struct CancelRead<R> {
    inner: R,
    cancel: wharf_storage::Cancel,
}

impl<R: io::Read> io::Read for CancelRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the client went away",
            ));
        }
        self.inner.read(buf)
    }
}

fn tokio_stream_of(mut rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> BodyStream {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
