//! Link options for the shim binary only (there is one shim per container, so its resident
//! memory matters): packed relative relocations (DT_RELR, glibc >= 2.36) shrink the PIE
//! relocation table the dynamic loader has to read at every exec from ~500 KiB to a few KiB.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
