//! Tests of the reconfig model: parsing and rendering configuration texts, ZooKeeper's incremental and
//! non-incremental rules with their error codes, and `--from-file` plans.

use super::*;
use proptest::prelude::*;

const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\n\
version=100000000";

fn three() -> QuorumConfig {
    parse_config_text(THREE).expect("parses")
}

fn add(joining: &str) -> ReconfigOps<'_> {
    ReconfigOps {
        joining: Some(joining),
        ..ReconfigOps::default()
    }
}

/// The configuration text of `/zookeeper/config` parses and renders back byte for byte.
#[test]
fn config_text_round_trip() {
    let qc = three();
    assert_eq!(qc.version, 0x1_0000_0000);
    assert_eq!(qc.voters().len(), 3);
    assert_eq!(qc.render(), THREE);
}

/// `-add` of an observer appends it, with the reconfig zxid as the version, rendered as Java does.
#[test]
fn incremental_add_observer() {
    let next = next_config(
        &three(),
        add("server.4=127.0.0.1:2891:3891:observer;2184"),
        true,
        0x1_0000_0005,
    )
    .expect("accepted");
    assert_eq!(next.observers().into_iter().collect::<Vec<_>>(), vec![4]);
    assert!(next
        .render()
        .ends_with("server.4=127.0.0.1:2891:3891:observer;0.0.0.0:2184\nversion=100000005"));
}

/// `-remove` drops voters; `-add` of an existing id replaces it (a role change); both in one request.
#[test]
fn incremental_remove_and_replace() {
    let ops = ReconfigOps {
        joining: Some("server.3=127.0.0.1:2890:3890:observer;2183"),
        leaving: Some(" 2 ,"),
        new_members: None,
    };
    let next = next_config(&three(), ops, true, 9);
    // Only one voter would be left: refused as ZooKeeper refuses it with standaloneEnabled.
    assert_eq!(
        next,
        Err(ReconfigError::BadArguments(
            "Reconfig failed - new configuration must include at least 2 followers".into()
        ))
    );
    let next =
        next_config(&three(), ops, false, 9).expect("one voter is enough without standalone");
    assert_eq!(next.voters().into_iter().collect::<Vec<_>>(), vec![1]);
    assert_eq!(next.observers().into_iter().collect::<Vec<_>>(), vec![3]);
}

/// Incremental errors map to ZooKeeper's codes: a malformed joiner, a joiner without a client port,
/// a non-numeric sid (a NumberFormatException: MARSHALLINGERROR), a hierarchical configuration.
#[test]
fn incremental_errors() {
    let base = three();
    let bad = |ops| next_config(&base, ops, true, 9).unwrap_err();
    assert_eq!(
        bad(add("server.4")),
        ReconfigError::BadArguments("Wrong format of server string".into())
    );
    assert_eq!(
        bad(add("server.4=127.0.0.1:2891:3891")),
        ReconfigError::BadArguments(
            "Wrong format of server string - each server should have 3 ports specified".into()
        )
    );
    assert_eq!(
        bad(add("server.4=127.0.0.1:2891")),
        ReconfigError::BadArguments("Reconfiguration failed".into())
    );
    assert!(matches!(
        bad(add("server.x=127.0.0.1:2891:3891;2184")),
        ReconfigError::Marshalling(_)
    ));
    assert!(matches!(
        bad(ReconfigOps {
            leaving: Some("two"),
            ..ReconfigOps::default()
        }),
        ReconfigError::Marshalling(_)
    ));
    // A non-loopback address already used by another member.
    let remote = parse_config_text(
        "server.1=10.0.0.1:2888:3888:participant;2181\nserver.2=10.0.0.2:2888:3888:participant;2181\nversion=1",
    )
    .expect("parses");
    assert!(matches!(
        next_config(&remote, add("server.3=10.0.0.1:2888:3999;2182"), true, 2),
        Err(ReconfigError::BadArguments(m)) if m.contains("conflicts")
    ));
    // Loopback and wildcard addresses never conflict (servers sharing a machine).
    assert!(next_config(&base, add("server.4=127.0.0.1:2888:3999;2181"), true, 2).is_ok());
    let hier = parse_config_text(
        "server.1=a:1:2:participant;1\nserver.2=b:1:2:participant;1\nserver.3=c:1:2:participant;1\n\
         group.1=1:2:3\nweight.1=1\nweight.2=1\nweight.3=1\nversion=1",
    )
    .expect("parses");
    assert!(matches!(
        next_config(&hier, add("server.4=d:1:2;1"), true, 2),
        Err(ReconfigError::BadArguments(m)) if m.contains("non-majority")
    ));
}

/// `-members` replaces the whole membership (commas or newlines), may be hierarchical, and refuses
/// unknown keys (BADARGUMENTS) and observers without voters (MARSHALLINGERROR).
#[test]
fn non_incremental() {
    let members =
        "server.1=127.0.0.1:2888:3888:participant;2181,server.2=127.0.0.1:2889:3889;2182\n\
                   server.5=127.0.0.1:2895:3895:observer;2185";
    let next = next_config(
        &three(),
        ReconfigOps {
            new_members: Some(members),
            ..ReconfigOps::default()
        },
        true,
        0x200000001,
    )
    .expect("accepted");
    assert_eq!(next.voters().into_iter().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(next.observers().into_iter().collect::<Vec<_>>(), vec![5]);
    assert_eq!(next.version, 0x200000001);
    let refuse = |m: &'static str| {
        next_config(
            &three(),
            ReconfigOps {
                new_members: Some(m),
                ..ReconfigOps::default()
            },
            true,
            1,
        )
        .unwrap_err()
    };
    assert_eq!(
        refuse("server.1=a:1:2;1,clientPort=2181"),
        ReconfigError::BadArguments("Unrecognised parameter: clientPort".into())
    );
    assert!(matches!(
        refuse("server.1=a:1:2:observer;1"),
        ReconfigError::Marshalling(_)
    ));
    assert!(matches!(
        refuse("server.1=a:1"),
        ReconfigError::BadArguments(_)
    ));
}

/// Java's equality: the same version, or the same members.
#[test]
fn equality_is_javas() {
    let a = three();
    let mut b = a.clone();
    b.version = 7;
    assert!(java_equals(&a, &b));
    let c = next_config(
        &a,
        add("server.4=127.0.0.1:2891:3891:observer;2184"),
        true,
        8,
    )
    .expect("accepted");
    assert!(!java_equals(&a, &c));
}

/// A `--from-file` plan lists additions, removals and role changes, and its request applied to the
/// running membership gives the wanted one.
#[test]
fn plan_add_remove_role_change() {
    let running = three();
    let wanted = parse_config_text(
        "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
         server.2=127.0.0.1:2889:3889:observer;0.0.0.0:2182\n\
         server.4=127.0.0.1:2891:3891:participant;0.0.0.0:2184",
    )
    .expect("parses");
    let p = plan(&running, &wanted);
    assert_eq!(p.changes.len(), 3);
    assert!(
        matches!(&p.changes[0], MemberChange::Change { to, .. } if to.id == 2 && to.role == Role::Observer)
    );
    assert_eq!(p.changes[1], MemberChange::Remove(3));
    assert!(matches!(&p.changes[2], MemberChange::Add(s) if s.id == 4));
    let PlannedRequest::Incremental { joining, leaving } = &p.request else {
        panic!("expected an incremental request, got {:?}", p.request);
    };
    assert_eq!(leaving.as_deref(), Some("3"));
    let next = next_config(
        &running,
        ReconfigOps {
            joining: joining.as_deref(),
            leaving: leaving.as_deref(),
            new_members: None,
        },
        true,
        3,
    )
    .expect("accepted");
    assert_eq!(next.servers, wanted.servers);
    assert_eq!(plan(&running, &running).request, PlannedRequest::Nothing);
}

fn arb_config() -> impl Strategy<Value = QuorumConfig> {
    proptest::collection::btree_map(1u64..12, (any::<bool>(), 1u16..60000), 2..8).prop_map(|m| {
        let mut text = String::new();
        for (id, (observer, port)) in &m {
            let role = if *observer { "observer" } else { "participant" };
            text.push_str(&format!(
                "server.{id}=127.0.0.1:{}:{}:{role};0.0.0.0:{}\n",
                20000 + id * 3,
                20001 + id * 3,
                port
            ));
        }
        text.push_str("version=1");
        parse_config_text(&text).expect("generated text parses")
    })
}

proptest! {
    /// Rendering then parsing a configuration gives it back (servers, quorum and version).
    #[test]
    fn render_parse_round_trip(qc in arb_config()) {
        let back = parse_config_text(&qc.render()).expect("parses");
        prop_assert_eq!(back, qc);
    }

    /// For any two majority memberships, the planned incremental request turns one into the other.
    #[test]
    fn plan_applies(running in arb_config(), wanted in arb_config()) {
        let p = plan(&running, &wanted);
        let (joining, leaving) = match &p.request {
            PlannedRequest::Nothing => {
                prop_assert_eq!(&running.servers, &wanted.servers);
                return Ok(());
            }
            PlannedRequest::Incremental { joining, leaving } => (joining.clone(), leaving.clone()),
            PlannedRequest::Members(_) => panic!("majority configurations plan incrementally"),
        };
        let ops = ReconfigOps { joining: joining.as_deref(), leaving: leaving.as_deref(), new_members: None };
        match next_config(&running, ops, false, 99) {
            Ok(next) => prop_assert_eq!(next.servers, wanted.servers),
            // A wanted membership without voters is refused, as ZooKeeper refuses it.
            Err(e) => prop_assert!(wanted.voters().is_empty(), "{e}"),
        }
    }

    /// Whatever the request strings, computing the next configuration never panics, and a result always
    /// has a voter.
    #[test]
    fn never_panics(j in ".{0,40}", l in ".{0,10}", m in proptest::option::of(".{0,40}")) {
        let ops = ReconfigOps { joining: Some(&j), leaving: Some(&l), new_members: m.as_deref() };
        if let Ok(next) = next_config(&three(), ops, false, 5) {
            prop_assert!(!next.voters().is_empty());
        }
    }
}
