//! docker's hijacked-stream plumbing shared by `run`, `start -a`, `attach` and `exec`: local
//! stdin → the connection (through the detach-key proxy on a TTY), the connection → stdout and
//! stderr (raw bytes on a TTY, stdcopy frames otherwise), TTY size tracking and signal proxying.

use super::tty::{self, EscapeProxy, RawGuard};
use super::{err_out, out};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use wharf_api::stdcopy::StdStream;
use wharf_client::{AttachReader, AttachStream, AttachWriter, Client};

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The daemon closed the output: the process ended (or the daemon detached us).
    Output,
    /// The user typed the detach sequence.
    Detached,
    /// The output ended after piped input (no TTY) carried the detach sequence: wharfd ends
    /// the session there, other daemons do not. The caller tells the two apart by whether the
    /// process still runs.
    OutputAfterKeys,
}

/// The message docker's `term.EscapeError` prints where a detach is reported as an error.
pub const ESCAPE_MESSAGE: &str = "read escape sequence";

pub struct Session {
    pub tty: bool,
    /// Forward local stdin (`-i`, attach without `--no-stdin`).
    pub stdin: bool,
    pub detach_keys: Option<String>,
    /// No signal proxy catches SIGTERM, SIGINT and SIGHUP: on a raw terminal they end the
    /// session (and the CLI, as `128+n`) after the terminal is restored, where their default
    /// action would leave the user's shell raw.
    pub signals_end: bool,
}

/// Pumps both directions until the output ends or the user detaches. The terminal is raw
/// (for a TTY session with stdin on a terminal) only while this runs.
pub async fn pump(stream: AttachStream, s: Session) -> End {
    let (reader, writer) = stream.split();
    let raw = if s.tty && s.stdin && tty::stdin_is_terminal() {
        match RawGuard::new() {
            Ok(g) => Some(g),
            Err(e) => {
                err_out(format!("{e}\n").as_bytes());
                None
            }
        }
    } else {
        None
    };
    let (det_tx, mut det_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon_detach = Arc::new(AtomicBool::new(false));
    let input = if s.stdin {
        let filter = if s.tty {
            Filter::Proxy(EscapeProxy::new(tty::detach_sequence(
                s.detach_keys.as_deref(),
            )))
        } else {
            // wharfd also watches the keys without a TTY; invalid keys fail the attach there.
            let keys = match s.detach_keys.as_deref().filter(|k| !k.is_empty()) {
                Some(k) => tty::parse_detach_keys(k).unwrap_or_default(),
                None => tty::DEFAULT_DETACH_KEYS.to_vec(),
            };
            Filter::Observe(EscapeProxy::new(keys), daemon_detach.clone())
        };
        Some(tokio::spawn(forward_stdin(writer, filter, det_tx)))
    } else {
        drop(writer);
        drop(det_tx);
        None
    };
    let output = pump_output(reader, s.tty);
    tokio::pin!(output);
    let output_end = |flag: &AtomicBool| {
        if flag.load(Ordering::SeqCst) {
            End::OutputAfterKeys
        } else {
            End::Output
        }
    };
    let fatal = if raw.is_some() && s.signals_end {
        fatal_signals()
    } else {
        None
    };
    let signalled = async move {
        match fatal {
            Some(mut sigs) => sigs.recv().await,
            None => std::future::pending().await,
        }
    };
    let end = tokio::select! {
        Some(code) = signalled => {
            drop(raw);
            // docker exits `128+n` for a termination signal; nothing else is left to do.
            std::process::exit(128 + code);
        }
        _ = &mut output => output_end(&daemon_detach),
        r = &mut det_rx => match r {
            Ok(()) => End::Detached,
            // The input side ended without detaching (EOF): the output decides.
            Err(_) => {
                output.await;
                output_end(&daemon_detach)
            }
        },
    };
    if let Some(task) = input {
        task.abort();
    }
    drop(raw);
    end
}

/// SIGTERM, SIGINT and SIGHUP, as their numbers, once any arrives; `None` if they cannot be
/// caught (then their default action stays). Once caught they stay caught for the process, so
/// after the session is over (the receiver gone) one still ends the CLI as `128+n`, as its
/// default action would have.
fn fatal_signals() -> Option<tokio::sync::mpsc::UnboundedReceiver<i32>> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for (kind, num) in [
        (SignalKind::terminate(), nix::libc::SIGTERM),
        (SignalKind::interrupt(), nix::libc::SIGINT),
        (SignalKind::hangup(), nix::libc::SIGHUP),
    ] {
        let mut sig = signal(kind).ok()?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if tx.send(num).is_err() {
                    tty::restore_terminal();
                    std::process::exit(128 + num);
                }
            }
        });
    }
    Some(rx)
}

async fn pump_output(mut reader: AttachReader, tty: bool) {
    if tty {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match reader.read_raw(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out(&buf[..n]),
                Err(e) => {
                    err_out(format!("wharf: reading the container's output: {e}\n").as_bytes());
                    break;
                }
            }
        }
        return;
    }
    while let Some(frame) = reader.next_frame().await {
        match frame {
            Ok((StdStream::Stderr, data)) => err_out(&data),
            Ok((_, data)) => out(&data),
            Err(e) => {
                err_out(format!("wharf: reading the container's output: {e}\n").as_bytes());
                break;
            }
        }
    }
}

/// What happens to typed input on its way to the daemon.
enum Filter {
    /// A TTY session: the detach keys are ours to catch (docker's escape proxy).
    Proxy(EscapeProxy),
    /// No TTY: everything goes through unchanged (it may be binary data for a daemon that does
    /// not watch the keys); the flag notes that the keys were sent.
    Observe(EscapeProxy, Arc<AtomicBool>),
}

/// Local stdin to the connection. At EOF the write side is half-closed so the process sees
/// EOF while its output keeps streaming; on the detach sequence `detached` fires instead.
async fn forward_stdin(
    mut writer: AttachWriter,
    mut filter: Filter,
    detached: tokio::sync::oneshot::Sender<()>,
) {
    let mut detached = Some(detached);
    let mut input = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let (data, detach) = match &mut filter {
            Filter::Proxy(p) => p.feed(&buf[..n]),
            Filter::Observe(p, flag) => {
                if p.observe(&buf[..n]).is_some() {
                    flag.store(true, Ordering::SeqCst);
                }
                (buf[..n].to_vec(), false)
            }
        };
        if !data.is_empty() && writer.write_stdin(&data).await.is_err() {
            return;
        }
        if detach {
            if let Some(tx) = detached.take() {
                let _ = tx.send(());
            }
            // Keep the connection open: the caller ends the session.
            std::future::pending::<()>().await;
        }
    }
    let _ = writer.shutdown_write().await;
}

/// What a TTY resize goes to.
#[derive(Clone)]
pub enum ResizeTarget {
    Container(String),
    Exec(String),
}

async fn resize_to(client: &Client, target: &ResizeTarget, h: u16, w: u16) -> bool {
    if h == 0 && w == 0 {
        return true;
    }
    let r = match target {
        ResizeTarget::Container(id) => client.resize(id, h, w).await,
        ResizeTarget::Exec(id) => client.exec_resize(id, h, w).await,
    };
    r.is_ok()
}

/// docker's `MonitorTtySize`: resize once now (retrying briefly, as the process may not have
/// its TTY yet), then on every SIGWINCH. Runs until aborted.
pub fn monitor_tty_size(client: Client, target: ResizeTarget) -> tokio::task::JoinHandle<()> {
    // Registered before the first resize so a change in between is not lost.
    let winch = signal(SignalKind::window_change());
    tokio::spawn(async move {
        let (h, w) = tty::size();
        if !resize_to(&client, &target, h, w).await {
            let mut ok = false;
            for retry in 1..=10u64 {
                tokio::time::sleep(std::time::Duration::from_millis(retry * 10)).await;
                let (h, w) = tty::size();
                if resize_to(&client, &target, h, w).await {
                    ok = true;
                    break;
                }
            }
            if !ok {
                err_out(b"failed to resize tty, using default size\n");
            }
        }
        let Ok(mut winch) = winch else {
            return;
        };
        while winch.recv().await.is_some() {
            let (h, w) = tty::size();
            resize_to(&client, &target, h, w).await;
        }
    })
}

/// docker's `ForwardAllSignals` (`--sig-proxy`): signals sent to the CLI go to the container
/// as `kill?signal=NAME` (docker's names, without `SIG`). SIGCHLD, SIGPIPE and SIGURG are not forwarded, as in docker; SIGWINCH
/// is (docker 28 sends `kill?signal=WINCH` next to the resize).
pub fn proxy_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    let kinds = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
        (SignalKind::window_change(), "WINCH"),
    ];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    for (kind, name) in kinds {
        let Ok(mut sig) = signal(kind) else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if tx.send(name).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    tokio::spawn(async move {
        while let Some(name) = rx.recv().await {
            let _ = client.kill(&id, Some(name)).await;
        }
    })
}
