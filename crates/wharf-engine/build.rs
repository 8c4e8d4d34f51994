//! Compiles `init/wharf_init.rs` (the `--init` process) into a static binary the engine embeds.
//!
//! It is built here with rustc directly, not as a workspace crate, because it needs flags no
//! crate of the workspace should get (static glibc, abort on panic, size optimisation in every
//! profile) and must not link anything the workspace's crates pull in.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

fn main() {
    let src = "init/wharf_init.rs";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=build.rs");
    let (Some(rustc), Some(out_dir), Some(target)) = (
        env::var_os("RUSTC"),
        env::var_os("OUT_DIR"),
        env::var_os("TARGET"),
    ) else {
        eprintln!("wharf-init: cargo did not set RUSTC, OUT_DIR and TARGET for the build script");
        exit(1);
    };
    let out = PathBuf::from(out_dir).join("wharf-init");
    let status = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "wharf_init",
        ])
        .arg("--target")
        .arg(&target)
        .args(["-C", "target-feature=+crt-static"])
        .args(["-C", "panic=abort"])
        .args(["-C", "opt-level=s"])
        .args(["-C", "strip=symbols"])
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("wharf-init: {} {src} failed: {s}", rustc.to_string_lossy());
            exit(1);
        }
        Err(e) => {
            eprintln!("wharf-init: running {}: {e}", rustc.to_string_lossy());
            exit(1);
        }
    }
}
