//! Decodes every frame captured from a real Apache ZooKeeper 3.8 server (zkCli.sh and kazoo sessions,
//! `core/fixtures/zk38/*.hex`, written by `core/fixtures/capture/capture.py`) and re-encodes it byte
//! for byte. Needs no Java: it reads the committed fixtures only.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use outpost_core::jute::{Record, DEFAULT_MAX_BUFFER};
use outpost_core::proto::client::{
    decode_reply, decode_request, encode_reply, encode_request, ConnectRequest, ConnectResponse,
    Request, Response,
};
use outpost_core::proto::frame::{decode_frame, FrameResult};
use outpost_core::proto::OpCode;

/// One captured frame: direction (`'C'` client→server, `'S'` server→client) and its bytes.
struct Frame {
    dir: char,
    bytes: Vec<u8>,
    line: usize,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("fixture hex"))
        .collect()
}

fn load(name: &str) -> Vec<Vec<Frame>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/zk38")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("read fixture");
    let mut conns: Vec<Vec<Frame>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("@conn") {
            conns.push(Vec::new());
        } else if let Some(rest) = line.strip_prefix("C ").or_else(|| line.strip_prefix("S ")) {
            let dir = line.chars().next().expect("direction");
            conns.last_mut().expect("frame before @conn").push(Frame {
                dir,
                bytes: unhex(rest.trim()),
                line: i + 1,
            });
        }
    }
    conns
}

/// The response variant ZooKeeper's reply to `op` must decode to when `err == 0`.
fn variant_fits(op: OpCode, resp: &Response) -> bool {
    match op {
        OpCode::Create => matches!(resp, Response::Create(_)),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            matches!(resp, Response::Create2(_))
        }
        OpCode::Exists => matches!(resp, Response::Exists(_)),
        OpCode::GetData => matches!(resp, Response::GetData(_)),
        OpCode::SetData => matches!(resp, Response::SetData(_)),
        OpCode::GetAcl => matches!(resp, Response::GetAcl(_)),
        OpCode::SetAcl => matches!(resp, Response::SetAcl(_)),
        OpCode::GetChildren => matches!(resp, Response::GetChildren(_)),
        OpCode::GetChildren2 => matches!(resp, Response::GetChildren2(_)),
        OpCode::Sync => matches!(resp, Response::Sync(_)),
        OpCode::Multi | OpCode::MultiRead => matches!(resp, Response::Multi(_)),
        OpCode::Reconfig => matches!(resp, Response::Reconfig(_)),
        OpCode::GetEphemerals => matches!(resp, Response::GetEphemerals(_)),
        OpCode::GetAllChildrenNumber => matches!(resp, Response::GetAllChildrenNumber(_)),
        OpCode::AddWatch => matches!(resp, Response::AddWatch(_)),
        OpCode::WhoAmI => matches!(resp, Response::WhoAmI(_)),
        _ => matches!(resp, Response::Empty),
    }
}

/// Checks one capture file; returns the opcodes seen in requests.
fn check_file(name: &str) -> BTreeSet<i32> {
    let conns = load(name);
    assert!(!conns.is_empty(), "{name}: no connections");
    let mut ops_seen = BTreeSet::new();
    for frames in &conns {
        let mut pending: HashMap<i32, OpCode> = HashMap::new();
        let (mut seen_c, mut seen_s) = (false, false);
        for f in frames {
            let ctx = format!("{name}:{}", f.line);
            let FrameResult::Complete { payload, consumed } =
                decode_frame(&f.bytes, DEFAULT_MAX_BUFFER)
            else {
                panic!("{ctx}: not one complete frame");
            };
            assert_eq!(consumed, f.bytes.len(), "{ctx}: frame length");
            let payload = &f.bytes[payload];
            match (f.dir, seen_c, seen_s) {
                ('C', false, _) => {
                    seen_c = true;
                    let c = ConnectRequest::from_bytes(payload).expect(&ctx);
                    assert_eq!(c.to_bytes(), payload, "{ctx}: connect request re-encoding");
                }
                ('S', _, false) => {
                    seen_s = true;
                    let c = ConnectResponse::from_bytes(payload).expect(&ctx);
                    assert_eq!(c.passwd.len(), 16, "{ctx}: password length");
                    assert_eq!(c.to_bytes(), payload, "{ctx}: connect response re-encoding");
                }
                ('C', true, _) => {
                    let (h, req) = decode_request(payload).expect(&ctx);
                    assert_eq!(req.op_code().code(), h.ty, "{ctx}: request variant");
                    assert_eq!(
                        encode_request(h.xid, &req),
                        payload,
                        "{ctx}: request re-encoding"
                    );
                    assert_eq!(
                        Request::decode(req.op_code(), &payload[8..]).as_ref(),
                        Ok(&req),
                        "{ctx}"
                    );
                    ops_seen.insert(h.ty);
                    pending.insert(h.xid, req.op_code());
                }
                ('S', _, true) => {
                    let xid = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    let op = if xid == -1 {
                        None
                    } else {
                        pending.remove(&xid)
                    };
                    assert!(
                        xid == -1 || op.is_some(),
                        "{ctx}: reply to unknown xid {xid}"
                    );
                    let (h, resp) = decode_reply(payload, op).expect(&ctx);
                    assert_eq!(encode_reply(&h, &resp), payload, "{ctx}: reply re-encoding");
                    match op {
                        None => match &resp {
                            Response::Watch(ev) => {
                                assert!(ev.event_type().is_some(), "{ctx}: event type");
                                assert!(ev.keeper_state().is_some(), "{ctx}: state");
                                assert_eq!((h.zxid, h.err), (-1, 0), "{ctx}: notification header");
                            }
                            other => panic!("{ctx}: xid -1 decoded as {other:?}"),
                        },
                        Some(_) if h.err != 0 => {
                            assert_eq!(resp, Response::Empty, "{ctx}: error reply body")
                        }
                        Some(op) => assert!(variant_fits(op, &resp), "{ctx}: {op:?} -> {resp:?}"),
                    }
                }
                _ => unreachable!(),
            }
        }
    }
    ops_seen
}

/// Every frame of the zkCli.sh session decodes, maps to the right variants and re-encodes exactly;
/// the session covers the zkCli-only ops (containers, TTL, addWatch, whoAmI, reconfig, setWatches2).
#[test]
fn zkcli_session_round_trips() {
    let ops = check_file("zkcli.hex");
    for op in [
        1, 2, 3, 4, 5, 6, 7, 9, 12, 14, 16, 18, 19, 21, 100, 103, 104, 105, 106, 107, -11,
    ] {
        assert!(ops.contains(&op), "zkcli capture lacks op {op}");
    }
}

/// Every frame of the kazoo session (multi with a failing check, watches, create2, ACLs) decodes and
/// re-encodes exactly.
#[test]
fn kazoo_session_round_trips() {
    let ops = check_file("kazoo.hex");
    for op in [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14, 15, 100, -11] {
        assert!(ops.contains(&op), "kazoo capture lacks op {op}");
    }
}
