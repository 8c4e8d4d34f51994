//! How a command ends: an error that already carries docker's wording and exit code, and the
//! two output streams. Below every other module of the CLI, so that parsing, logging and the
//! commands can all use it without importing each other.

use std::fmt;
use std::io::Write;

/// An error that already carries docker's wording and exit code.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

impl Exit {
    /// The error value commands return; `main` prints `message` and exits with `code`.
    pub fn error(code: i32, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code,
            message: message.into(),
        })
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Exit {}

pub fn out(bytes: &[u8]) {
    let mut o = std::io::stdout().lock();
    // A closed stdout (`| head`) must not turn into an error exit, as with docker.
    let _ = o.write_all(bytes);
    let _ = o.flush();
}

pub fn err_out(bytes: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(bytes);
    let _ = e.flush();
}
