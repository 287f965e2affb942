//! `outpost cli` against a real Apache ZooKeeper 3.8 (Debian's jar), started on a free loopback port: the
//! built binary must speak the client protocol and print what zkCli prints.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use support::ZooKeeperStandalone;

fn cli(zk: &ZooKeeperStandalone, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("cli")
        .arg("-server")
        .arg(zk.addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run outpost cli")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One-shot commands create, list, read (with zkCli's stat block), update and delete nodes, including
/// sequential ephemerals; errors print zkCli's message and exit non-zero; `help` lists the commands without
/// "Command not found"; and piped stdin runs a whole script on one session.
#[test]
fn cli_against_apache_zookeeper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zk = ZooKeeperStandalone::start(dir.path(), "");

    let out = cli(&zk, &["create", "/cli", "hello"]);
    assert!(out.status.success(), "create: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Created /cli"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&zk, &["ls", "/"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), "[cli, zookeeper]");

    let out = cli(&zk, &["get", "-s", "/cli"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hello");
    assert!(lines[1].starts_with("cZxid = 0x"), "{stdout}");
    assert!(
        lines[2].starts_with("ctime = ") && lines[2].contains(" UTC "),
        "{stdout}"
    );
    assert!(stdout.contains("\ndataVersion = 0\n"), "{stdout}");
    assert!(stdout.contains("\ndataLength = 5\n"), "{stdout}");
    assert!(stdout.ends_with("numChildren = 0\n"), "{stdout}");

    let out = cli(&zk, &["set", "-s", "/cli", "world"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("dataVersion = 1"));
    assert_eq!(text(&cli(&zk, &["get", "/cli"]).stdout).trim(), "world");

    // An ephemeral sequential node lives only as long as its one-shot session.
    let out = cli(&zk, &["create", "-s", "-e", "/cli/e-", "x"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("Created /cli/e-0000000000"),
        "{}",
        text(&out.stderr)
    );

    let out = cli(&zk, &["delete", "/cli"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&zk, &["get", "/cli"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).trim(), "Node does not exist: /cli");

    let out = cli(&zk, &["help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]\n"),
        "{help}"
    );
    assert!(help.contains("\tls [-s] [-w] [-R] path\n"), "{help}");
    assert!(
        !help.contains("Command not found") && !text(&out.stderr).contains("Command not found")
    );

    let out = cli(&zk, &["nosuchcommand"]);
    assert_eq!(out.status.code(), Some(127));

    let mut child = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("cli")
        .arg("-server")
        .arg(zk.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn outpost cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"create /p a\ncreate /p/q b\nget -w /p\nset /p c\nls /p\ncreate /p x\ndeleteall /p\nls /\n")
        .expect("write script");
    let out = child.wait_with_output().expect("wait");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Created /p\nCreated /p/q\n"), "{stderr}");
    assert!(stderr.contains("Node already exists: /p"), "{stderr}");
    assert!(
        stdout
            .contains("WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/p"),
        "{stdout}"
    );
    assert!(stdout.contains("[q]\n"), "{stdout}");
    assert!(stdout.contains("[zookeeper]\n"), "{stdout}");
}
