//! Tidy checks over the source tree, run by `cargo test` (rust-analyzer style): every Rust file has a `//!`
//! module doc, tests are never ignored, and the sans-IO engine modules use no tokio, clock or unseeded RNG.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Build output, fuzzer data and hidden directories hold no source of ours.
        let skipped = ["target", "corpus", "artifacts"];
        if path.is_dir() {
            if !name.starts_with('.') && !skipped.contains(&name.as_ref()) {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [
        "src", "core", "observer", "relay", "conf", "tests", "examples", "fuzz",
    ] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 5, "tidy found too few files: {files:?}");
    files
}

/// Every Rust file starts (after blank lines and attributes) with a `//!` module doc.
#[test]
fn every_file_has_a_module_doc() {
    let mut missing = Vec::new();
    for file in all_rust_files() {
        let text = fs::read_to_string(&file).expect("read source");
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("#!["));
        if !first.is_some_and(|l| l.starts_with("//!")) {
            missing.push(file.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "files without a //! module doc: {missing:#?}"
    );
}

/// No test is silenced with the ignore attribute: a test that cannot run here is removed or fixed, not hidden.
#[test]
fn no_ignored_tests() {
    let mut found = Vec::new();
    let needle = ["#[", "ignore", "]"].concat();
    for file in all_rust_files() {
        let text = fs::read_to_string(&file).expect("read source");
        if text.contains(&needle) {
            found.push(file.display().to_string());
        }
    }
    assert!(found.is_empty(), "ignored tests in: {found:#?}");
}

/// The deterministic (sans-IO) modules of outpost-core use no tokio, wall clock, thread sleep or unseeded
/// randomness: time and randomness are inputs there, so the simulator can replay any run from a seed.
#[test]
fn engine_modules_are_sans_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("core/src");
    let banned = [
        "tokio::",
        "SystemTime::now",
        "Instant::now",
        "thread::sleep",
        "thread_rng",
        "rand::random",
        "std::fs::",
        "std::net::",
    ];
    let mut offenders = Vec::new();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for file in files {
        let rel = file.strip_prefix(&root).expect("under core/src");
        let rel = rel.to_string_lossy();
        // The shell and storage IO layers are where IO belongs; everything else must stay pure.
        if rel.starts_with("shell")
            || rel.starts_with("storage")
            || rel.starts_with("bin")
            || rel.starts_with("client")
        {
            continue;
        }
        let text = fs::read_to_string(&file).expect("read source");
        for b in banned {
            if text.contains(b) {
                offenders.push(format!("{rel}: {b}"));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "IO or nondeterminism in sans-IO modules: {offenders:#?}"
    );
}
