//! Tests of the learner-channel stream decoder ([`super::quorum_stream`]): packet sequences split at every
//! byte boundary, real DataTree snapshots fed in random chunks, the guide's A.5 snapshot body, limits,
//! signatures, truncation, arbitrary garbage, and the scanner's linear cost.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::quorum_stream::{
    encode_packet, encode_snapshot_stream, QuorumItem, QuorumStreamDecoder, SNAP_SIGNATURE,
};
use super::test_hex::hex;
use super::{perms, Acl, Id, PacketType, QuorumPacket};
use crate::ids::SessionId;
use crate::jute::DecodeError;
use crate::server::standalone::{read_snapshot_blob, snapshot_blob};
use crate::tree::{DataTree, CONTAINER_OWNER};

const MAX_PACKET: usize = 1 << 20;
const MAX_SNAPSHOT: usize = 64 << 20;

/// One segment of a leader's stream: a packet, or a SNAP packet with its snapshot.
#[derive(Clone, Debug)]
enum Seg {
    Packet(QuorumPacket),
    Snap(i64, Vec<u8>),
}

/// The stream bytes and the items a decoder must yield for them.
fn encode(segs: &[Seg]) -> (Vec<u8>, Vec<QuorumItem>) {
    let mut out = Vec::new();
    let mut items = Vec::new();
    for s in segs {
        match s {
            Seg::Packet(p) => {
                encode_packet(p, &mut out);
                items.push(QuorumItem::Packet(p.clone()));
            }
            Seg::Snap(zxid, body) => {
                let snap = QuorumPacket::new(PacketType::Snap, *zxid);
                encode_packet(&snap, &mut out);
                encode_snapshot_stream(body, &mut out);
                items.push(QuorumItem::Packet(snap));
                items.push(QuorumItem::Snapshot(body.clone()));
            }
        }
    }
    (out, items)
}

/// Pulls items until the decoder needs more bytes.
fn drain(d: &mut QuorumStreamDecoder, out: &mut Vec<QuorumItem>) -> Result<(), DecodeError> {
    while let Some(item) = d.next_item()? {
        out.push(item);
    }
    Ok(())
}

/// A tree with many nodes: nested paths, data of many sizes (and null), several ACL lists including an
/// empty one and multi-entry ones, ephemerals of many sessions, containers, a unicode name, the config.
fn real_tree() -> (DataTree, Vec<(SessionId, i32)>) {
    let mut t = DataTree::new(false);
    let acls: Vec<Vec<Acl>> = vec![
        Acl::open_unsafe(),
        Acl::read_unsafe(),
        vec![
            Acl {
                perms: perms::ALL,
                id: Id::new("digest", "bob:2Nv8mTNmc5yI6Ug2ZS5mRMHuXZM="),
            },
            Acl {
                perms: perms::READ,
                id: Id::new("ip", "10.0.0.0/8"),
            },
        ],
        vec![],
        vec![Acl {
            perms: perms::READ | perms::WRITE,
            id: Id::new("sasl", "carol@EXAMPLE.COM"),
        }],
    ];
    let sessions: Vec<(SessionId, i32)> = (0..40)
        .map(|i| (SessionId(0x0100_0000_0000_0000 + i), 4000 + i as i32))
        .collect();
    let mut zxid = 0x1_0000_0000i64;
    let mut next = || {
        zxid += 1;
        zxid
    };
    for i in 0..24 {
        let owner = if i % 6 == 0 { CONTAINER_OWNER } else { 0 };
        let path = format!("/app{i}");
        let data = vec![b'a' + (i % 26) as u8; i * 7];
        t.create_node(
            &path,
            Some(&data),
            &acls[i % acls.len()],
            owner,
            -1,
            next(),
            1_700_000_000_000,
        )
        .expect("parent exists");
        for j in 0..25 {
            let child = format!("{path}/n{j:03}");
            let data: Option<Vec<u8>> = match j % 4 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some((0..(j * 13 + i) as u8).collect()),
            };
            let owner = if j % 3 == 0 {
                sessions[(i * 25 + j) % sessions.len()].0 .0
            } else {
                0
            };
            t.create_node(
                &child,
                data.as_deref(),
                &acls[(i + j) % acls.len()],
                owner,
                -1,
                next(),
                1_700_000_000_001,
            )
            .expect("parent exists");
        }
    }
    t.create_node("/ünïcødé", Some("ß".as_bytes()), &acls[2], 0, -1, next(), 5)
        .expect("root exists");
    t.create_node("/app1/n001/deep", Some(b"/"), &acls[0], 0, -1, next(), 6)
        .expect("parent exists");
    let _ = t.set_config(
        b"server.1=127.0.0.1:2888:3888:participant\nversion=100000000",
        0x1_0000_0000,
        7,
    );
    assert!(t.ephemerals_count() > 100);
    assert!(t.acl_cache().len() >= 4, "several ACL lists in the map");
    (t, sessions)
}

/// The packets a leader sends around a SNAP sync: SNAP, the snapshot, then sync traffic.
fn snap_sync_segments(body: Vec<u8>) -> Vec<Seg> {
    vec![
        Seg::Packet(QuorumPacket::with_data(
            PacketType::LeaderInfo,
            0x4_0000_0000,
            vec![0, 1, 0, 0],
        )),
        Seg::Snap(0x4_0000_0020, body),
        Seg::Packet(QuorumPacket::with_data(
            PacketType::Proposal,
            0x4_0000_0021,
            vec![7; 90],
        )),
        Seg::Packet(QuorumPacket::new(PacketType::Commit, 0x4_0000_0021)),
        Seg::Packet(QuorumPacket::with_data(
            PacketType::NewLeader,
            0x4_0000_0000,
            b"server.1=127.0.0.1:2888:3888:participant\nversion=0".to_vec(),
        )),
        Seg::Packet(QuorumPacket {
            ty: PacketType::Request.code(),
            zxid: -1,
            data: Some(vec![1, 2, 3]),
            authinfo: Some(vec![Id::new("digest", "bob:x"), Id::new("ip", "127.0.0.1")]),
        }),
        Seg::Packet(QuorumPacket::new(PacketType::UpToDate, -1)),
    ]
}

fn id_strategy() -> impl Strategy<Value = Id> {
    ("[a-z]{0,5}", "[a-z:/0-9é]{0,6}").prop_map(|(s, i)| Id::new(s, i))
}

/// Any packet but SNAP (which must be followed by a snapshot), including unknown types and nulls.
fn packet_strategy() -> impl Strategy<Value = QuorumPacket> {
    let ty = prop_oneof![
        1..15i32,
        16..20i32,
        any::<i32>().prop_filter("not SNAP", |t| *t != 15)
    ];
    (
        ty,
        any::<i64>(),
        option::of(vec(any::<u8>(), 0..24)),
        option::of(vec(id_strategy(), 0..3)),
    )
        .prop_map(|(ty, zxid, data, authinfo)| QuorumPacket {
            ty,
            zxid,
            data,
            authinfo,
        })
}

/// A small real snapshot body: up to six nodes under the root and one level below, assorted data,
/// ACLs and owners, and up to three sessions.
fn small_body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let node = (
        0..3usize,
        "[a-c]{1,2}",
        option::of(vec(any::<u8>(), 0..6)),
        0..3usize,
        0..3i64,
    );
    (vec(node, 0..6), 0..4usize).prop_map(|(nodes, n_sessions)| {
        let mut t = DataTree::new(false);
        let acls = [
            Acl::open_unsafe(),
            Acl::read_unsafe(),
            vec![Acl {
                perms: perms::ADMIN,
                id: Id::new("digest", "u:p"),
            }],
        ];
        for (z, (parent, name, data, acl, owner)) in nodes.into_iter().enumerate() {
            let path = match parent {
                0 => format!("/{name}"),
                p => format!("/{}/{name}", ["a", "b", "c"][p]),
            };
            // Creates under a missing parent or of an existing path are refused; that is fine here.
            let _ = t.create_node(
                &path,
                data.as_deref(),
                &acls[acl],
                owner,
                -1,
                z as i64 + 1,
                0,
            );
        }
        let sessions: Vec<(SessionId, i32)> = (0..n_sessions)
            .map(|i| (SessionId(i as i64 + 1), 30_000))
            .collect();
        snapshot_blob(&t, &sessions)
    })
}

fn seg_strategy() -> impl Strategy<Value = Seg> {
    prop_oneof![
        5 => packet_strategy().prop_map(Seg::Packet),
        1 => (any::<i64>(), small_body_strategy()).prop_map(|(z, b)| Seg::Snap(z, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A stream of packets and snapshots split into two reads at every byte boundary decodes to the
    /// same items; the first read alone yields a prefix of them and never an error.
    #[test]
    fn round_trip_split_at_every_byte(segs in vec(seg_strategy(), 0..6)) {
        let (bytes, items) = encode(&segs);
        for cut in 0..=bytes.len() {
            let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
            let mut got = Vec::new();
            d.push(&bytes[..cut]);
            prop_assert!(drain(&mut d, &mut got).is_ok(), "error on a prefix of {} bytes", cut);
            prop_assert_eq!(&got[..], &items[..got.len()]);
            d.push(&bytes[cut..]);
            prop_assert!(drain(&mut d, &mut got).is_ok());
            prop_assert_eq!(&got, &items);
            prop_assert_eq!(d.buffered(), 0);
        }
    }

    /// A snapshot of a real tree (hundreds of nodes, ACLs, ephemerals), fed in random chunk sizes
    /// between other packets, comes out equal to the body and loads back into the same tree.
    #[test]
    fn real_snapshot_in_random_chunks(chunks in vec(1usize..5000, 1..30)) {
        let (tree, sessions) = real_tree();
        let body = snapshot_blob(&tree, &sessions);
        let (bytes, items) = encode(&snap_sync_segments(body.clone()));
        let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
        let mut got = Vec::new();
        let mut at = 0;
        for size in chunks.iter().cycle() {
            if at == bytes.len() {
                break;
            }
            let end = (at + size).min(bytes.len());
            d.push(&bytes[at..end]);
            at = end;
            prop_assert!(drain(&mut d, &mut got).is_ok());
        }
        prop_assert_eq!(&got, &items);
        prop_assert_eq!(d.buffered(), 0);
        let QuorumItem::Snapshot(received) = &got[2] else {
            panic!("third item is the snapshot");
        };
        prop_assert_eq!(received, &body);
        let (loaded, loaded_sessions) = read_snapshot_blob(received, false).expect("body loads");
        prop_assert_eq!(loaded_sessions, sessions);
        prop_assert_eq!(loaded.digest(), tree.digest());
        prop_assert_eq!(loaded.len(), tree.len());
    }

    /// While a snapshot body arrives in pieces, the decoder reports how much of it (bytes scanned, node
    /// records walked) has come in: never more than arrived, growing, absent before the SNAP packet and
    /// after the body; at the end of the body every node has been counted.
    #[test]
    fn snapshot_progress_counts_what_arrived(chunks in vec(1usize..3000, 1..20)) {
        let (tree, sessions) = real_tree();
        let body = snapshot_blob(&tree, &sessions);
        let (bytes, items) = encode(&snap_sync_segments(body.clone()));
        let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
        let mut got = Vec::new();
        let (mut at, mut last, mut most_nodes) = (0, 0u64, 0u64);
        prop_assert_eq!(d.snapshot_progress(), None);
        for size in chunks.iter().cycle() {
            if at == bytes.len() {
                break;
            }
            let end = (at + size).min(bytes.len());
            d.push(&bytes[at..end]);
            at = end;
            prop_assert!(drain(&mut d, &mut got).is_ok());
            match d.snapshot_progress() {
                Some((b, n)) => {
                    prop_assert!(got.len() == 2, "progress only between SNAP and the body's end");
                    prop_assert!(b >= last && b <= body.len() as u64);
                    last = b;
                    most_nodes = most_nodes.max(n);
                }
                None => prop_assert!(got.len() != 2),
            }
        }
        prop_assert_eq!(&got, &items);
        prop_assert!(most_nodes <= tree.len() as u64);
    }

    /// Arbitrary bytes, with or without a SNAP packet in front and under small limits, give items or an
    /// error, never a panic; items account for exactly the bytes consumed, and an error is final.
    #[test]
    fn garbage_is_an_error_not_a_panic(
        garbage in vec(any::<u8>(), 0..600),
        snap_first in any::<bool>(),
        max_packet in 0usize..2000,
        max_snapshot in 0usize..4000,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = Vec::new();
        if snap_first {
            encode_packet(&QuorumPacket::new(PacketType::Snap, 5), &mut bytes);
        }
        bytes.extend_from_slice(&garbage);
        let cut = cut.index(bytes.len() + 1);
        let mut d = QuorumStreamDecoder::new(max_packet.max(if snap_first { 20 } else { 0 }), max_snapshot);
        let mut got = Vec::new();
        d.push(&bytes[..cut]);
        let mut result = drain(&mut d, &mut got);
        if result.is_ok() {
            d.push(&bytes[cut..]);
            result = drain(&mut d, &mut got);
        }
        match result {
            Err(e) => prop_assert_eq!(d.next_item(), Err(e)),
            Ok(()) => {
                // Without authinfo (whose strings are read leniently) the items re-encode to exactly
                // the consumed prefix.
                let lossless = got.iter().all(|i| !matches!(i, QuorumItem::Packet(p) if p.authinfo.as_ref().is_some_and(|a| !a.is_empty())));
                if lossless {
                    let mut re = Vec::new();
                    for item in &got {
                        match item {
                            QuorumItem::Packet(p) => encode_packet(p, &mut re),
                            QuorumItem::Snapshot(b) => encode_snapshot_stream(b, &mut re),
                        }
                    }
                    prop_assert_eq!(&bytes[..re.len()], &re[..]);
                    prop_assert_eq!(d.buffered(), bytes.len() - re.len());
                }
            }
        }
    }

    /// A valid stream with one byte changed anywhere never panics the decoder.
    #[test]
    fn corrupted_stream_never_panics(at in any::<prop::sample::Index>(), value in any::<u8>(), body in small_body_strategy()) {
        let (mut bytes, _) = encode(&snap_sync_segments(body));
        let i = at.index(bytes.len());
        bytes[i] = value;
        let mut d = QuorumStreamDecoder::new(4096, 4096);
        d.push(&bytes);
        let mut got = Vec::new();
        let _ = drain(&mut d, &mut got);
    }
}

/// Every prefix of a stream with a real snapshot yields a prefix of its items and then `None`: a
/// truncated stream is "need more bytes", never an error.
#[test]
fn truncated_stream_yields_none() {
    let (tree, sessions) = real_tree();
    let (bytes, items) = encode(&snap_sync_segments(snapshot_blob(&tree, &sessions)));
    for cut in (0..bytes.len())
        .step_by(7)
        .chain(bytes.len() - 20..bytes.len())
    {
        let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
        d.push(&bytes[..cut]);
        let mut got = Vec::new();
        drain(&mut d, &mut got).expect("a prefix is never an error");
        assert!(got.len() < items.len());
        assert_eq!(&got[..], &items[..got.len()]);
        assert_eq!(d.next_item(), Ok(None));
    }
}

/// Fed one byte at a time, a large snapshot costs a number of scanner steps bounded by its length / 4
/// (each step consumes a length field or more), so decoding is linear however the bytes are split.
#[test]
fn scanner_is_linear() {
    let (tree, sessions) = real_tree();
    let body = snapshot_blob(&tree, &sessions);
    let (bytes, items) = encode(&snap_sync_segments(body));
    assert!(
        bytes.len() > 50_000,
        "a large stream: {} bytes",
        bytes.len()
    );
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
    let mut got = Vec::new();
    for b in &bytes {
        d.push(std::slice::from_ref(b));
        drain(&mut d, &mut got).expect("valid stream");
    }
    assert_eq!(got, items);
    assert!(
        d.scan_steps() <= bytes.len() as u64 / 4,
        "{} steps for {} bytes",
        d.scan_steps(),
        bytes.len()
    );
}

/// A `StatPersisted` in hex: czxid, mzxid, ctime, mtime; version, cversion, aversion; owner, pzxid.
fn stat_hex(longs: [i64; 4], ints: [i32; 3], tail: [i64; 2]) -> String {
    let mut out = String::new();
    for v in longs {
        out += &format!("{v:016x}");
    }
    for v in ints {
        out += &format!("{v:08x}");
    }
    for v in tail {
        out += &format!("{v:016x}");
    }
    out
}

/// The body of the guide's A.5 snapshot (the bytes between the file header and the first checksum),
/// streamed after SNAP, is found exactly and loads as A.5's tree; the signature is 0000000a "BenWasHere".
#[test]
fn golden_a5_body_after_snap() {
    let z1 = 0x1_0000_0001i64;
    let body = hex(&[
        "00000001 0100000000000000 00007530",
        "00000002",
        "0000000000000001 00000001 00000001 00000005 776f726c64 00000006 616e796f6e65",
        "0000000000000002 00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65",
        "00000000 00000000 ffffffffffffffff",
        &stat_hex([0, 0, 0, 0], [0, 1, 0], [0, z1]),
        "00000002 2f61 00000001 78 0000000000000002",
        &stat_hex([z1, z1, 0x18bcfe56800, 0x18bcfe56800], [0, 0, 0], [0, z1]),
        "0000000a 2f7a6f6f6b6565706572 00000000 ffffffffffffffff",
        &stat_hex([0, 0, 0, 0], [0, 0, 0], [0, 0]),
        "00000011 2f7a6f6f6b65657065722f636f6e666967 00000000 0000000000000001",
        &stat_hex([0, 0, 0, 0], [0, 0, -1], [0, 0]),
        "00000010 2f7a6f6f6b65657065722f71756f7461 00000000 ffffffffffffffff",
        &stat_hex([0, 0, 0, 0], [0, 0, 0], [0, 0]),
        "00000001 2f",
    ]
    .join(" "));
    let mut tail = Vec::new();
    encode_snapshot_stream(&[], &mut tail);
    assert_eq!(tail, hex("0000000a 42656e5761734865 7265"));
    assert_eq!(&tail[4..], SNAP_SIGNATURE.as_bytes());

    let mut stream = hex("0000000f 0000000100000001 ffffffff ffffffff");
    stream.extend_from_slice(&body);
    stream.extend_from_slice(&tail);
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
    d.push(&stream);
    let mut got = Vec::new();
    drain(&mut d, &mut got).expect("valid stream");
    assert_eq!(
        got,
        vec![
            QuorumItem::Packet(QuorumPacket::new(PacketType::Snap, z1)),
            QuorumItem::Snapshot(body.clone()),
        ]
    );
    let (tree, sessions) = read_snapshot_blob(&body, false).expect("A.5 body loads");
    assert_eq!(sessions, vec![(SessionId(0x0100_0000_0000_0000), 30_000)]);
    assert_eq!(
        tree.get_data("/a").map(|(d, _)| d.map(<[u8]>::to_vec)),
        Some(Some(b"x".to_vec()))
    );
}

/// A wrong signature is `Malformed` as soon as its first wrong byte arrives, and the error is final.
#[test]
fn wrong_signature_is_malformed() {
    let body = snapshot_blob(&DataTree::new(false), &[]);
    let mut stream = Vec::new();
    encode_packet(&QuorumPacket::new(PacketType::Snap, 1), &mut stream);
    stream.extend_from_slice(&body);
    stream.extend_from_slice(b"\x00\x00\x00\x0aBen");
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
    d.push(&stream);
    assert!(matches!(d.next_item(), Ok(Some(QuorumItem::Packet(_)))));
    assert_eq!(d.next_item(), Ok(None));
    d.push(b"W");
    assert_eq!(d.next_item(), Ok(None));
    d.push(b"X");
    let err = d.next_item();
    assert!(matches!(err, Err(DecodeError::Malformed { .. })), "{err:?}");
    assert_eq!(d.next_item(), err);
    d.push(b"asHere");
    assert_eq!(d.next_item(), err, "errors are final");

    // A signature string of the wrong length is refused too (Java compares the whole string).
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
    let mut s = Vec::new();
    encode_packet(&QuorumPacket::new(PacketType::Snap, 1), &mut s);
    s.extend_from_slice(&body);
    s.extend_from_slice(b"\x00\x00\x00\x0bBenWasHere!");
    d.push(&s);
    let mut got = Vec::new();
    assert!(matches!(
        drain(&mut d, &mut got),
        Err(DecodeError::Malformed { .. })
    ));
}

/// Limits are enforced from the length fields, before the bytes they announce arrive: a packet over
/// `max_packet`, a session count or a node over `max_snapshot`. Exactly at the limit is accepted.
#[test]
fn limits_are_enforced_early() {
    // Packet: data length 1000 with max_packet 100, refused with only the 16 header bytes buffered.
    let mut d = QuorumStreamDecoder::new(100, MAX_SNAPSHOT);
    d.push(&hex("00000002 0000000100000001 000003e8"));
    assert!(matches!(
        d.next_item(),
        Err(DecodeError::TooLarge { max: 100, .. })
    ));

    // A packet of exactly max_packet bytes decodes; one byte less of limit refuses it.
    let p = QuorumPacket::with_data(PacketType::Proposal, 9, vec![1; 40]);
    let mut enc = Vec::new();
    encode_packet(&p, &mut enc);
    let mut d = QuorumStreamDecoder::new(enc.len(), 0);
    d.push(&enc);
    assert_eq!(d.next_item(), Ok(Some(QuorumItem::Packet(p))));
    let mut d = QuorumStreamDecoder::new(enc.len() - 1, 0);
    d.push(&enc);
    assert!(matches!(d.next_item(), Err(DecodeError::TooLarge { .. })));

    // Snapshot: a huge session count is refused at once.
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, 1 << 20);
    let mut s = Vec::new();
    encode_packet(&QuorumPacket::new(PacketType::Snap, 1), &mut s);
    s.extend_from_slice(&hex("7fffffff"));
    d.push(&s);
    assert!(matches!(d.next_item(), Ok(Some(QuorumItem::Packet(_)))));
    assert!(matches!(
        d.next_item(),
        Err(DecodeError::TooLarge { max: 1_048_576, .. })
    ));

    // A real body: exactly max_snapshot passes, one byte less fails before the body is complete.
    let (tree, sessions) = real_tree();
    let body = snapshot_blob(&tree, &sessions);
    let (bytes, items) = encode(&[Seg::Snap(3, body.clone())]);
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, body.len());
    d.push(&bytes);
    let mut got = Vec::new();
    drain(&mut d, &mut got).expect("at the limit");
    assert_eq!(got, items);
    let mut d = QuorumStreamDecoder::new(MAX_PACKET, body.len() - 1);
    d.push(&bytes[..bytes.len() - 10]);
    let mut got = Vec::new();
    assert!(matches!(
        drain(&mut d, &mut got),
        Err(DecodeError::TooLarge { .. })
    ));
}

/// Lengths the tree reader would reject are rejected by the scanner too: negative lengths other than
/// null, a null ACL list in the ACL map, a negative session count.
#[test]
fn malformed_lengths() {
    let snap = hex("0000000f 0000000000000001 ffffffff ffffffff");
    let cases = [
        // packet data length -2
        hex("00000002 0000000000000001 fffffffe"),
        // authinfo count -5
        hex("00000002 0000000000000001 ffffffff fffffffb"),
        [snap.clone(), hex("ffffffff")].concat(),
        [
            snap.clone(),
            hex("00000000 00000001 0000000000000001 ffffffff"),
        ]
        .concat(),
        [snap.clone(), hex("00000000 00000000 fffffff0")].concat(),
        [snap.clone(), hex("00000000 00000000 00000000 fffffffe")].concat(),
    ];
    for case in cases {
        let mut d = QuorumStreamDecoder::new(MAX_PACKET, MAX_SNAPSHOT);
        d.push(&case);
        let mut got = Vec::new();
        let r = drain(&mut d, &mut got);
        assert!(
            matches!(r, Err(DecodeError::Malformed { .. })),
            "{case:02x?}: {r:?}"
        );
    }
}
