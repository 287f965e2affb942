//! Unit tests of the data tree: built-in nodes, stat semantics, create/delete bookkeeping, sessions'
//! ephemerals, and the snapshot encoding against the golden bytes of the protocol guide (Appendix A.5).

use super::*;
use crate::jute::Record;
use crate::proto::perms;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const ZXID1: i64 = 0x1_0000_0001;
const T1: i64 = 1_700_000_000_000;

/// A fresh tree has ZooKeeper's built-ins: /zookeeper/config READ-only with aversion -1, 3 descendants of
/// "/", Java's node count 5 (root counted twice) and approximate data size 44.
#[test]
fn fresh_tree_builtins() {
    let t = DataTree::new(false);
    assert_eq!(t.get_children("/"), Some(vec!["zookeeper".to_string()]));
    assert_eq!(
        t.get_children("/zookeeper"),
        Some(vec!["config".to_string(), "quota".to_string()])
    );
    let (acl, stat) = t.get_acl(CONFIG_NODE).expect("config");
    assert_eq!(&*acl, &Acl::read_unsafe()[..]);
    assert_eq!(stat.aversion, -1);
    assert_eq!(t.all_children_number("/"), 3);
    // Java: `""` counts the keys starting with "/", the root's own "/" key among them.
    assert_eq!(t.all_children_number(""), 4);
    assert_eq!(t.all_children_number("/zookeeper"), 2);
    assert_eq!(t.node_count(), 5);
    assert_eq!(t.approximate_data_size(), 44);
    assert_eq!(t.stat("/").map(|s| s.num_children), Some(1));
    assert_eq!(t.stat("").map(|s| s.num_children), Some(1));
    assert!(t.stat("/nope").is_none());
    assert_eq!(t.validate(), Ok(()));
}

/// Visible cversion counts creates and deletes; the persisted one counts creates only; delete moves pzxid
/// forward only.
#[test]
fn cversion_and_pzxid() {
    let mut t = DataTree::new(false);
    let open = Acl::open_unsafe();
    t.create_node("/p", Some(b"x"), &open, 0, 1, 10, T1)
        .expect("create /p");
    t.create_node("/p/c", None, &open, 0, 1, 11, T1)
        .expect("create /p/c");
    let s = t.stat("/p").expect("p");
    assert_eq!((s.cversion, s.num_children, s.pzxid), (1, 1, 11));
    t.delete_node("/p/c", 12).expect("delete");
    let s = t.stat("/p").expect("p");
    assert_eq!((s.cversion, s.num_children, s.pzxid), (2, 0, 12));
    assert_eq!(t.node("/p").map(|n| n.stat.cversion), Some(1));
    // A replayed older delete does not move pzxid back; the missing child is NONODE.
    assert_eq!(t.delete_node("/p/c", 5).err(), Some(ErrorCode::NoNode));
    assert_eq!(t.stat("/p").map(|s| s.pzxid), Some(12));
    // A replayed create with a smaller parentCVersion leaves the parent alone.
    t.create_node("/p/d", None, &open, 0, 1, 13, T1)
        .expect("create /p/d");
    assert_eq!(t.stat("/p").map(|s| s.pzxid), Some(12));
    // NODEEXISTS replaces the ACL and changes nothing else.
    assert_eq!(
        t.create_node("/p/d", None, &Acl::read_unsafe(), 0, -1, 14, T1)
            .err(),
        Some(ErrorCode::NodeExists)
    );
    assert_eq!(t.acl("/p/d").map(|a| a[0].perms), Some(perms::READ));
    assert_eq!(t.get_data("/p/d").map(|(d, _)| d.is_none()), Some(true));
    assert_eq!(
        t.get_data("/p")
            .map(|(d, s)| (d.map(<[u8]>::to_vec), s.data_length)),
        Some((Some(b"x".to_vec()), 1))
    );
    assert_eq!(t.validate(), Ok(()));
}

/// setData bumps mzxid/mtime/version; setACL only the aversion.
#[test]
fn set_data_and_acl() {
    let mut t = DataTree::new(false);
    t.create_node("/a", Some(b""), &Acl::open_unsafe(), 0, -1, 10, T1)
        .expect("create");
    let (s, trig) = t
        .set_data("/a", Some(b"hello"), 1, 11, T1 + 5)
        .expect("set");
    assert_eq!(
        (s.version, s.mzxid, s.mtime, s.data_length, s.czxid),
        (1, 11, T1 + 5, 5, 10)
    );
    assert!(matches!(trig, Trigger::DataChanged { .. }));
    let s = t.set_acl("/a", &Acl::read_unsafe(), 1).expect("setacl");
    assert_eq!((s.aversion, s.mzxid, s.version), (1, 11, 1));
    assert_eq!(
        t.set_data("/b", None, 1, 12, T1).err(),
        Some(ErrorCode::NoNode)
    );
    assert_eq!(t.approximate_data_size(), 44 + 2 + 5);
    assert_eq!(t.validate(), Ok(()));
}

/// Ephemerals are indexed per session, reported with their owner, and removed by killSession (listed
/// paths first, then leftovers); containers and TTL nodes report owner 0.
#[test]
fn ephemerals_containers_ttl() {
    let mut t = DataTree::new(true);
    let open = Acl::open_unsafe();
    let s = SessionId(0x0100_0000_0000_0001);
    t.create_node("/e1", None, &open, s.0, -1, 10, T1)
        .expect("e1");
    t.create_node("/e2", None, &open, s.0, -1, 11, T1)
        .expect("e2");
    t.create_node("/c", None, &open, CONTAINER_OWNER, -1, 12, T1)
        .expect("c");
    let ttl = EphemeralType::ttl_owner(5000).expect("ttl");
    t.create_node("/t", None, &open, ttl, -1, 13, T1)
        .expect("t");
    assert_eq!(t.stat("/e1").map(|s| s.ephemeral_owner), Some(s.0));
    assert_eq!(t.stat("/c").map(|s| s.ephemeral_owner), Some(0));
    assert_eq!(t.stat("/t").map(|s| s.ephemeral_owner), Some(0));
    assert_eq!(t.containers(), vec!["/c".to_string()]);
    assert_eq!(t.ttls(), vec!["/t".to_string()]);
    assert_eq!(
        t.get_ephemerals(s, "/e"),
        vec!["/e1".to_string(), "/e2".to_string()]
    );
    assert_eq!(t.get_ephemerals(s, "/e2"), vec!["/e2".to_string()]);
    assert_eq!(t.ephemerals_count(), 2);
    let trig = t.kill_session(s, 20, Some(&["/e2".to_string(), "/gone".to_string()]));
    assert_eq!(trig.len(), 2);
    assert!(t.stat("/e1").is_none() && t.stat("/e2").is_none());
    assert_eq!(t.stat("/").map(|st| st.pzxid), Some(20));
    assert!(t.sessions_with_ephemerals().is_empty());
    // Without extended types the TTL marker is an ordinary owner.
    assert_eq!(
        EphemeralType::of(ttl, false),
        EphemeralType::Normal(SessionId(ttl))
    );
    assert_eq!(EphemeralType::of(ttl, true), EphemeralType::Ttl(5000));
    assert_eq!(EphemeralType::ttl_owner(0), None);
    assert_eq!(EphemeralType::ttl_owner(TTL_MAX_MS + 1), None);
    assert_eq!(t.validate(), Ok(()));
}

/// Children are exactly the next level's keys in the parent's range, including names that sort around
/// '/' (e.g. "a!" and "a0"), and grandchildren are not children.
#[test]
fn children_ranges_are_exact() {
    let mut t = DataTree::new(false);
    let open = Acl::open_unsafe();
    for p in ["/a", "/a!", "/a0", "/a/b", "/a/b/c", "/a/!", "/a/~", "/ab"] {
        t.create_node(p, None, &open, 0, -1, 1, 0).expect(p);
    }
    assert_eq!(
        t.get_children("/a"),
        Some(vec!["!".to_string(), "b".to_string(), "~".to_string()])
    );
    assert_eq!(t.all_children_number("/a"), 4);
    assert_eq!(t.get_children("/a/b"), Some(vec!["c".to_string()]));
    assert_eq!(t.get_children("/").map(|c| c.len()), Some(5));
    assert_eq!(t.validate(), Ok(()));
}

/// The serialized tree equals Java's bytes for A.5's tree (fresh tree + `create /a "x"` at zxid
/// 0x100000001), and decodes back to the same bytes.
#[test]
fn snapshot_matches_java_golden_bytes() {
    let mut t = DataTree::new(false);
    t.create_node("/a", Some(b"x"), &Acl::open_unsafe(), 0, 1, ZXID1, T1)
        .expect("create");
    let zero60 = "00".repeat(60);
    let world_anyone = "00000005776f726c6400000006616e796f6e65";
    let expected = [
        "00000002".to_string(),
        format!("00000000000000010000000100000001{world_anyone}"),
        format!("0000000000000002000000010000001f{world_anyone}"),
        // root "": data len 0, aclRef -1, stat with cversion 1 and pzxid 0x100000001
        "00000000".to_string(),
        "00000000ffffffffffffffff".to_string(),
        format!(
            "{}{}{}{}",
            "00".repeat(36),
            "00000001",
            "00000000",
            "0000000000000000"
        ),
        "0000000100000001".to_string(),
        // "/a"
        "000000022f61".to_string(),
        "00000001780000000000000002".to_string(),
        format!(
            "{z}{z}{t}{t}000000000000000000000000{o}{z}",
            z = "0000000100000001",
            t = "0000018bcfe56800",
            o = "0000000000000000"
        ),
        format!(
            "0000000a{}00000000ffffffffffffffff{zero60}",
            hex(b"/zookeeper")
        ),
        format!(
            "00000011{}000000000000000000000001{}ffffffff{}",
            hex(b"/zookeeper/config"),
            "00".repeat(40),
            "00".repeat(16)
        ),
        format!(
            "00000010{}00000000ffffffffffffffff{zero60}",
            hex(b"/zookeeper/quota")
        ),
        "000000012f".to_string(),
    ]
    .concat();
    let bytes = t.serialize();
    assert_eq!(hex(&bytes), expected);
    let back = DataTree::deserialize(&bytes, false).expect("decode");
    assert_eq!(hex(&back.serialize()), expected);
    assert_eq!(back.validate(), Ok(()));
    assert_eq!(back.stat("/a"), t.stat("/a"));
    assert_eq!(back.approximate_data_size(), t.approximate_data_size());
}

/// Truncated or inconsistent snapshots are errors, never panics.
#[test]
fn snapshot_decode_errors() {
    let t = DataTree::new(false);
    let bytes = t.serialize();
    for cut in 0..bytes.len() {
        assert!(
            DataTree::deserialize(&bytes[..cut], false).is_err(),
            "cut {cut}"
        );
    }
    // A node whose parent is missing.
    let mut w = crate::jute::JuteWriter::new();
    w.write_i32(0);
    w.write_string("");
    w.write_buffer(b"");
    w.write_i64(-1);
    StatPersisted::default().write(&mut w);
    w.write_string("/x/y");
    w.write_buffer(b"");
    w.write_i64(-1);
    StatPersisted::default().write(&mut w);
    w.write_string("/");
    assert!(DataTree::deserialize(w.as_slice(), false).is_err());
    // An unknown ACL reference.
    let mut w = crate::jute::JuteWriter::new();
    w.write_i32(0);
    w.write_string("");
    w.write_buffer(b"");
    w.write_i64(7);
    StatPersisted::default().write(&mut w);
    w.write_string("/");
    assert!(DataTree::deserialize(w.as_slice(), false).is_err());
}

/// A deep chain serializes and decodes without recursion limits.
#[test]
fn deep_tree_round_trip() {
    let mut t = DataTree::new(false);
    let mut p = String::new();
    for _ in 0..2000 {
        p.push_str("/d");
        t.create_node(&p, None, &Acl::open_unsafe(), 0, -1, 1, 0)
            .expect("create");
    }
    let back = DataTree::deserialize(&t.serialize(), false).expect("decode");
    assert_eq!(back.all_children_number("/d"), 1999);
    assert_eq!(back.validate(), Ok(()));
}
