//! The local terminal: raw mode (restored on every exit path), its size, and docker's detach
//! key sequence.

use anyhow::Result;
use nix::sys::termios::{self, SetArg, Termios};
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::sync::Mutex;

/// docker's default `--detach-keys`: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// The terminal state before raw mode, for the restore in `Drop` and in `restore_terminal`
/// (called from `main` on every way out, so an error or a panic path cannot leave the user's
/// shell raw).
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// Whether `fd` (1 or 2) is a terminal, as docker's `streams.Out` decides where progress bars go.
pub fn fd_is_terminal(fd: i32) -> bool {
    match fd {
        1 => std::io::stdout().is_terminal(),
        2 => std::io::stderr().is_terminal(),
        _ => false,
    }
}

/// The width of the terminal on `fd`, `None` when it is not one (docker then assumes 200).
pub fn fd_width(fd: i32) -> Option<u16> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct, which lives for the
    // whole call; on a closed or non-terminal fd the ioctl fails and nothing is written.
    match unsafe { tiocgwinsz(fd, &mut ws) } {
        Ok(_) => Some(ws.ws_col),
        Err(_) => None,
    }
}

/// Turns echo off on stdin's terminal (for a password) until dropped; the terminal's state is
/// put back as it was, as docker's `DisableInputEcho` does.
pub struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    pub fn new() -> Result<EchoOff> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(termios::LocalFlags::ECHO);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// `(height, width)` of the terminal on stdout, `(0, 0)` when stdout is not a terminal (as
/// docker's `GetTtySize`, which is what it sends as `ConsoleSize`).
pub fn size() -> (u16, u16) {
    if !stdout_is_terminal() {
        return (0, 0);
    }
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the pointed-to struct, which lives for the
    // whole call; fd 1 is open (we just checked it is a terminal).
    match unsafe { tiocgwinsz(1, &mut ws) } {
        Ok(_) => (ws.ws_row, ws.ws_col),
        Err(_) => (0, 0),
    }
}

/// Puts stdin's terminal in raw mode (cfmakeraw, as docker's `term.MakeRaw`) until dropped.
pub struct RawGuard {
    _private: (),
}

impl RawGuard {
    pub fn new() -> Result<RawGuard> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let saved = termios::tcgetattr(fd)
            .map_err(|e| anyhow::anyhow!("unable to set IO streams as raw terminal: {e}"))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if let Ok(mut slot) = SAVED.lock() {
            if slot.is_none() {
                *slot = Some(saved);
            }
        }
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)
            .map_err(|e| anyhow::anyhow!("unable to set IO streams as raw terminal: {e}"))?;
        Ok(RawGuard { _private: () })
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Restores the terminal saved by `RawGuard`; a no-op when nothing was changed.
pub fn restore_terminal() {
    let saved = match SAVED.lock() {
        Ok(mut slot) => slot.take(),
        Err(_) => None,
    };
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &t);
    }
}

/// docker's `term.ToBytes`: `ctrl-p,ctrl-q`, `a,b`, `ctrl-@`, `ctrl-[` ...
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let k = key.trim();
        if k.len() > 1 {
            let Some(c) = k.strip_prefix("ctrl-") else {
                anyhow::bail!("Unknown character: '{k}'");
            };
            let c = c.as_bytes();
            if c.len() != 1 {
                anyhow::bail!("Unknown character: '{k}'");
            }
            let code = match c[0].to_ascii_lowercase() {
                b @ b'a'..=b'z' => b - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => anyhow::bail!("Unknown character: '{k}'"),
            };
            out.push(code);
        } else if let Some(&b) = k.as_bytes().first() {
            out.push(b);
        }
    }
    Ok(out)
}

/// The detach sequence docker uses for `keys`: the default when none is given, and (with
/// docker's warning) when the given one cannot be parsed.
pub fn detach_sequence(keys: Option<&str>) -> Vec<u8> {
    match keys.filter(|k| !k.is_empty()) {
        None => DEFAULT_DETACH_KEYS.to_vec(),
        Some(k) => match parse_detach_keys(k) {
            Ok(seq) if !seq.is_empty() => seq,
            Ok(_) => DEFAULT_DETACH_KEYS.to_vec(),
            Err(e) => {
                super::err_out(
                    format!("WARN invalid detach escape keys, using default: {e}\n").as_bytes(),
                );
                DEFAULT_DETACH_KEYS.to_vec()
            }
        },
    }
}

/// docker's escape proxy over typed input: bytes that could start the detach sequence are held
/// back until the next key shows whether it is the sequence (then nothing is sent and the
/// session detaches) or ordinary input (then the held bytes go out first). Unlike docker's,
/// it matches across one read, so keys that arrive together (a paste, tmux send-keys) still
/// detach.
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> EscapeProxy {
        EscapeProxy { keys, matched: 0 }
    }

    /// The bytes to forward, and whether the detach sequence was completed (anything after it
    /// is dropped, as the session ends there).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            if self.matched > 0 {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                    continue;
                }
            }
            out.push(b);
        }
        (out, false)
    }
}

impl EscapeProxy {
    /// For a session whose keys the daemon watches (no TTY): nothing is held back, but the
    /// number of input bytes up to and including a completed sequence is reported, since the
    /// daemon ends the session right there.
    pub fn observe(&mut self, input: &[u8]) -> Option<usize> {
        if self.keys.is_empty() {
            return None;
        }
        for (i, &b) in input.iter().enumerate() {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Some(i + 1);
                }
            } else {
                self.matched = usize::from(b == self.keys[0]);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-_").unwrap(),
            vec![0, 27, 31]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("alt-x").is_err());
        assert_eq!(detach_sequence(None), vec![16, 17]);
        assert_eq!(detach_sequence(Some("")), vec![16, 17]);
    }

    #[test]
    fn escape_proxy_holds_back_then_detaches() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // ctrl-p alone is held back ...
        assert_eq!(p.feed(&[16]), (vec![], false));
        // ... and released when the next key is not ctrl-q.
        assert_eq!(p.feed(b"a"), (vec![16, b'a'], false));
        assert_eq!(p.feed(&[16]), (vec![], false));
        assert_eq!(p.feed(&[17]), (vec![], true));
        // Both keys in one read, after other input.
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(&[b'x', 16, 17, b'y']), (vec![b'x'], true));
        // ctrl-p ctrl-p ctrl-q: the first is input, the last two detach.
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(&[16, 16, 17]), (vec![16], true));
    }

    #[test]
    fn observe_reports_where_the_daemon_detaches() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.observe(b"abc"), None);
        assert_eq!(p.observe(&[b'x', 16]), None);
        assert_eq!(p.observe(&[17, b'y']), Some(1));
        assert_eq!(p.observe(&[16, 16, 17, b'z']), Some(3));
    }
}
