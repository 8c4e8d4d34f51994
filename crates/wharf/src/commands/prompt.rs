//! Asking the user for credentials as the docker CLI asks (`PromptUserForCredentials`): the
//! prompts on stdout, the answers read from stdin a line at a time, the password without
//! echo; and docker's `Info ->` notes.

use super::{err_out, out, tty};
use crate::registry::auth::{AuthConfig, INDEX_SERVER};
use anyhow::Result;
use std::io::Read;

const REGISTER_SUGGEST: &str = "Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.";
const PAT_SUGGEST: &str = "You can log in with your password or a Personal Access Token (PAT). Using a limited-scope PAT grants better security and is required for organizations using SSO. Learn more at https://docs.docker.com/go/access-tokens/";

/// Where a note goes.
#[derive(Clone, Copy)]
pub enum To {
    Stdout,
    Stderr,
}

/// docker's `tui.Output.PrintNote`: a blank line, ` Info -> ` and the text, later lines
/// indented under it; on a terminal the header is coloured and the text italic.
pub fn note(to: To, text: &str) {
    let fd = match to {
        To::Stdout => 1,
        To::Stderr => 2,
    };
    let fancy = tty::fd_is_terminal(fd);
    let (header, indent) = if fancy {
        (
            "\x1b[1m\x1b[106m\x1b[30mi\x1b[0m\x1b[0m \x1b[96mInfo \u{2192} \x1b[0m\x1b[0m",
            " ".repeat(9),
        )
    } else {
        (" Info -> ", " ".repeat(9))
    };
    let mut s = format!("\n{header}");
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            s.push_str(&indent);
        }
        if fancy {
            s.push_str(&format!("\x1b[3m{line}\x1b[0m\n"));
        } else {
            s.push_str(line);
            s.push('\n');
        }
    }
    match to {
        To::Stdout => out(s.as_bytes()),
        To::Stderr => err_out(s.as_bytes()),
    }
}

/// `DOCKER_CLI_HINTS`: on unless it parses as false.
fn hints_enabled() -> bool {
    match std::env::var("DOCKER_CLI_HINTS") {
        Ok(v) if !v.is_empty() => {
            !matches!(v.as_str(), "0" | "f" | "F" | "false" | "FALSE" | "False")
        }
        _ => true,
    }
}

/// Shows `message` and reads one line of stdin, trimmed. Docker waits forever on a stdin
/// that ends without a line; here the end of input is an empty answer.
pub fn read_input(message: &str) -> String {
    out(message.as_bytes());
    let mut line = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let mut byte = [0u8; 1];
    // A byte at a time: what follows the line stays for whoever reads stdin next.
    while let Ok(1) = stdin.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim().to_string()
}

/// Go's words for an errno (`syscall.Errno.Error()`): the C library's, first letter lower case.
fn errno_words(e: nix::errno::Errno) -> String {
    let text = std::io::Error::from_raw_os_error(e as i32).to_string();
    let text = match text.rsplit_once(" (os error ") {
        Some((words, _)) => words.to_string(),
        None => text,
    };
    let mut c = text.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => text,
    }
}

/// `PromptUserForCredentials`: asks for what the flags did not give.
pub fn credentials(
    arg_user: &str,
    arg_password: &str,
    default_username: &str,
    server_address: &str,
) -> Result<AuthConfig> {
    let mut user = arg_user.trim().to_string();
    if user.is_empty() {
        if server_address == INDEX_SERVER {
            out(format!("{REGISTER_SUGGEST}\n").as_bytes());
            if hints_enabled() {
                out(format!("{PAT_SUGGEST}\n\n").as_bytes());
            }
        }
        let default_username = default_username.trim();
        let msg = if default_username.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_username}): ")
        };
        user = read_input(&msg);
        if user.is_empty() {
            user = default_username.to_string();
        }
        if user.is_empty() {
            return Err(super::Exit::error(1, "Error: Non-null Username Required"));
        }
    }
    let mut password = arg_password.trim().to_string();
    if password.is_empty() {
        let _quiet = tty::EchoOff::new().map_err(|e| {
            let words = match e.downcast_ref::<nix::errno::Errno>() {
                Some(errno) => errno_words(*errno),
                None => e.to_string(),
            };
            super::Exit::error(1, words)
        })?;
        if server_address == INDEX_SERVER {
            note(
                To::Stderr,
                "A Personal Access Token (PAT) can be used instead.\nTo create a PAT, visit \x1b[4mhttps://app.docker.com/settings\x1b[0m\n\n",
            );
        }
        password = read_input("Password: ");
        out(b"\n");
        if password.is_empty() {
            return Err(super::Exit::error(1, "Error: Password Required"));
        }
    }
    Ok(AuthConfig {
        username: user,
        password,
        server_address: server_address.to_string(),
        ..AuthConfig::default()
    })
}
