//! Tests of fuzzy, incremental snapshots ([`super::snap_stream`], which writes both the disk snapshots and
//! the SNAP syncs): a model test that interleaves random prepared txns with snapshot turns and checks that
//! recovery (load the blob, replay every txn after the snapshot's zxid) rebuilds exactly the live tree; a
//! big tree serialized in bounded turns; and byte equality with the synchronous encoding on a quiet
//! tree.

use proptest::prelude::*;

use super::prep::{prepare, AnySession, PendingChanges, PrepConfig, RequestMeta, WriteRequest};
use super::snap_stream::SnapStream;
use super::test_strategies::{dump, path_strategy, simple_op};
use super::*;
use crate::proto::{Id, OpCode, Txn, TxnHeader};
use crate::server::standalone::read_snapshot_blob;

const SESSIONS: [SessionId; 3] = [
    SessionId(0x0100_0000_0000_0001),
    SessionId(0x0100_0000_0000_0002),
    SessionId(0x0100_0000_0000_0003),
];

#[derive(Clone, Debug)]
enum Event {
    /// A write by one of the sessions, prepared against the live tree and applied at once.
    Write(usize, WriteRequest),
    /// A snapshot turn visiting at most this many nodes (when a snapshot is in progress).
    Turn(usize),
}

fn event_strategy() -> impl Strategy<Value = Event> {
    let req = prop_oneof![
        10 => simple_op(),
        1 => path_strategy().prop_map(|path| WriteRequest::DeleteContainer { path }),
        2 => proptest::collection::vec(simple_op(), 1..4).prop_map(WriteRequest::Multi),
        1 => Just(WriteRequest::CloseSession),
    ];
    prop_oneof![
        3 => (0..SESSIONS.len(), req).prop_map(|(s, r)| Event::Write(s, r)),
        2 => (1..4usize).prop_map(Event::Turn),
    ]
}

struct Live {
    tree: DataTree,
    pending: PendingChanges,
    zxid: i64,
    log: Vec<(TxnHeader, Txn)>,
}

impl Live {
    fn write(&mut self, session: SessionId, req: &WriteRequest) {
        self.zxid += 1;
        let auth = [Id::new("digest", "u:h")];
        let meta = RequestMeta {
            session,
            cxid: 1,
            zxid: self.zxid,
            time_ms: self.zxid * 7,
            auth_ids: &auth,
        };
        let p = prepare(
            &self.tree,
            &mut self.pending,
            &mut AnySession,
            &PrepConfig::default(),
            &meta,
            req,
        );
        let _ = self.tree.apply_txn(&p.header, &p.txn);
        self.pending.release_through(p.header.zxid);
        self.log.push((p.header, p.txn));
    }
}

/// Recovery as the shell does it: load the blob, replay every logged txn after its zxid.
fn recover(blob: &[u8], zxid: i64, log: &[(TxnHeader, Txn)]) -> DataTree {
    let (mut tree, _sessions) = read_snapshot_blob(blob, false).expect("the blob decodes");
    tree.set_last_processed_zxid(zxid);
    for (h, t) in log.iter().filter(|(h, _)| h.zxid > zxid) {
        let _ = tree.apply_txn(h, t);
    }
    tree
}

/// The stream under test and its chunks so far.
struct Writer(SnapStream, Vec<u8>);

impl Writer {
    fn new(tree: &DataTree) -> Writer {
        Writer(SnapStream::new(tree, &[(SESSIONS[0], 30_000)]), Vec::new())
    }

    fn zxid(&self) -> i64 {
        self.0.zxid()
    }

    fn is_done(&self) -> bool {
        self.0.is_done()
    }

    /// One bounded turn: a chunk of about `n * 40` bytes (a few nodes).
    fn turn(&mut self, tree: &DataTree, n: usize) {
        self.1.extend(self.0.next_chunk(tree, n * 40));
    }

    fn finish(self) -> Vec<u8> {
        assert_eq!(self.0.bytes(), self.1.len() as u64);
        self.1
    }
}

fn check_run(prefix: &[Event], events: &[Event]) {
    let mut live = Live {
        tree: DataTree::new(false),
        pending: PendingChanges::new(),
        zxid: 0x1_0000_0000,
        log: Vec::new(),
    };
    live.tree.set_last_processed_zxid(live.zxid);
    for e in prefix {
        if let Event::Write(s, r) = e {
            live.write(SESSIONS[*s], r);
        }
    }
    let mut writer = Writer::new(&live.tree);
    assert_eq!(writer.zxid(), live.zxid);
    for e in events {
        match e {
            Event::Write(s, r) => live.write(SESSIONS[*s], r),
            Event::Turn(n) => {
                if !writer.is_done() {
                    writer.turn(&live.tree, *n);
                }
            }
        }
    }
    while !writer.is_done() {
        writer.turn(&live.tree, 3);
    }
    let start = writer.zxid();
    let blob = writer.finish();
    let recovered = recover(&blob, start, &live.log);
    assert_eq!(recovered.validate(), Ok(()));
    assert_eq!(dump(&recovered), dump(&live.tree));
    assert_eq!(recovered.digest(), live.tree.digest());
    assert_eq!(recovered.acl_cache().len(), live.tree.acl_cache().len());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A snapshot streamed in small chunks (ACL table first, a few nodes each) while random txns
    /// (creates of every kind, deletes, setData, setACL, multi, closeSession) are applied between the
    /// chunks, loaded and followed by the replay of every txn after its start zxid, gives the live tree:
    /// same nodes, data, stats, ACLs and digest.
    #[test]
    fn fuzzy_snapshot_plus_replay_equals_live_tree(
        prefix in proptest::collection::vec(event_strategy(), 0..60),
        events in proptest::collection::vec(event_strategy(), 0..80),
    ) {
        check_run(&prefix, &events);
    }
}

/// A SNAP stream of an unchanging tree, cut into chunks of any size, is byte for byte the synchronous
/// encoding (Java's layout: sessions, the tree's own ACL table and references, pre-order nodes, `"/"`).
#[test]
fn quiet_snap_stream_equals_synchronous_serialization() {
    let mut t = DataTree::new(false);
    for (i, p) in ["/a", "/a/b", "/a!", "/a/b/c", "/b", "/a/a"]
        .iter()
        .enumerate()
    {
        let acl = if i % 2 == 0 {
            vec![Acl {
                perms: 0x1f,
                id: Id::new("digest", "u:h"),
            }]
        } else {
            Acl::open_unsafe()
        };
        t.create_node(p, Some(&[i as u8; 7]), &acl, 0, -1, i as i64 + 1, 0)
            .expect("create");
    }
    t.set_last_processed_zxid(10);
    let sessions = [(SESSIONS[1], 4_000), (SESSIONS[2], 9_000)];
    let sync = crate::server::standalone::snapshot_blob(&t, &sessions);
    for max in [1, 50, 200, 1 << 20] {
        let mut stream = SnapStream::new(&t, &sessions);
        let mut out = Vec::new();
        while !stream.is_done() {
            out.extend(stream.next_chunk(&t, max));
        }
        assert!(stream.next_chunk(&t, max).is_empty());
        assert_eq!(out, sync, "chunks of {max} bytes");
        assert_eq!(stream.nodes(), t.len() as u64);
    }
}

/// A 200k-node tree is serialized in many turns, none much over the chunk size, while writes land
/// between the turns; the result recovers to the live tree.
#[test]
fn big_tree_is_serialized_in_bounded_turns() {
    const CHUNK: usize = 256 << 10;
    let mut live = Live {
        tree: DataTree::new(false),
        pending: PendingChanges::new(),
        zxid: 0x1_0000_0000,
        log: Vec::new(),
    };
    let acls = [Acl::open_unsafe(), Acl::read_unsafe()];
    for p in 0..200 {
        live.zxid += 1;
        let parent = format!("/p{p:03}");
        live.tree
            .create_node(&parent, None, &acls[0], 0, -1, live.zxid, 0)
            .expect("create parent");
        for c in 0..1000 {
            live.zxid += 1;
            live.tree
                .create_node(
                    &format!("{parent}/c{c:04}"),
                    Some(b"0123456789"),
                    &acls[c % 2],
                    0,
                    -1,
                    live.zxid,
                    0,
                )
                .expect("create child");
        }
    }
    live.tree.set_last_processed_zxid(live.zxid);
    assert!(live.tree.len() > 200_000);
    let mut writer = SnapStream::new(&live.tree, &[]);
    let mut blob = Vec::new();
    let mut turns = 0;
    let mut i = 0;
    while !writer.is_done() {
        let chunk = writer.next_chunk(&live.tree, CHUNK);
        // A chunk stops at the first node that takes it to the size (nodes here are small).
        assert!(
            chunk.len() < CHUNK + 4096,
            "a chunk of {} bytes",
            chunk.len()
        );
        blob.extend(chunk);
        turns += 1;
        // Writes between the turns: a new parent with a child, a deletion, a data change.
        i += 1;
        let p = format!("/p{:03}", (i * 37) % 200);
        live.write(
            SESSIONS[0],
            &WriteRequest::Delete {
                path: format!("{p}/c{:04}", i * 3),
                version: -1,
            },
        );
        live.write(
            SESSIONS[1],
            &WriteRequest::SetData {
                path: format!("{p}/c{:04}", i * 3 + 1),
                data: Some(vec![i as u8]),
                version: -1,
            },
        );
        for path in [format!("/q{i}"), format!("/q{i}/x")] {
            live.write(
                SESSIONS[2],
                &WriteRequest::Create {
                    op: OpCode::Create,
                    path,
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl: -1,
                },
            );
        }
    }
    assert!(turns as usize > blob.len() / CHUNK, "{turns} turns");
    assert!(turns > 10, "{turns} turns");
    let start = writer.zxid();
    let recovered = recover(&blob, start, &live.log);
    assert_eq!(recovered.digest(), live.tree.digest());
    assert_eq!(dump(&recovered), dump(&live.tree));
}
