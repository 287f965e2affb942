//! Link options for release builds of the `outpost` binary, chosen to cut an idle server's resident memory.
//!
//! Most of an idle server's RSS is file-backed pages of its own executable: the kernel maps up to 64 KiB
//! around every page fault in a file mapping, so startup code spread across 8 MiB of text leaves about
//! 4 MiB resident. Two link options shrink that (measured in README.md, "Standalone benchmark"):
//! - `--symbol-ordering-file` places the functions a starting, idle server runs next to each other.
//!   `scripts/gen-symbol-order.sh` records them with valgrind into `src/symbol-order.txt`; names the
//!   linker does not find (after a dependency or toolchain change) are skipped silently, so a stale file
//!   costs memory, never correctness. Regenerate it when the idle RSS in the benchmark creeps up.
//! - `-z pack-relative-relocs` stores the position-independent executable's relocations compactly
//!   (DT_RELR, glibc 2.36+), so the loader no longer reads 400 KiB of them at every start.
//!
//! Debug and test builds link as before: the ordering only matters for the binary operators run.

use std::path::Path;

fn main() {
    let order = Path::new("src/symbol-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        return;
    }
    // Both are lld options, and lld links x86_64-unknown-linux-gnu by default since Rust 1.90; a build
    // that picks another linker (GNU ld before 2.43 lacks --symbol-ordering-file) links with its defaults.
    let target = std::env::var("TARGET").unwrap_or_default();
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || rustflags.contains("linker");
    if target != "x86_64-unknown-linux-gnu" || own_linker {
        return;
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order = Path::new(&manifest_dir).join(order);
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
