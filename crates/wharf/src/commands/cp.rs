//! `cp` both ways, as docker 28's `cp.go` does it: the destination (or a `-L` source) is
//! stat'ed first with `HEAD /containers/{id}/archive` and its `X-Docker-Container-Path-Stat`
//! header, the local side is tarred or untarred here with the names rebased, and the tar
//! travels with `PUT`/`GET /containers/{id}/archive`.

use super::archive::{self, CopyInfo};
use super::{tty, Ctx, Exit};
use crate::cli::CpArgs;
use crate::format::units::human_size_precision;
use anyhow::Result;
use base64::Engine;
use serde_json::Value;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use wharf_client::{encode, header_str, read_body, Method, NoBody};

// docker 28 means to draw a progress line on a terminal stderr, but hands its drawer a
// writer it cannot see a terminal behind: only the closing `Successfully copied` line is ever
// printed (when stdout is a terminal or `--quiet=false`), and so it is here.

// Go's `os.FileMode` bits, as the stat header carries them.
const MODE_DIR: u64 = 1 << 31;
const MODE_SYMLINK: u64 = 1 << 27;
const MODE_DEVICE: u64 = 1 << 26;
const MODE_IRREGULAR: u64 = 1 << 19;

/// The decoded `X-Docker-Container-Path-Stat` header.
#[derive(Debug, Default, Clone)]
struct PathStat {
    mode: u64,
    link_target: String,
}

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }
    fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

fn decode_stat(header: Option<&str>) -> Result<PathStat, String> {
    let enc = header.unwrap_or("");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(enc)
        .map_err(|e| format!("unable to decode container path stat header: {e}"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("unable to decode container path stat header: EOF".into());
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("unable to decode container path stat header: {e}"))?;
    Ok(PathStat {
        mode: v.get("mode").and_then(Value::as_u64).unwrap_or(0),
        link_target: v
            .get("linkTarget")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    })
}

/// `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path or starts with
/// `.` before its colon.
fn split_arg(arg: &str) -> (&str, &str) {
    if arg.starts_with('/') {
        return ("", arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (c, p),
        _ => ("", arg),
    }
}

fn archive_path(container: &str, path: &str) -> String {
    format!(
        "/containers/{}/archive?path={}",
        encode(container),
        super::transfer::query_escape(path)
    )
}

/// `HEAD` of a path in the container; any failure is just "not there" to cp.
async fn stat(ctx: &Ctx, container: &str, path: &str) -> Option<PathStat> {
    let raw = ctx
        .client
        .request(Method::HEAD, &archive_path(container, path), None)
        .await
        .ok()?;
    if !raw.status.is_success() {
        return None;
    }
    decode_stat(header_str(&raw.headers, "X-Docker-Container-Path-Stat")).ok()
}

pub async fn cp(ctx: &Ctx, a: &CpArgs) -> Result<i32> {
    super::arity::check(
        "cp",
        &["container"],
        "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\twharf cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        super::arity::Arity::Exact(2),
        a.args.len(),
    )?;
    let (source, destination) = (a.args[0].as_str(), a.args[1].as_str());
    if source.is_empty() {
        return Err(Exit::error(1, "source can not be empty"));
    }
    if destination.is_empty() {
        return Err(Exit::error(1, "destination can not be empty"));
    }
    let quiet = a.quiet.unwrap_or_else(|| !tty::stdout_is_terminal());
    let (src_ctr, src_path) = split_arg(source);
    let (dst_ctr, dst_path) = split_arg(destination);
    match (src_ctr.is_empty(), dst_ctr.is_empty()) {
        (false, true) => from_container(ctx, a, quiet, src_ctr, src_path, dst_path).await,
        (true, false) => to_container(ctx, a, quiet, dst_ctr, src_path, dst_path).await,
        (false, false) => Err(Exit::error(
            1,
            "copying between containers is not supported",
        )),
        (true, true) => Err(Exit::error(1, "must specify at least one container source")),
    }
}

/// docker's `ValidateOutputPath` for a local destination.
fn validate_output(path: &str) -> Result<(), String> {
    let d = archive::dir(&archive::clean(path));
    if !d.is_empty() && d != "." {
        if let Err(e) = std::fs::metadata(&d) {
            if e.kind() == std::io::ErrorKind::NotFound {
                return Err(format!(
                    "invalid output path: directory {d:?} does not exist"
                ));
            }
        }
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(archive::path_err("stat", path, &e)),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let ft = m.file_type();
            if ft.is_dir() || ft.is_file() {
                Ok(())
            } else if ft.is_block_device() || ft.is_char_device() {
                Err(format!(
                    "invalid output path: {path:?} must be a directory or a regular file: got a device"
                ))
            } else if ft.is_socket() {
                Err(format!(
                    "invalid output path: {path:?} must be a directory or a regular file: got an irregular file"
                ))
            } else {
                Ok(())
            }
        }
    }
}

async fn from_container(
    ctx: &Ctx,
    a: &CpArgs,
    quiet: bool,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<i32> {
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        archive::resolve_local(dst).map_err(|e| Exit::error(1, archive::go_err(&e)))?
    };
    validate_output(&dst).map_err(|e| Exit::error(1, e))?;
    let container = container.trim();
    if container.is_empty() {
        return Err(Exit::error(
            1,
            "invalid container name or ID: value is empty",
        ));
    }
    let mut src_path = src.to_string();
    let mut rebase_name = String::new();
    if a.follow_link {
        if let Some(st) = stat(ctx, container, &src_path).await {
            if st.is_symlink() {
                let mut target = st.link_target.clone();
                if !target.starts_with('/') {
                    target = archive::join(&archive::split_dir_entry(&src_path).0, &target);
                }
                let (t, r) = archive::rebase_name(&src_path, &target);
                src_path = t;
                rebase_name = r;
            }
        }
    }
    let resp = ctx
        .client
        .send_stream::<NoBody>(Method::GET, &archive_path(container, &src_path), None, &[])
        .await
        .map_err(|e| ctx.err(1, &e))?;
    if !resp.status.is_success() {
        let raw = resp.collect().await.map_err(|e| ctx.err(1, &e))?;
        return Err(ctx.err(1, &raw.into_api_error()));
    }
    let st = decode_stat(header_str(&resp.headers, "X-Docker-Container-Path-Stat"))
        .map_err(|e| Exit::error(1, format!("unable to get resource stat from response: {e}")))?;
    let mut resp = resp;
    if dst == "-" {
        while let Some(chunk) = resp.next_chunk().await {
            let chunk = chunk.map_err(|e| Exit::error(1, e.to_string()))?;
            let mut o = std::io::stdout().lock();
            o.write_all(&chunk)
                .and_then(|()| o.flush())
                .map_err(|e| Exit::error(1, archive::go_err(&e)))?;
        }
        return Ok(0);
    }
    let src_info = CopyInfo {
        path: src_path.clone(),
        exists: true,
        is_dir: st.is_dir(),
        rebase_name: rebase_name.clone(),
    };
    // Entries renamed from the container's base name to the one the user asked for (`-L`).
    let pre_rename = (!rebase_name.is_empty())
        .then(|| (archive::split_dir_entry(&src_path).1, rebase_name.clone()));
    let copied = Arc::new(AtomicU64::new(0));
    let result = async {
        let dst_info = archive::destination_info(&dst).map_err(|e| Exit::error(1, e))?;
        let (dst_dir, rename) =
            archive::prepare_copy(&src_info, &dst_info).map_err(|e| Exit::error(1, e))?;
        let (reader, mut writer) = pipe()?;
        let unpacker = std::thread::spawn(move || {
            archive::untar(reader, &dst_dir, &compose(pre_rename, rename))
        });
        let mut write_failed = false;
        while let Some(chunk) = resp.next_chunk().await {
            let chunk = chunk.map_err(|e| Exit::error(1, e.to_string()))?;
            copied.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            // Once the unpacker stopped (its error is reported below), the rest is drained.
            if !write_failed && writer.write_all(&chunk).is_err() {
                write_failed = true;
            }
        }
        drop(writer);
        let unpacked = unpacker
            .join()
            .map_err(|_| Exit::error(1, "unpacking the archive failed"))?;
        unpacked.map_err(|e| Exit::error(1, e))?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if !quiet {
        super::err_out(
            format!(
                "Successfully copied {} to {dst}\n",
                human_size_precision(copied.load(Ordering::Relaxed) as f64, 3)
            )
            .as_bytes(),
        );
    }
    result?;
    Ok(0)
}

/// Two renames applied one after the other, as docker pipes one rebasing reader into the
/// next.
fn compose(
    first: Option<(String, String)>,
    second: Option<(String, String)>,
) -> Option<(String, String)> {
    match (first, second) {
        (None, s) => s,
        (f, None) => f,
        (Some((a, b)), Some((c, d))) => {
            // `c` is the first rename's result base (`b`), so the pair collapses.
            if b == c {
                Some((a, d))
            } else {
                Some((a, archive::replace_first(&b, &c, &d)))
            }
        }
    }
}

async fn to_container(
    ctx: &Ctx,
    a: &CpArgs,
    quiet: bool,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<i32> {
    let src = if src == "-" {
        src.to_string()
    } else {
        archive::resolve_local(src).map_err(|e| Exit::error(1, archive::go_err(&e)))?
    };
    let container = container.trim();
    if container.is_empty() {
        return Err(Exit::error(
            1,
            "invalid container name or ID: value is empty",
        ));
    }
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..CopyInfo::default()
    };
    let mut dst_stat = stat(ctx, container, dst).await;
    if let Some(st) = dst_stat.clone().filter(PathStat::is_symlink) {
        let mut target = st.link_target.clone();
        if !target.starts_with('/') {
            target = archive::join(&archive::split_dir_entry(dst).0, &target);
        }
        dst_info.path = target.clone();
        dst_stat = stat(ctx, container, &target).await;
    }
    let mode = dst_stat.as_ref().map_or(0, |s| s.mode);
    let bad = if mode & MODE_DEVICE != 0 {
        Some("got a device")
    } else if mode & MODE_IRREGULAR != 0 {
        Some("got an irregular file")
    } else {
        None
    };
    if let Some(why) = bad {
        return Err(Exit::error(
            1,
            format!(
                "destination \"{container}:{dst}\" must be a directory or a regular file: {why}"
            ),
        ));
    }
    if let Some(st) = &dst_stat {
        dst_info.exists = true;
        dst_info.is_dir = st.is_dir();
    }
    let copied = Arc::new(AtomicU64::new(0));
    let (resolved_dst, body): (String, Box<dyn std::io::Read + Send>) = if src == "-" {
        if !dst_info.is_dir {
            return Err(Exit::error(
                1,
                format!("destination \"{container}:{dst}\" must be a directory"),
            ));
        }
        (dst_info.path.clone(), Box::new(std::io::stdin()))
    } else {
        let src_info = archive::source_info(&src, a.follow_link).map_err(|e| Exit::error(1, e))?;
        let (dst_dir, rename) =
            archive::prepare_copy(&src_info, &dst_info).map_err(|e| Exit::error(1, e))?;
        let (reader, writer) = pipe()?;
        std::thread::spawn(move || {
            // A failed read ends the tar early; the daemon then refuses the short archive.
            let _ = archive::write_source_tar(writer, &src_info, &rename);
        });
        let counted = Counted {
            inner: reader,
            count: copied.clone(),
        };
        (dst_dir, Box::new(counted))
    };
    let mut q = Vec::new();
    if a.archive {
        q.push("copyUIDGID=true".to_string());
    }
    q.push("noOverwriteDirNonDir=true".to_string());
    q.push(format!(
        "path={}",
        super::transfer::query_escape(&resolved_dst)
    ));
    let path = format!("/containers/{}/archive?{}", encode(container), q.join("&"));
    let resp = ctx
        .client
        .send_stream(
            Method::PUT,
            &path,
            Some(read_body(body)),
            &[("content-type", "text/plain")],
        )
        .await;
    let result = async {
        let resp = resp.map_err(|e| ctx.err(1, &e))?;
        let raw = resp.collect().await.map_err(|e| ctx.err(1, &e))?;
        raw.error_for_status().map_err(|e| ctx.err(1, &e))?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if !quiet {
        super::err_out(
            format!(
                "Successfully copied {} to {container}:{}\n",
                human_size_precision(copied.load(Ordering::Relaxed) as f64, 3),
                dst_info.path
            )
            .as_bytes(),
        );
    }
    result?;
    Ok(0)
}

/// A pipe between the async side and a thread that packs or unpacks a tar.
fn pipe() -> Result<(std::fs::File, std::fs::File)> {
    let (r, w) = nix::unistd::pipe().map_err(|e| Exit::error(1, e.to_string()))?;
    Ok((std::fs::File::from(r), std::fs::File::from(w)))
}

/// A reader that counts what passes through it (docker's `copyProgressPrinter`).
struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args_split_like_docker() {
        assert_eq!(split_arg("c1:/x"), ("c1", "/x"));
        assert_eq!(split_arg("/abs:x"), ("", "/abs:x"));
        assert_eq!(split_arg("./a:b"), ("", "./a:b"));
        assert_eq!(split_arg("file"), ("", "file"));
        assert_eq!(split_arg("-"), ("", "-"));
    }
}
