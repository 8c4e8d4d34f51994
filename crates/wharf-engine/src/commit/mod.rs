//! `docker commit` and `docker diff`: a container's writable layer as a list of changes and
//! as a new image, and the `--change` dialect that commit and import share.

pub mod dialect;
mod healthcheck;
mod words;
