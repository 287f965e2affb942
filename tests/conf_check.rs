//! `outpost conf check` run as a real binary: a good file prints the resolved configuration and exits 0,
//! a broken file prints `file:line: key: message` and exits non-zero.

use std::fs;
use std::process::Command;

fn conf_check(cfg: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["conf", "check", "--config"])
        .arg(cfg)
        .output()
        .expect("run outpost");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A three-server config with a dynamic file prints mode, quorum, servers, keys with sources and warnings.
#[test]
fn good_config_prints_resolved_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    fs::create_dir_all(&data).expect("mkdir");
    fs::write(data.join("myid"), "2\n").expect("myid");
    let dynamic = dir.path().join("zoo.cfg.dynamic");
    fs::write(
        &dynamic,
        "server.1=10.0.0.1:2888:3888:participant;2181\n\
         server.2=10.0.0.2:2888:3888:participant;2181\n\
         server.3=10.0.0.3:2888:3888:observer;2181\n\
         server.4=10.0.0.4:2888:3888:participant;2181\n",
    )
    .expect("dynamic");
    let cfg = dir.path().join("zoo.cfg");
    fs::write(
        &cfg,
        format!(
            "# test\ndataDir={}\ntickTime=2000\ninitLimit=10\nsyncLimit=5\nadmin.portUnification=enable\n\
             someFutureKey=1\ndynamicConfigFile={}\n",
            data.display(),
            dynamic.display()
        ),
    )
    .expect("zoo.cfg");
    let (code, stdout, stderr) = conf_check(&cfg);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("mode: participant (myid 2)"), "{stdout}");
    assert!(
        stdout.contains("quorum: majority; voters: 3; observers: 1"),
        "{stdout}"
    );
    assert!(stdout.contains("observer"), "{stdout}");
    let tick = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("tickTime "))
        .expect("tickTime line");
    assert!(
        tick.contains("2000") && tick.contains("zoo.cfg:3"),
        "{tick}"
    );
    let cnx = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("maxClientCnxns "))
        .expect("maxClientCnxns line");
    assert!(cnx.contains("60") && cnx.contains("default"), "{cnx}");
    assert!(stdout.contains("dynamic "), "{stdout}");
    assert!(stdout.contains("someFutureKey = 1"), "{stdout}");
    assert!(stdout.contains("admin.portUnification"), "{stdout}");
    assert!(
        stdout.contains("server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181"),
        "{stdout}"
    );
    assert!(stdout.contains("version=0"), "{stdout}");
}

/// A standalone sample reports standalone mode.
#[test]
fn standalone_sample_reports_standalone() {
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/samples/standalone.cfg");
    let (code, stdout, stderr) = conf_check(&sample);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert!(stdout.contains("mode: standalone"), "{stdout}");
}

/// A non-numeric tickTime fails with exit code 1 and an error naming file, line and key.
#[test]
fn broken_config_fails_with_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("zoo.cfg");
    fs::write(&cfg, "dataDir=/tmp/x\n# comment\ntickTime=abc\n").expect("zoo.cfg");
    let (code, stdout, stderr) = conf_check(&cfg);
    assert_eq!(code, 1, "stdout: {stdout}");
    assert!(
        stderr.contains("zoo.cfg:3: tickTime: expected an integer, found \"abc\""),
        "{stderr}"
    );
}

/// A missing file fails with exit code 1 and names the file.
#[test]
fn missing_file_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("nope.cfg");
    let (code, _, stderr) = conf_check(&cfg);
    assert_eq!(code, 1);
    assert!(stderr.contains("nope.cfg"), "{stderr}");
}
