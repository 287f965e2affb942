//! zkCli's command set over [`outpost_core::client::Client`]: each command parses its options like zkCli,
//! calls the client, and prints what zkCli prints (stdout for results, stderr for `Created ...` and
//! errors, as zkCli does).

use super::parse::{flag, parse, valued, OptSpec, Parsed};
use outpost_core::client::{
    AddWatchMode, Client, ClientError, CreateMode, MultiOp, MultiResult, WatcherType,
};
use outpost_core::proto::client::DeleteRequest;
use outpost_core::proto::{perms, Acl, ErrorCode, Id, Stat};
use outpost_core::server::fourlw::java_date;
use std::collections::VecDeque;
use std::fmt::Write as _;

/// A failed command: the message zkCli prints on stderr and the exit code it would exit with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliFailure {
    /// What to print.
    pub message: String,
    /// Process exit code in one-shot mode (1, or 127 for an unknown command).
    pub code: i32,
}

impl CliFailure {
    /// A failure with exit code 1.
    pub fn new(message: impl Into<String>) -> CliFailure {
        CliFailure {
            message: message.into(),
            code: 1,
        }
    }
}

/// A command's name, options and usage text (as zkCli's `commandMap` lists them).
pub struct CommandDef {
    /// Name typed by the user.
    pub name: &'static str,
    /// The usage after the name.
    pub usage: &'static str,
    /// Accepted options.
    pub opts: &'static [OptSpec],
}

/// Every command, including the shell-level ones (`connect`, `history`, `redo`, `printwatches`, `quit`).
pub const COMMANDS: &[CommandDef] = &[
    CommandDef {
        name: "addWatch",
        usage: "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
        opts: &[valued("m")],
    },
    CommandDef {
        name: "addauth",
        usage: "scheme auth",
        opts: &[],
    },
    CommandDef {
        name: "close",
        usage: "",
        opts: &[],
    },
    CommandDef {
        name: "config",
        usage: "[-c] [-w] [-s]",
        opts: &[flag("c"), flag("w"), flag("s")],
    },
    CommandDef {
        name: "connect",
        usage: "host:port",
        opts: &[],
    },
    CommandDef {
        name: "create",
        usage: "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
        opts: &[flag("s"), flag("e"), flag("c"), valued("t")],
    },
    CommandDef {
        name: "delete",
        usage: "[-v version] path",
        opts: &[valued("v")],
    },
    CommandDef {
        name: "deleteall",
        usage: "path [-b batch size]",
        opts: &[valued("b")],
    },
    CommandDef {
        name: "delquota",
        usage: "[-n|-b|-N|-B] path",
        opts: &[flag("n"), flag("b"), flag("N"), flag("B")],
    },
    CommandDef {
        name: "get",
        usage: "[-s] [-w] path",
        opts: &[flag("s"), flag("w")],
    },
    CommandDef {
        name: "getAcl",
        usage: "[-s] path",
        opts: &[flag("s")],
    },
    CommandDef {
        name: "getAllChildrenNumber",
        usage: "path",
        opts: &[],
    },
    CommandDef {
        name: "getEphemerals",
        usage: "path",
        opts: &[],
    },
    CommandDef {
        name: "help",
        usage: "",
        opts: &[],
    },
    CommandDef {
        name: "history",
        usage: "",
        opts: &[],
    },
    CommandDef {
        name: "listquota",
        usage: "path",
        opts: &[],
    },
    CommandDef {
        name: "ls",
        usage: "[-s] [-w] [-R] path",
        opts: &[flag("?"), flag("s"), flag("w"), flag("R")],
    },
    CommandDef {
        name: "printwatches",
        usage: "on|off",
        opts: &[],
    },
    CommandDef {
        name: "quit",
        usage: "",
        opts: &[],
    },
    CommandDef {
        name: "reconfig",
        usage: "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]",
        opts: &[
            flag("s"),
            valued("v"),
            valued("file"),
            valued("members"),
            valued("add"),
            valued("remove"),
        ],
    },
    CommandDef {
        name: "redo",
        usage: "cmdno",
        opts: &[],
    },
    CommandDef {
        name: "removewatches",
        usage: "path [-c|-d|-a] [-l]",
        opts: &[flag("c"), flag("d"), flag("a"), flag("l")],
    },
    CommandDef {
        name: "set",
        usage: "[-s] [-v version] path data",
        opts: &[flag("s"), valued("v")],
    },
    CommandDef {
        name: "setAcl",
        usage: "[-s] [-v version] [-R] path acl",
        opts: &[flag("s"), valued("v"), flag("R")],
    },
    CommandDef {
        name: "setquota",
        usage: "-n|-b|-N|-B val path",
        opts: &[valued("n"), valued("b"), valued("N"), valued("B")],
    },
    CommandDef {
        name: "stat",
        usage: "[-w] path",
        opts: &[flag("w")],
    },
    CommandDef {
        name: "sync",
        usage: "path",
        opts: &[],
    },
    CommandDef {
        name: "version",
        usage: "",
        opts: &[],
    },
    CommandDef {
        name: "whoami",
        usage: "",
        opts: &[],
    },
];

/// The command definition for `name`.
pub fn find(name: &str) -> Option<&'static CommandDef> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// zkCli's usage listing: a header, then one tab-indented `name usage` line per command, sorted as Java
/// sorts strings (uppercase before lowercase).
pub fn usage_text() -> String {
    let mut names: Vec<&CommandDef> = COMMANDS.iter().collect();
    names.sort_by(|a, b| a.name.cmp(b.name));
    let mut out = String::from("ZooKeeper -server host:port -timeout ms cmd args\n");
    for c in names {
        let _ = writeln!(out, "\t{} {}", c.name, c.usage);
    }
    out
}

fn usage_of(def: &CommandDef) -> String {
    format!("{} {}", def.name, def.usage)
}

/// `StatPrinter`: the eleven `name = value` lines zkCli prints for `-s` and `stat`.
pub fn format_stat(stat: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        stat.czxid,
        java_date(stat.ctime),
        stat.mzxid,
        java_date(stat.mtime),
        stat.pzxid,
        stat.cversion,
        stat.version,
        stat.aversion,
        stat.ephemeral_owner,
        stat.data_length,
        stat.num_children
    )
}

/// `ZKUtil.getPermString`: `cdrwa` order.
pub fn perm_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (perms::CREATE, 'c'),
        (perms::DELETE, 'd'),
        (perms::READ, 'r'),
        (perms::WRITE, 'w'),
        (perms::ADMIN, 'a'),
    ] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// `AclParser.parse`: `scheme:id:perms[,...]`; malformed entries are reported on stderr and skipped.
pub fn parse_acl(text: &str) -> Vec<Acl> {
    let mut out = Vec::new();
    for a in text.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        }
        let mut p = 0;
        for c in a[last + 1..].chars() {
            match c {
                'r' => p |= perms::READ,
                'w' => p |= perms::WRITE,
                'c' => p |= perms::CREATE,
                'd' => p |= perms::DELETE,
                'a' => p |= perms::ADMIN,
                other => eprintln!("Unknown perm type: {other}"),
            }
        }
        out.push(Acl {
            perms: p,
            id: Id::new(&a[..first], &a[first + 1..last]),
        });
    }
    out
}

/// The message zkCli's `CliWrapperException` prints for a ZooKeeper error on `path`.
pub fn keeper_message(code: ErrorCode, path: &str) -> String {
    match code {
        ErrorCode::NoNode => format!("Node does not exist: {path}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        ErrorCode::NodeExists => format!("Node already exists: {path}"),
        ErrorCode::NotEmpty => format!("Node not empty: {path}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {path}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {path}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {path}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {path}"),
        ErrorCode::BadVersion => format!("version No is not valid : {path}"),
        ErrorCode::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)".into()
        }
        ErrorCode::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of \
             last commmitted config - try invoking reconfiguration after new servers are connected and synced"
            .into(),
        ErrorCode::QuotaExceeded => format!("Quota has exceeded : {path}"),
        other if path.is_empty() => format!("KeeperErrorCode = {}", other.name()),
        other => format!("KeeperErrorCode = {} for {path}", other.name()),
    }
}

fn client_failure(e: ClientError, path: &str) -> CliFailure {
    match e {
        ClientError::ConnectionLoss | ClientError::Closed => {
            CliFailure::new(keeper_message(ErrorCode::ConnectionLoss, path))
        }
        ClientError::SessionExpired => {
            CliFailure::new(keeper_message(ErrorCode::SessionExpired, path))
        }
        ClientError::AuthFailed => CliFailure::new(keeper_message(ErrorCode::AuthFailed, path)),
        other => CliFailure::new(other.to_string()),
    }
}

/// Unwraps a client result: transport errors and ZooKeeper errors both become zkCli's message.
fn check<T>(r: Result<Result<T, ErrorCode>, ClientError>, path: &str) -> Result<T, CliFailure> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(code)) => Err(CliFailure::new(keeper_message(code, path))),
        Err(e) => Err(client_failure(e, path)),
    }
}

fn validate_path(path: &str) -> Result<(), CliFailure> {
    outpost_core::path::validate(path).map_err(|e| CliFailure::new(e.to_string()))
}

fn java_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// What a command asks the shell to do afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Nothing special.
    Done,
    /// The session was closed by `close`.
    Closed,
}

/// Parses `words` for `def`, applying zkCli's "deprecated positional watch/version" compatibility for
/// get, ls, stat and delete.
pub fn parse_for(def: &CommandDef, words: &[String]) -> Result<Parsed, CliFailure> {
    let mut p = parse(words, def.opts).map_err(CliFailure::new)?;
    let legacy = match def.name {
        "get" | "ls" | "stat" => Some("-w"),
        "delete" => Some("-v"),
        _ => None,
    };
    if let Some(opt) = legacy {
        if p.args.len() > 2 {
            let what = match def.name {
                "get" => "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
                "ls" => "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
                "stat" => "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
                _ => "'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.",
            };
            eprintln!("{what}");
            let mut w: Vec<String> = words.to_vec();
            if let Some(pos) = w.iter().position(|x| *x == p.args[2]) {
                if opt == "-w" {
                    w[pos] = "-w".into();
                } else {
                    w.insert(pos, "-v".into());
                }
            }
            p = parse(&w, def.opts).map_err(CliFailure::new)?;
        }
    }
    Ok(p)
}

/// Runs one client command (not the shell-level ones) on `zk`.
pub async fn run(zk: &Client, def: &CommandDef, p: &Parsed) -> Result<After, CliFailure> {
    let args = &p.args;
    let need = |n: usize| -> Result<(), CliFailure> {
        if args.len() < n {
            Err(CliFailure::new(usage_of(def)))
        } else {
            Ok(())
        }
    };
    let version = |name: &str| -> Result<i32, CliFailure> {
        match p.value(name) {
            None => Ok(-1),
            Some(v) => v
                .parse()
                .map_err(|_| CliFailure::new(format!("For input string: \"{v}\""))),
        }
    };
    match def.name {
        "create" => {
            need(2)?;
            let (e, s, c, t) = (p.has("e"), p.has("s"), p.has("c"), p.has("t"));
            if c && (e || s) {
                return Err(CliFailure::new(
                    "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
                ));
            }
            let ttl: i64 = match p.value("t") {
                None => 0,
                Some(v) => v
                    .parse()
                    .map_err(|_| CliFailure::new("-t argument must be a long value"))?,
            };
            if t && e {
                return Err(CliFailure::new("TTLs cannot be used with Ephemeral znodes"));
            }
            if t && c {
                return Err(CliFailure::new("TTLs cannot be used with Container znodes"));
            }
            let mode = if e && s {
                CreateMode::EphemeralSequential
            } else if e {
                CreateMode::Ephemeral
            } else if s {
                if t {
                    CreateMode::PersistentSequentialWithTtl(ttl)
                } else {
                    CreateMode::PersistentSequential
                }
            } else if c {
                CreateMode::Container
            } else if t {
                CreateMode::PersistentWithTtl(ttl)
            } else {
                CreateMode::Persistent
            };
            if t && (ttl <= 0 || ttl > 0xFF_FFFF_FFFF) {
                return Err(CliFailure::new(
                    "ttl must be positive and cannot be larger than: 1099511627775",
                ));
            }
            let path = &args[1];
            outpost_core::path::validate_create(path, s)
                .map_err(|e| CliFailure::new(e.to_string()))?;
            let data = args.get(2).map(|d| d.as_bytes());
            let acl = match args.get(3) {
                Some(a) => parse_acl(a),
                None => Acl::open_unsafe(),
            };
            match zk.create_nullable(path, data, &acl, mode).await {
                Ok(Ok(created)) => {
                    eprintln!("Created {created}");
                    Ok(After::Done)
                }
                Ok(Err(ErrorCode::EphemeralOnLocalSession)) => {
                    eprintln!("Unable to create ephemeral node on a local session");
                    Err(CliFailure::new(keeper_message(
                        ErrorCode::EphemeralOnLocalSession,
                        path,
                    )))
                }
                Ok(Err(ErrorCode::InvalidAcl)) => {
                    eprintln!("KeeperErrorCode = InvalidACL for {path}");
                    Err(CliFailure::new(keeper_message(ErrorCode::InvalidAcl, path)))
                }
                other => zk_done(other, path),
            }
        }
        "delete" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            check(zk.delete(path, version("v")?).await, path)?;
            Ok(After::Done)
        }
        "deleteall" => {
            need(2)?;
            let batch: usize = match p.value("b") {
                None => 1000,
                Some(v) => v
                    .parse()
                    .map_err(|_| CliFailure::new("-b argument must be an int value"))?,
            };
            let path = &args[1];
            validate_path(path)?;
            if !delete_recursive(zk, path, batch.max(1)).await? {
                eprintln!("Failed to delete some node(s) in the subtree!");
            }
            Ok(After::Done)
        }
        "set" => {
            need(3)?;
            let path = &args[1];
            validate_path(path)?;
            let stat = check(
                zk.set_data(path, args[2].as_bytes(), version("v")?).await,
                path,
            )?;
            if p.has("s") {
                print!("{}", format_stat(&stat));
            }
            Ok(After::Done)
        }
        "get" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            let (data, stat) = check(zk.get_data_nullable(path, p.has("w")).await, path)?;
            match data {
                Some(d) => println!("{}", String::from_utf8_lossy(&d)),
                None => println!("null"),
            }
            if p.has("s") {
                print!("{}", format_stat(&stat));
            }
            Ok(After::Done)
        }
        "ls" => {
            if p.has("?") {
                println!(
                    "usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch"
                );
            }
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            let watch = p.has("w");
            if p.has("R") {
                for node in subtree_dfs(zk, path, watch).await? {
                    println!("{node}");
                }
            } else if p.has("s") {
                let (mut children, stat) = check(zk.get_children2(path, watch).await, path)?;
                children.sort();
                println!("{}", java_list(&children));
                print!("{}", format_stat(&stat));
            } else {
                let mut children = check(zk.get_children(path, watch).await, path)?;
                children.sort();
                println!("{}", java_list(&children));
            }
            Ok(After::Done)
        }
        "stat" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            match check(zk.exists(path, p.has("w")).await, path)? {
                Some(stat) => {
                    print!("{}", format_stat(&stat));
                    Ok(After::Done)
                }
                None => Err(CliFailure::new(keeper_message(ErrorCode::NoNode, path))),
            }
        }
        "getAcl" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            let (acl, stat) = check(zk.get_acl(path).await, path)?;
            for a in &acl {
                // Java prints the Id record's toString (CSV archive form) and then the permissions.
                println!("'{},'{}\n: {}", a.id.scheme, a.id.id, perm_string(a.perms));
            }
            if p.has("s") {
                print!("{}", format_stat(&stat));
            }
            Ok(After::Done)
        }
        "setAcl" => {
            need(3)?;
            let path = &args[1];
            validate_path(path)?;
            let acl = parse_acl(&args[2]);
            let v = version("v")?;
            if p.has("R") {
                for node in subtree_dfs(zk, path, false).await? {
                    match zk.set_acl(&node, &acl, v).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(code)) => print!("{}", keeper_message(code, &node)),
                        Err(e) => return Err(client_failure(e, &node)),
                    }
                }
            } else {
                let stat = check(zk.set_acl(path, &acl, v).await, path)?;
                if p.has("s") {
                    print!("{}", format_stat(&stat));
                }
            }
            Ok(After::Done)
        }
        "sync" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            match zk.sync(path).await {
                Ok(Ok(_)) => println!("Sync is OK"),
                Ok(Err(code)) => println!("Sync has failed. rc={}", code.code()),
                Err(e) => return Err(client_failure(e, path)),
            }
            Ok(After::Done)
        }
        "getAllChildrenNumber" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            println!("{}", check(zk.get_all_children_number(path).await, path)?);
            Ok(After::Done)
        }
        "getEphemerals" => {
            let path = args.get(1).map(String::as_str).unwrap_or("/");
            let mut eph = check(zk.get_ephemerals(path).await, path)?;
            eph.sort();
            println!("{}", java_list(&eph));
            Ok(After::Done)
        }
        "addauth" => {
            need(2)?;
            let auth = args
                .get(2)
                .map(|a| a.as_bytes().to_vec())
                .unwrap_or_default();
            check(zk.add_auth(&args[1], &auth).await, "")?;
            Ok(After::Done)
        }
        "whoami" => {
            let infos = check(zk.who_am_i().await, "")?;
            println!("Auth scheme: User");
            for i in infos {
                println!("{}: {}", i.auth_scheme, i.user);
            }
            Ok(After::Done)
        }
        "addWatch" => {
            if args.len() != 2 {
                return Err(CliFailure::new(usage_of(def)));
            }
            let mode = match p.value("m").map(str::to_uppercase).as_deref() {
                None | Some("PERSISTENT_RECURSIVE") => AddWatchMode::PersistentRecursive,
                Some("PERSISTENT") => AddWatchMode::Persistent,
                Some(other) => {
                    return Err(CliFailure::new(format!(
                        "No enum constant org.apache.zookeeper.AddWatchMode.{other}"
                    )))
                }
            };
            let path = &args[1];
            check(zk.add_watch(path, mode).await, path)?;
            Ok(After::Done)
        }
        "removewatches" => {
            need(2)?;
            let path = &args[1];
            validate_path(path)?;
            let kind = if p.has("c") {
                WatcherType::Children
            } else if p.has("d") {
                WatcherType::Data
            } else {
                WatcherType::Any
            };
            check(zk.remove_watches(path, kind).await, path)?;
            Ok(After::Done)
        }
        "config" => {
            let (data, stat) = check(zk.get_config(p.has("w")).await, "/zookeeper/config")?;
            let text = String::from_utf8_lossy(&data).into_owned();
            if p.has("c") {
                println!("{}", client_config_str(&text));
            } else {
                println!("{text}");
            }
            if p.has("s") {
                print!("{}", format_stat(&stat));
            }
            Ok(After::Done)
        }
        "reconfig" => reconfig(zk, p).await,
        "setquota" => {
            need(2)?;
            set_quota(zk, p).await?;
            Ok(After::Done)
        }
        "listquota" => {
            need(2)?;
            let path = &args[1];
            eprintln!("absolute path is {}", limit_path(path));
            let limits = match zk.get_data(&limit_path(path), false).await {
                Ok(Ok((d, _))) => d,
                Ok(Err(ErrorCode::NoNode)) => {
                    eprintln!("quota for {path} does not exist.");
                    return Ok(After::Done);
                }
                other => check(other, path)?.0,
            };
            println!("Output quota for {path} {}", StatsTrack::parse(&limits));
            let stats = match zk.get_data(&stat_path(path), false).await {
                Ok(Ok((d, _))) => d,
                Ok(Err(ErrorCode::NoNode)) => {
                    eprintln!("quota for {path} does not exist.");
                    return Ok(After::Done);
                }
                other => check(other, path)?.0,
            };
            println!("Output stat for {path} {}", StatsTrack::parse(&stats));
            Ok(After::Done)
        }
        "delquota" => {
            need(2)?;
            del_quota(zk, p).await?;
            Ok(After::Done)
        }
        "close" => {
            let _ = zk.close().await;
            Ok(After::Closed)
        }
        "version" => {
            println!(
                "ZooKeeper CLI version: 3.8.0 (outpost {})",
                env!("CARGO_PKG_VERSION")
            );
            Ok(After::Done)
        }
        other => Err(CliFailure {
            message: format!("Command not found: {other}"),
            code: 127,
        }),
    }
}

fn zk_done<T>(
    r: Result<Result<T, ErrorCode>, ClientError>,
    path: &str,
) -> Result<After, CliFailure> {
    check(r, path).map(|_| After::Done)
}

/// `ZKUtil.visitSubTreeDFS`: the node, then each child subtree in sorted order.
async fn subtree_dfs(zk_: &Client, path: &str, watch: bool) -> Result<Vec<String>, CliFailure> {
    check(zk_.get_data(path, watch).await, path)?;
    let mut out = vec![path.to_string()];
    let mut stack = vec![path.to_string()];
    // Iterative DFS that still emits in recursive pre-order.
    let mut order: Vec<String> = Vec::new();
    while let Some(node) = stack.pop() {
        if node != path {
            order.push(node.clone());
        }
        let mut children = match zk_.get_children(&node, watch).await {
            Ok(Ok(c)) => c,
            Ok(Err(ErrorCode::NoNode)) => continue,
            other => check(other, &node)?,
        };
        children.sort();
        for c in children.iter().rev() {
            stack.push(if node == "/" {
                format!("/{c}")
            } else {
                format!("{node}/{c}")
            });
        }
    }
    out.extend(order);
    Ok(out)
}

/// `ZKUtil.deleteRecursive`: breadth-first listing, then deletes deepest-first in multi batches.
pub async fn delete_recursive(zk_: &Client, path: &str, batch: usize) -> Result<bool, CliFailure> {
    let mut tree = vec![path.to_string()];
    let mut queue: VecDeque<String> = VecDeque::from([path.to_string()]);
    // The root node must exist: its absence is reported like zkCli does.
    check(zk_.get_children(path, false).await, path)?;
    while let Some(node) = queue.pop_front() {
        let children = match zk_.get_children(&node, false).await {
            Ok(Ok(c)) => c,
            Ok(Err(ErrorCode::NoNode)) => continue,
            other => check(other, &node)?,
        };
        for c in children {
            let child = if node == "/" {
                format!("/{c}")
            } else {
                format!("{node}/{c}")
            };
            tree.push(child.clone());
            queue.push_back(child);
        }
    }
    let mut ok = true;
    let paths: Vec<&String> = tree.iter().rev().collect();
    for chunk in paths.chunks(batch) {
        let ops: Vec<MultiOp> = chunk
            .iter()
            .map(|p| {
                MultiOp::Delete(DeleteRequest {
                    path: (*p).clone(),
                    version: -1,
                })
            })
            .collect();
        match zk_.multi(ops).await {
            Ok(Ok(results)) => {
                if results
                    .iter()
                    .any(|r| matches!(r, MultiResult::Error { err } if !err.is_ok()))
                {
                    // Fall back to one-by-one deletes, ignoring nodes already gone.
                    for p in chunk {
                        match zk_.delete(p, -1).await {
                            Ok(Ok(())) | Ok(Err(ErrorCode::NoNode)) => {}
                            Ok(Err(_)) => ok = false,
                            Err(e) => return Err(client_failure(e, p)),
                        }
                    }
                }
            }
            Ok(Err(code)) => return Err(CliFailure::new(keeper_message(code, path))),
            Err(e) => return Err(client_failure(e, path)),
        }
    }
    Ok(ok)
}

/// `/zookeeper/quota<path>/zookeeper_limits`.
pub fn limit_path(path: &str) -> String {
    format!("/zookeeper/quota{path}/zookeeper_limits")
}

/// `/zookeeper/quota<path>/zookeeper_stats`.
pub fn stat_path(path: &str) -> String {
    format!("/zookeeper/quota{path}/zookeeper_stats")
}

/// ZooKeeper's `StatsTrack`: `count=..,bytes=..` plus optional `=;key=value` hard limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsTrack {
    entries: Vec<(String, i64)>,
}

impl StatsTrack {
    /// Parses the data of a limits or stats node (unparsable values count as -1).
    pub fn parse(data: &[u8]) -> StatsTrack {
        let text = String::from_utf8_lossy(data);
        let mut t = StatsTrack::default();
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let k = kv.next().unwrap_or_default();
            let v = kv.next().unwrap_or_default();
            t.set(
                k,
                if v.is_empty() {
                    -1
                } else {
                    v.parse().unwrap_or(-1)
                },
            );
        }
        t
    }

    /// The value of `key`, -1 when absent.
    pub fn get(&self, key: &str) -> i64 {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map_or(-1, |(_, v)| *v)
    }

    /// Sets `key`.
    pub fn set(&mut self, key: &str, value: i64) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value,
            None => self.entries.push((key.to_string(), value)),
        }
    }
}

impl std::fmt::Display for StatsTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "count={},bytes={}", self.get("count"), self.get("bytes"))?;
        let mut rest: Vec<&(String, i64)> = self
            .entries
            .iter()
            .filter(|(k, _)| k != "count" && k != "bytes")
            .collect();
        if !rest.is_empty() {
            rest.sort();
            f.write_str("=")?;
            for (k, v) in rest {
                write!(f, ";{k}={v}")?;
            }
        }
        Ok(())
    }
}

async fn ensure_node(zk_: &Client, path: &str) -> Result<(), CliFailure> {
    match zk_.exists(path, false).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => match zk_
            .create_nullable(path, None, &Acl::open_unsafe(), CreateMode::Persistent)
            .await
        {
            Ok(Ok(_)) | Ok(Err(ErrorCode::NodeExists)) => Ok(()),
            other => zk_done(other, path).map(|_| ()),
        },
        other => check(other, path).map(|_| ()),
    }
}

async fn set_quota(zk_: &Client, p: &Parsed) -> Result<(), CliFailure> {
    let path = &p.args[1];
    if path.starts_with("/zookeeper/quota") {
        eprintln!("cannot set a quota under the path: /zookeeper/quota");
        return Ok(());
    }
    let mut quota = StatsTrack::default();
    for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
        quota.set(k, -1);
    }
    let keys = [
        ("n", "count", true),
        ("b", "bytes", false),
        ("N", "countHardLimit", true),
        ("B", "byteHardLimit", false),
    ];
    let mut any = false;
    for (opt, key, is_count) in keys {
        if let Some(v) = p.value(opt) {
            any = true;
            let Ok(n) = v.parse::<i64>() else {
                eprintln!("NumberFormatException happens when parsing the option value");
                return Ok(());
            };
            if is_count && n <= 0 {
                eprintln!("the num quota must be greater than zero");
                return Ok(());
            }
            if !is_count && n < 0 {
                eprintln!("the bytes quota must be greater than or equal to zero");
                return Ok(());
            }
            quota.set(key, n);
        }
    }
    if !any {
        eprintln!("setquota -n|-b|-N|-B val path");
        return Ok(());
    }
    validate_path(path)?;
    if check(zk_.exists(path, false).await, path)?.is_none() {
        return Err(CliFailure::new(format!("{path} does not exist.")));
    }
    // A quota may not be nested inside or above another one.
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut prefix = String::from("/zookeeper/quota");
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        prefix.push('/');
        prefix.push_str(part);
        if let Ok(Ok(children)) = zk_.get_children(&prefix, false).await {
            if children.iter().any(|c| c == "zookeeper_limits") {
                return Err(CliFailure::new(format!(
                    "{path} has a parent {} which has a quota",
                    &prefix["/zookeeper/quota".len()..]
                )));
            }
        }
    }
    let quota_root = format!("/zookeeper/quota{path}");
    if let Ok(Ok(true)) = zk_
        .exists(&quota_root, false)
        .await
        .map(|r| r.map(|s| s.is_some()))
    {
        for node in subtree_dfs(zk_, &quota_root, false)
            .await
            .unwrap_or_default()
        {
            if node != quota_root && node.ends_with("/zookeeper_limits") {
                let owner = &node["/zookeeper/quota".len()..node.len() - "/zookeeper_limits".len()];
                if owner != path {
                    return Err(CliFailure::new(format!(
                        "{path} has a child {owner} which has a quota"
                    )));
                }
            }
        }
    }
    ensure_node(zk_, "/zookeeper").await?;
    ensure_node(zk_, "/zookeeper/quota").await?;
    let mut node = String::from("/zookeeper/quota");
    for part in &parts {
        node.push('/');
        node.push_str(part);
        ensure_node(zk_, &node).await?;
    }
    let limits = limit_path(path);
    let stats = stat_path(path);
    let open = Acl::open_unsafe();
    let current = if check(zk_.exists(&limits, false).await, &limits)?.is_none() {
        check(
            zk_.create(
                &limits,
                quota.to_string().as_bytes(),
                &open,
                CreateMode::Persistent,
            )
            .await,
            &limits,
        )?;
        let mut s = StatsTrack::default();
        s.set("count", 0);
        s.set("bytes", 0);
        match zk_
            .create(
                &stats,
                s.to_string().as_bytes(),
                &open,
                CreateMode::Persistent,
            )
            .await
        {
            Ok(Ok(_)) | Ok(Err(ErrorCode::NodeExists)) => {}
            other => {
                check(other, &stats)?;
            }
        }
        quota
    } else {
        let (d, _) = check(zk_.get_data(&limits, false).await, &limits)?;
        let mut existing = StatsTrack::parse(&d);
        for k in ["count", "bytes", "countHardLimit", "byteHardLimit"] {
            if quota.get(k) > -1 {
                existing.set(k, quota.get(k));
            }
        }
        check(
            zk_.set_data(&limits, existing.to_string().as_bytes(), -1)
                .await,
            &limits,
        )?;
        existing
    };
    if let Ok(Ok((d, _))) = zk_.get_data(&stats, false).await {
        let used = StatsTrack::parse(&d);
        let over = |soft: &str, hard: &str, used_v: i64| {
            (current.get(soft) > -1 && current.get(soft) < used_v)
                || (current.get(hard) > -1 && current.get(hard) < used_v)
        };
        if over("count", "countHardLimit", used.get("count")) {
            println!(
                "[Warning]: the count quota you create is less than the existing count:{}",
                used.get("count")
            );
        }
        if over("bytes", "byteHardLimit", used.get("bytes")) {
            println!(
                "[Warning]: the bytes quota you create is less than the existing bytes:{}",
                used.get("bytes")
            );
        }
    }
    Ok(())
}

async fn del_quota(zk_: &Client, p: &Parsed) -> Result<(), CliFailure> {
    let path = &p.args[1];
    let limits = limit_path(path);
    let data = match zk_.get_data(&limits, false).await {
        Ok(Ok((d, _))) => d,
        Ok(Err(ErrorCode::NoNode)) => {
            println!("Quota does not exist for {path}");
            return Ok(());
        }
        other => check(other, path)?.0,
    };
    let flags = [
        ("n", "count"),
        ("b", "bytes"),
        ("N", "countHardLimit"),
        ("B", "byteHardLimit"),
    ];
    if flags.iter().any(|(o, _)| p.has(o)) {
        let mut st = StatsTrack::parse(&data);
        for (o, k) in flags {
            if p.has(o) {
                st.set(k, -1);
            }
        }
        check(
            zk_.set_data(&limits, st.to_string().as_bytes(), -1).await,
            &limits,
        )?;
        return Ok(());
    }
    let parent = format!("/zookeeper/quota{path}");
    let children = check(zk_.get_children(&parent, false).await, &parent)?;
    for c in children {
        let child = format!("{parent}/{c}");
        check(zk_.delete(&child, -1).await, &child)?;
    }
    // Trim now-empty quota directories up to /zookeeper/quota.
    let mut node = parent;
    while node != "/zookeeper/quota" && node.starts_with("/zookeeper/quota/") {
        match zk_.get_children(&node, false).await {
            Ok(Ok(c)) if c.is_empty() => {
                check(zk_.delete(&node, -1).await, &node)?;
                node = node[..node.rfind('/').unwrap_or(0)].to_string();
            }
            _ => break,
        }
    }
    Ok(())
}

async fn reconfig(zk_: &Client, p: &Parsed) -> Result<After, CliFailure> {
    let usage = "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";
    let (file, members, add, remove) = (
        p.has("file"),
        p.has("members"),
        p.has("add"),
        p.has("remove"),
    );
    if !(file || members || add || remove) {
        return Err(CliFailure::new(usage));
    }
    if (file || members) && (add || remove) {
        return Err(CliFailure::new(
            "Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)",
        ));
    }
    if file && members {
        return Err(CliFailure::new(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let version = match p.value("v") {
        None => -1,
        Some(v) => i64::from_str_radix(v.trim_start_matches("0x"), 16).map_err(|_| {
            CliFailure::new("-v must be followed by a long (configuration version)")
        })?,
    };
    let joining = p.value("add").map(str::to_lowercase);
    let leaving = p.value("remove").map(str::to_lowercase);
    let mut new_members = p.value("members").map(str::to_lowercase);
    if let Some(f) = p.value("file") {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliFailure::new(format!("Error processing {f}: {e}")))?;
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| {
                l.starts_with("server.") || l.starts_with("group.") || l.starts_with("weight.")
            })
            .collect();
        new_members = Some(lines.join("\n"));
    }
    let (data, stat) = check(
        zk_.reconfig(
            joining.as_deref(),
            leaving.as_deref(),
            new_members.as_deref(),
            version,
        )
        .await,
        "",
    )?;
    println!(
        "Committed new configuration:\n{}",
        String::from_utf8_lossy(&data)
    );
    if p.has("s") {
        print!("{}", format_stat(&stat));
    }
    Ok(After::Done)
}

/// `ConfigUtils.getClientConfigStr`: the config version and the client addresses of the servers.
pub fn client_config_str(config: &str) -> String {
    let mut version = String::new();
    let mut servers = Vec::new();
    for line in config.lines() {
        if let Some(v) = line.strip_prefix("version=") {
            version = v.trim().to_string();
        } else if line.starts_with("server.") {
            if let Some((_, client)) = line.split_once(';') {
                let client = client.trim();
                let addr = if client.contains(':') {
                    client.to_string()
                } else {
                    let host = line
                        .split_once('=')
                        .and_then(|(_, r)| r.split(':').next())
                        .unwrap_or("localhost");
                    format!("{host}:{client}")
                };
                servers.push(addr.replace("0.0.0.0", "localhost"));
            }
        }
    }
    format!("{version} {}", servers.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stat block matches StatPrinter line for line.
    #[test]
    fn stat_block() {
        let s = Stat {
            czxid: 2,
            mzxid: 0x10,
            pzxid: 2,
            data_length: 5,
            ..Stat::default()
        };
        let text = format_stat(&s);
        assert!(
            text.starts_with("cZxid = 0x2\nctime = Thu Jan 01 00:00:00 UTC 1970\nmZxid = 0x10\n")
        );
        assert!(text.ends_with("ephemeralOwner = 0x0\ndataLength = 5\nnumChildren = 0\n"));
    }

    /// Quota text round-trips in ZooKeeper's format, hard limits after `=;` sorted by key.
    #[test]
    fn stats_track_format() {
        let t = StatsTrack::parse(b"count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1");
        assert_eq!(t.get("count"), 5);
        assert_eq!(
            t.to_string(),
            "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
        );
        assert_eq!(
            StatsTrack::parse(b"count=2,bytes=3").to_string(),
            "count=2,bytes=3"
        );
    }

    /// ACL strings parse as `scheme:id:perms`, with the id allowed to hold colons.
    #[test]
    fn acl_strings() {
        let acl = parse_acl("world:anyone:cdrwa,digest:u:h=:r");
        assert_eq!(acl[0].perms, perms::ALL);
        assert_eq!(acl[1].id, Id::new("digest", "u:h="));
        assert_eq!(perm_string(perms::ALL), "cdrwa");
    }

    /// ZooKeeper errors print as zkCli's CliWrapperException does.
    #[test]
    fn error_messages() {
        assert_eq!(
            keeper_message(ErrorCode::NoNode, "/x"),
            "Node does not exist: /x"
        );
        assert_eq!(
            keeper_message(ErrorCode::NoWatcher, "/x"),
            "KeeperErrorCode = No such watcher for /x"
        );
    }
}
