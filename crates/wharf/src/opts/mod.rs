//! Docker's flag value syntaxes, parsed into the wire values the docker CLI sends, with the
//! docker CLI's words for bad values. Pure: no I/O except reading files a flag names.

pub mod mounts;
pub mod ports;
pub mod values;
