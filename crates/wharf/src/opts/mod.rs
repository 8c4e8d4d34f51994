//! Docker's flag value syntaxes, parsed into the wire values the docker CLI sends, with the
//! docker CLI's words for bad values. Pure: no I/O except reading files a flag names.

pub mod health;
pub mod mounts;
pub mod network;
pub mod ports;
pub mod values;

use crate::exit::Exit;
use values::go_quoted;

/// A bad flag, in the two ways the docker CLI reports them.
#[derive(Debug, PartialEq, Eq)]
pub enum BadFlag {
    /// pflag's `invalid argument "v" for "-m, --memory" flag: reason` (plus the usage line).
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// An error of docker's `parse` step, printed as `docker: reason`.
    Parse(String),
}

impl BadFlag {
    pub fn value(flag: &'static str, value: &str, reason: String) -> BadFlag {
        BadFlag::Value {
            flag,
            value: value.to_string(),
            reason,
        }
    }

    /// docker's text and exit code (125) for `command` (`run` or `create`).
    pub fn into_exit(self, command: &str) -> anyhow::Error {
        let text = match self {
            BadFlag::Value {
                flag,
                value,
                reason,
            } => format!(
                "invalid argument {} for \"{flag}\" flag: {reason}\n\nUsage:  wharf {command} [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'wharf {command} --help' for more information",
                go_quoted(&value)
            ),
            BadFlag::Parse(reason) => {
                format!("wharf: {reason}\n\nRun 'wharf {command} --help' for more information")
            }
        };
        Exit::error(125, text)
    }
}
