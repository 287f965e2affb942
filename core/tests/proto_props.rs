//! Property tests for the wire codec: encode → decode → encode is the identity for every record and
//! enum built from arbitrary values, and no decoder panics on arbitrary bytes.

use outpost_core::jute::{JuteReader, JuteWriter, Record, DEFAULT_MAX_BUFFER};
use outpost_core::proto::client::*;
use outpost_core::proto::frame::{decode_frame, encode_frame, four_letter_word, FrameResult};
use outpost_core::proto::quorum::*;
use outpost_core::proto::txn::*;
use outpost_core::proto::{Acl, ErrorCode, Id, OpCode, Stat, StatPersisted};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

fn s() -> impl Strategy<Value = String> {
    "[a-z/_.0-9\u{e9}\u{1F600}]{0,12}"
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..24)
}

fn strs() -> impl Strategy<Value = Vec<String>> {
    vec(s(), 0..4)
}

fn id() -> impl Strategy<Value = Id> {
    (s(), s()).prop_map(|(scheme, id)| Id { scheme, id })
}

fn acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(
        (any::<i32>(), id()).prop_map(|(perms, id)| Acl { perms, id }),
        0..3,
    )
}

fn stat() -> impl Strategy<Value = Stat> {
    (
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i64>()),
        (any::<i32>(), any::<i32>(), any::<i64>()),
    )
        .prop_map(|((a, b, c, d), (e, f, g, h), (i, j, k))| Stat {
            czxid: a,
            mzxid: b,
            ctime: c,
            mtime: d,
            version: e,
            cversion: f,
            aversion: g,
            ephemeral_owner: h,
            data_length: i,
            num_children: j,
            pzxid: k,
        })
}

fn err() -> impl Strategy<Value = ErrorCode> {
    any::<i32>().prop_map(ErrorCode::from_code)
}

fn create_req(flags: impl Strategy<Value = i32>) -> impl Strategy<Value = CreateRequest> {
    (s(), option::of(bytes()), acls(), flags).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn create_ttl_req(flags: impl Strategy<Value = i32>) -> impl Strategy<Value = CreateTtlRequest> {
    (s(), option::of(bytes()), acls(), flags, any::<i64>()).prop_map(
        |(path, data, acl, flags, ttl)| CreateTtlRequest {
            path,
            data,
            acl,
            flags,
            ttl,
        },
    )
}

fn multi_req() -> impl Strategy<Value = MultiRequest> {
    let write = prop_oneof![
        create_req(0..7).prop_map(MultiOp::Create),
        create_req(0..7).prop_map(MultiOp::Create2),
        create_req(0..7).prop_map(MultiOp::CreateContainer),
        create_ttl_req(any::<i32>()).prop_map(MultiOp::CreateTtl),
        (s(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (s(), option::of(bytes()), any::<i32>()).prop_map(|(path, data, version)| {
            MultiOp::SetData(SetDataRequest {
                path,
                data,
                version,
            })
        }),
        (s(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
    ];
    let read = prop_oneof![
        (s(), any::<bool>())
            .prop_map(|(path, watch)| MultiOp::GetChildren(GetChildrenRequest { path, watch })),
        (s(), any::<bool>())
            .prop_map(|(path, watch)| MultiOp::GetData(GetDataRequest { path, watch })),
    ];
    prop_oneof![vec(write, 0..4), vec(read, 0..4)].prop_map(|ops| MultiRequest { ops })
}

fn multi_resp() -> impl Strategy<Value = MultiResponse> {
    let res = prop_oneof![
        s().prop_map(|path| MultiResult::Create { path }),
        (s(), stat()).prop_map(|(path, stat)| MultiResult::Create2 { path, stat }),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData { stat }),
        Just(MultiResult::Check),
        strs().prop_map(|children| MultiResult::GetChildren { children }),
        (option::of(bytes()), stat()).prop_map(|(data, stat)| MultiResult::GetData { data, stat }),
        err().prop_map(|err| MultiResult::Error { err }),
    ];
    vec(res, 0..4).prop_map(|results| MultiResponse { results })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        create_req(any::<i32>()).prop_map(Request::Create),
        create_req(any::<i32>()).prop_map(Request::Create2),
        create_req(any::<i32>()).prop_map(Request::CreateContainer),
        create_ttl_req(any::<i32>()).prop_map(Request::CreateTtl),
        (s(), any::<i32>())
            .prop_map(|(path, version)| Request::Delete(DeleteRequest { path, version })),
        (s(), any::<bool>())
            .prop_map(|(path, watch)| Request::Exists(ExistsRequest { path, watch })),
        (s(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetData(GetDataRequest { path, watch })),
        (s(), option::of(bytes()), any::<i32>()).prop_map(|(path, data, version)| {
            Request::SetData(SetDataRequest {
                path,
                data,
                version,
            })
        }),
        s().prop_map(|path| Request::GetAcl(GetAclRequest { path })),
        (s(), acls(), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        (s(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren(GetChildrenRequest { path, watch })),
        s().prop_map(|path| Request::Sync(SyncRequest { path })),
        Just(Request::Ping),
        (s(), any::<bool>())
            .prop_map(|(path, watch)| Request::GetChildren2(GetChildren2Request { path, watch })),
        (s(), any::<i32>())
            .prop_map(|(path, version)| Request::Check(CheckVersionRequest { path, version })),
        multi_req().prop_map(Request::Multi),
        multi_req().prop_map(Request::MultiRead),
        (
            option::of(s()),
            option::of(s()),
            option::of(s()),
            any::<i64>()
        )
            .prop_map(
                |(joining_servers, leaving_servers, new_members, cur_config_id)| {
                    Request::Reconfig(ReconfigRequest {
                        joining_servers,
                        leaving_servers,
                        new_members,
                        cur_config_id,
                    })
                }
            ),
        (s(), any::<i32>())
            .prop_map(|(path, ty)| Request::CheckWatches(CheckWatchesRequest { path, ty })),
        (s(), any::<i32>())
            .prop_map(|(path, ty)| Request::RemoveWatches(RemoveWatchesRequest { path, ty })),
        s().prop_map(|path| Request::DeleteContainer { path }),
        (any::<i32>(), s(), bytes()).prop_map(|(ty, scheme, auth)| Request::Auth(AuthPacket {
            ty,
            scheme,
            auth
        })),
        (any::<i64>(), strs(), strs(), strs()).prop_map(|(z, d, e, c)| {
            Request::SetWatches(SetWatches {
                relative_zxid: z,
                data_watches: d,
                exist_watches: e,
                child_watches: c,
            })
        }),
        bytes().prop_map(|token| Request::Sasl(GetSaslRequest { token })),
        s().prop_map(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        s().prop_map(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })),
        (any::<i64>(), strs(), strs(), strs(), strs(), strs()).prop_map(|(z, d, e, c, p, r)| {
            Request::SetWatches2(SetWatches2 {
                relative_zxid: z,
                data_watches: d,
                exist_watches: e,
                child_watches: c,
                persistent_watches: p,
                persistent_recursive_watches: r,
            })
        }),
        (s(), any::<i32>())
            .prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        Just(Request::WhoAmI),
        any::<i32>().prop_map(|timeout| Request::CreateSession { timeout }),
        Just(Request::CloseSession),
    ]
}

/// A response and the opcode of the request it answers.
fn response() -> impl Strategy<Value = (OpCode, Response)> {
    prop_oneof![
        Just((OpCode::Delete, Response::Empty)),
        (any::<i32>(), any::<i32>(), s()).prop_map(|(ty, state, path)| {
            (
                OpCode::Notification,
                Response::Watch(WatcherEvent { ty, state, path }),
            )
        }),
        s().prop_map(|path| (OpCode::Create, Response::Create(CreateResponse { path }))),
        (s(), stat()).prop_map(|(path, stat)| {
            (
                OpCode::CreateTtl,
                Response::Create2(Create2Response { path, stat }),
            )
        }),
        stat().prop_map(|stat| (OpCode::Exists, Response::Exists(ExistsResponse { stat }))),
        (option::of(bytes()), stat()).prop_map(|(data, stat)| {
            (
                OpCode::GetData,
                Response::GetData(GetDataResponse { data, stat }),
            )
        }),
        (option::of(bytes()), stat()).prop_map(|(data, stat)| {
            (
                OpCode::Reconfig,
                Response::Reconfig(GetDataResponse { data, stat }),
            )
        }),
        stat().prop_map(|stat| (OpCode::SetData, Response::SetData(SetDataResponse { stat }))),
        (acls(), stat()).prop_map(|(acl, stat)| (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse { acl, stat })
        )),
        stat().prop_map(|stat| (OpCode::SetAcl, Response::SetAcl(SetAclResponse { stat }))),
        strs().prop_map(|children| {
            (
                OpCode::GetChildren,
                Response::GetChildren(GetChildrenResponse { children }),
            )
        }),
        (strs(), stat()).prop_map(|(children, stat)| {
            (
                OpCode::GetChildren2,
                Response::GetChildren2(GetChildren2Response { children, stat }),
            )
        }),
        s().prop_map(|path| (OpCode::Sync, Response::Sync(SyncResponse { path }))),
        multi_resp().prop_map(|m| (OpCode::Multi, Response::Multi(m))),
        bytes().prop_map(|token| (OpCode::Sasl, Response::Sasl(SetSaslResponse { token }))),
        strs().prop_map(|ephemerals| {
            (
                OpCode::GetEphemerals,
                Response::GetEphemerals(GetEphemeralsResponse { ephemerals }),
            )
        }),
        any::<i32>().prop_map(|total_number| {
            (
                OpCode::GetAllChildrenNumber,
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
            )
        }),
        any::<i32>().prop_map(|err| (OpCode::AddWatch, Response::AddWatch(ErrorResponse { err }))),
        vec((s(), s()), 0..3).prop_map(|v| {
            let client_info = v
                .into_iter()
                .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                .collect();
            (
                OpCode::WhoAmI,
                Response::WhoAmI(WhoAmIResponse { client_info }),
            )
        }),
    ]
}

fn create_txn() -> impl Strategy<Value = CreateTxn> {
    (
        s(),
        option::of(bytes()),
        acls(),
        any::<bool>(),
        any::<i32>(),
    )
        .prop_map(|(path, data, acl, ephemeral, parent_cversion)| CreateTxn {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        })
}

fn set_data_txn() -> impl Strategy<Value = SetDataTxn> {
    (s(), option::of(bytes()), any::<i32>()).prop_map(|(path, data, version)| SetDataTxn {
        path,
        data,
        version,
    })
}

/// Txns that may appear inside a multi.
fn sub_txn() -> impl Strategy<Value = Txn> {
    prop_oneof![
        create_txn().prop_map(Txn::Create),
        create_txn().prop_map(Txn::Create2),
        (s(), option::of(bytes()), acls(), any::<i32>()).prop_map(
            |(path, data, acl, parent_cversion)| {
                Txn::CreateContainer(CreateContainerTxn {
                    path,
                    data,
                    acl,
                    parent_cversion,
                })
            }
        ),
        (s(), option::of(bytes()), acls(), any::<i32>(), any::<i64>()).prop_map(
            |(path, data, acl, parent_cversion, ttl)| Txn::CreateTtl(CreateTtlTxn {
                path,
                data,
                acl,
                parent_cversion,
                ttl,
            })
        ),
        s().prop_map(|path| Txn::Delete(DeleteTxn { path })),
        s().prop_map(|path| Txn::DeleteContainer(DeleteTxn { path })),
        set_data_txn().prop_map(Txn::SetData),
        set_data_txn().prop_map(Txn::Reconfig),
        (s(), acls(), any::<i32>()).prop_map(|(path, acl, version)| Txn::SetAcl(SetAclTxn {
            path,
            acl,
            version
        })),
        (s(), any::<i32>())
            .prop_map(|(path, version)| Txn::CheckVersion(CheckVersionTxn { path, version })),
        err().prop_map(|err| Txn::Error { err }),
    ]
}

fn digest() -> impl Strategy<Value = Option<TxnDigest>> {
    option::of(
        (any::<i32>(), any::<i64>()).prop_map(|(version, tree_digest)| TxnDigest {
            version,
            tree_digest,
        }),
    )
}

fn txn_entry() -> impl Strategy<Value = TxnEntry> {
    let txn = prop_oneof![
        sub_txn(),
        any::<i32>().prop_map(|timeout| Txn::CreateSession { timeout }),
        strs().prop_map(|p| Txn::CloseSession {
            paths2delete: Some(p)
        }),
        vec(sub_txn(), 0..4).prop_map(Txn::Multi),
    ];
    (
        (any::<i64>(), any::<i32>(), any::<i64>(), any::<i64>()),
        txn,
        digest(),
    )
        .prop_map(|((client_id, cxid, zxid, time), txn, digest)| {
            TxnEntry::new(
                TxnHeader {
                    client_id,
                    cxid,
                    zxid,
                    time,
                    ty: 0,
                },
                txn,
                digest,
            )
        })
}

fn round_trip<T: Record + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = v.to_bytes();
    let back = T::from_bytes(&bytes).expect("decode what we encoded");
    assert_eq!(&back, v);
    assert_eq!(back.to_bytes(), bytes);
}

proptest! {
    /// Every client request re-encodes identically through `encode_request` / `decode_request`.
    #[test]
    fn request_round_trip(xid in any::<i32>(), req in request()) {
        let payload = encode_request(xid, &req);
        let (h, back) = decode_request(&payload).expect("decode");
        prop_assert_eq!(h.xid, xid);
        prop_assert_eq!(&back, &req);
        prop_assert_eq!(encode_request(xid, &back), payload);
    }

    /// Every response re-encodes identically given the op of its request.
    #[test]
    fn response_round_trip(xid in 1..i32::MAX, zxid in any::<i64>(), (op, resp) in response()) {
        let xid = if op == OpCode::Notification { -1 } else { xid };
        let h = ReplyHeader { xid, zxid, err: 0 };
        let payload = encode_reply(&h, &resp);
        let (h2, back) = decode_reply(&payload, Some(op)).expect("decode");
        prop_assert_eq!(&h2, &h);
        prop_assert_eq!(&back, &resp);
        prop_assert_eq!(encode_reply(&h2, &back), payload);
    }

    /// Connect packets (with or without the readOnly byte), headers and the data records round-trip.
    #[test]
    fn handshake_and_header_round_trip(
        a in any::<i32>(), b in any::<i64>(), c in any::<i32>(), d in any::<i64>(),
        pw in bytes(), ro in option::of(any::<bool>()), st in stat(), acl in acls(), e in any::<i32>(),
    ) {
        round_trip(&ConnectRequest { protocol_version: a, last_zxid_seen: b, timeout: c, session_id: d, passwd: pw.clone(), read_only: ro });
        round_trip(&ConnectResponse { protocol_version: a, timeout: c, session_id: d, passwd: pw, read_only: ro });
        round_trip(&RequestHeader { xid: a, ty: c });
        round_trip(&ReplyHeader { xid: a, zxid: b, err: c });
        round_trip(&MultiHeader { ty: a, done: ro.unwrap_or(false), err: c });
        round_trip(&st);
        round_trip(&StatPersisted { czxid: b, mzxid: d, ctime: b, mtime: d, version: a, cversion: c, aversion: e, ephemeral_owner: b, pzxid: d });
        for x in &acl { round_trip(x); }
        round_trip(&GetMaxChildrenResponse { max: e });
        round_trip(&SetMaxChildrenRequest { path: "/m".into(), max: e });
        round_trip(&SetSaslRequest { token: vec![1, 2] });
        round_trip(&SetMaxChildrenTxn { path: "/m".into(), max: e });
    }

    /// Txn entries (every body type, multi, optional digest) round-trip through `TxnEntry`.
    #[test]
    fn txn_entry_round_trip(e in txn_entry()) {
        let bytes = e.to_bytes();
        let back = TxnEntry::decode(&bytes).expect("decode");
        prop_assert_eq!(&back, &e);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    /// A closeSession without body round-trips when the reader is configured for bodiless closeSession.
    #[test]
    fn bodiless_close_session_round_trip(sid in any::<i64>(), d in digest()) {
        let e = TxnEntry::new(TxnHeader { client_id: sid, ..TxnHeader::default() }, Txn::CloseSession { paths2delete: None }, d);
        prop_assert_eq!(TxnEntry::decode_with(&e.to_bytes(), false).expect("decode"), e);
    }

    /// Quorum packets, learner records and REQUEST/ping payloads round-trip.
    #[test]
    fn quorum_round_trip(
        ty in any::<i32>(), zxid in any::<i64>(), data in option::of(bytes()),
        auth in option::of(vec(id(), 0..3)), sid in any::<i64>(), v in any::<i32>(),
        touches in vec((any::<i64>(), any::<i32>()), 0..4),
    ) {
        let p = QuorumPacket { ty, zxid, data: data.clone(), authinfo: auth };
        round_trip(&p);
        let (back, used) = QuorumPacket::decode_stream(&p.to_bytes(), DEFAULT_MAX_BUFFER).expect("stream");
        prop_assert_eq!(used, p.to_bytes().len());
        prop_assert_eq!(back, p);
        round_trip(&LearnerInfo { server_id: sid, protocol_version: v, config_version: zxid });
        round_trip(&RevalidateRequest { session_id: sid, timeout: v });
        round_trip(&RevalidateReply { session_id: sid, valid: v % 2 == 0 });
        let fwd = ForwardedRequest { session_id: sid, cxid: v, op_type: ty, body: data.unwrap_or_default() };
        prop_assert_eq!(ForwardedRequest::from_bytes(&fwd.to_bytes()).expect("fwd"), fwd);
        let touches: Vec<SessionTouch> = touches.into_iter().map(|(session_id, timeout)| SessionTouch { session_id, timeout }).collect();
        prop_assert_eq!(decode_session_touches(&encode_session_touches(&touches)).expect("touches"), touches);
        let act = encode_activate(sid, &[1, 2, 3]);
        prop_assert_eq!(decode_activate(&act).expect("activate"), (sid, &[1u8, 2, 3][..]));
    }

    /// Election handshake headers of every version and notifications of version 0 and ≥ 2 round-trip.
    #[test]
    fn election_round_trip(
        sid in any::<i64>(), addr in "[a-z0-9.:|\\[\\]]{1,40}", v2 in any::<bool>(),
        state in 0..4i32, leader in any::<i64>(), zxid in any::<i64>(), round in any::<i64>(),
        epoch in any::<i64>(), version in prop_oneof![Just(0), 2..i32::MAX], config in bytes(),
    ) {
        let h = if sid >= 0 && !v2 && addr.len() == 1 {
            ElectionHandshake { protocol: ElectionProtocol::Legacy, sid, addresses: String::new() }
        } else {
            ElectionHandshake { protocol: if v2 { ElectionProtocol::V2 } else { ElectionProtocol::V1 }, sid, addresses: addr }
        };
        let bytes = h.to_bytes();
        prop_assert_eq!(ElectionHandshake::decode(&bytes).expect("handshake"), (h, bytes.len()));
        let n = Notification {
            state: ServerState::from_code(state).expect("state"),
            leader, zxid, election_epoch: round, peer_epoch: epoch, version,
            config: if version > 1 { config } else { Vec::new() },
        };
        let payload = n.to_bytes();
        let back = Notification::decode(&payload).expect("notification");
        prop_assert_eq!(back.to_bytes(), payload);
        prop_assert_eq!(back, n);
    }

    /// Frames round-trip through `encode_frame` / `decode_frame`.
    #[test]
    fn frame_round_trip(payload in vec(any::<u8>(), 0..64), extra in vec(any::<u8>(), 0..8)) {
        let mut buf = encode_frame(&payload);
        let n = buf.len();
        buf.extend_from_slice(&extra);
        prop_assert_eq!(decode_frame(&buf, 64), FrameResult::Complete { payload: 4..n, consumed: n });
    }

    /// No decoder panics on arbitrary bytes, whatever opcode or packet type is claimed.
    #[test]
    fn decoders_never_panic(buf in vec(any::<u8>(), 0..96), max in 0usize..128) {
        let _ = decode_frame(&buf, max);
        if let Some(first4) = buf.get(..4) {
            let mut w = [0u8; 4];
            w.copy_from_slice(first4);
            let _ = four_letter_word(&w);
        }
        let _ = decode_request(&buf);
        for op in OpCode::ALL {
            let _ = Request::decode(op, &buf);
            let _ = Response::decode(op, &buf);
            let _ = decode_reply(&buf, Some(op));
            let _ = Txn::decode(op.code(), &mut JuteReader::new(&buf));
        }
        let _ = ConnectRequest::from_bytes(&buf);
        let _ = ConnectResponse::from_bytes(&buf);
        let _ = TxnEntry::decode(&buf);
        let _ = TxnEntry::decode_with(&buf, false);
        let _ = QuorumPacket::decode_stream(&buf, max);
        let _ = QuorumPacket::from_bytes(&buf);
        let _ = Notification::decode(&buf);
        let _ = ElectionHandshake::decode(&buf);
        let _ = LearnerInfoView::parse(&buf);
        let _ = decode_session_touches(&buf);
        let _ = ForwardedRequest::from_bytes(&buf);
        let _ = MultiRequest::from_bytes(&buf);
        let _ = MultiResponse::from_bytes(&buf);
    }

    /// Decoders also survive valid prefixes followed by garbage (deeper paths than pure noise).
    #[test]
    fn decoders_survive_mutated_valid_input(req in request(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut payload = encode_request(7, &req);
        let i = cut.index(payload.len());
        payload[i] ^= flip;
        let _ = decode_request(&payload);
        let _ = decode_request(&payload[..i]);
        let mut w = JuteWriter::new();
        req.encode(&mut w);
        let _ = MultiRequest::from_bytes(w.as_slice());
    }
}
