//! Every sample under conf/samples parses: each zoo.cfg-style file is loaded with its dataDir moved to a
//! temporary directory holding the right myid, and relay.toml has the sections the relay expects.

use outpost_conf::{Mode, ZooCfg};
use std::fs;
use std::path::{Path, PathBuf};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Loads a sample with dataDir moved into a temp dir (with `myid`) and dynamicConfigFile made absolute
/// against the repository root, which is where the samples say to run from.
fn load_sample(rel: &str, myid: Option<u64>) -> ZooCfg {
    let path = samples_dir().join(rel);
    let text = fs::read_to_string(&path).expect("read sample");
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    fs::create_dir_all(&data).expect("mkdir");
    if let Some(id) = myid {
        fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
    }
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("dataDir=") {
            out.push_str(&format!("dataDir={}\n", data.display()));
        } else if let Some(rel) = line.strip_prefix("dynamicConfigFile=") {
            out.push_str(&format!(
                "dynamicConfigFile={}\n",
                repo_root().join(rel).display()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let cfg_path = tmp.path().join("zoo.cfg");
    fs::write(&cfg_path, out).expect("write");
    let cfg = ZooCfg::load(&cfg_path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(
        cfg.unknown.is_empty(),
        "{rel}: unknown keys {:?}",
        cfg.unknown
    );
    cfg
}

/// standalone.cfg parses verbatim as a standalone server with every four-letter word enabled.
#[test]
fn standalone_sample() {
    let cfg = ZooCfg::load(&samples_dir().join("standalone.cfg")).expect("parses verbatim");
    assert_eq!(cfg.mode, Mode::Standalone);
    assert!(cfg.four_letter_words.allows("mntr"));
    assert_eq!(cfg.admin_server_address, "127.0.0.1");
    assert_eq!(cfg.client_address.map(|c| c.port), Some(2181));
}

/// Each of the three-voter sample's servers is a participant with its own client port.
#[test]
fn three_voters_sample() {
    for id in 1..=3u64 {
        let cfg = load_sample(&format!("three-voters/server{id}.cfg"), Some(id));
        assert_eq!(cfg.mode, Mode::Participant);
        assert_eq!(cfg.membership.voters().len(), 3);
        assert_eq!(cfg.client_address.map(|c| c.port), Some(2180 + id as u16));
    }
}

/// The voters-and-observer sample has three participants and one observer with the observer keys set.
#[test]
fn voters_and_observer_sample() {
    for id in 1..=3u64 {
        let cfg = load_sample(&format!("voters-and-observer/server{id}.cfg"), Some(id));
        assert_eq!(cfg.mode, Mode::Participant);
    }
    let cfg = load_sample("voters-and-observer/observer.cfg", Some(4));
    assert_eq!(cfg.mode, Mode::Observer);
    assert_eq!(cfg.observer_reconnect_delay_ms, 100);
    assert_eq!(cfg.observer_election_delay_ms, 200);
    assert_eq!(cfg.membership.observers().len(), 1);
    assert!(cfg
        .warnings
        .iter()
        .all(|w| w.key.as_deref() != Some("peerType")));
}

/// relay.toml has the sections and keys the relay crate reads (checked textually; the relay parses it).
#[test]
fn relay_sample_has_sections() {
    let text = fs::read_to_string(samples_dir().join("relay.toml")).expect("read relay.toml");
    for needle in [
        "[nats]",
        "servers =",
        "stream =",
        "subject_prefix =",
        "[events]",
        "encoding =",
        "include_data =",
        "compress_over_bytes =",
        "[filter]",
        "exclude =",
        "[sink]",
        "kind =",
    ] {
        assert!(text.contains(needle), "relay.toml lacks {needle}");
    }
}

/// No sample is left untested: every .cfg file under conf/samples is one of those loaded above.
#[test]
fn every_sample_is_covered() {
    let mut found = Vec::new();
    for dir in [
        samples_dir(),
        samples_dir().join("three-voters"),
        samples_dir().join("voters-and-observer"),
    ] {
        for e in fs::read_dir(&dir).expect("read dir").flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".cfg") {
                found.push(name);
            }
        }
    }
    found.sort();
    assert_eq!(
        found,
        vec![
            "observer.cfg",
            "server1.cfg",
            "server1.cfg",
            "server2.cfg",
            "server2.cfg",
            "server3.cfg",
            "server3.cfg",
            "standalone.cfg"
        ]
    );
}
