//! Property test of the prep → apply pipeline: preparing requests in batches against the tree plus the
//! outstanding-changes overlay (ZooKeeper's pipelining) must yield exactly the txns, results and final
//! tree that preparing each request after the previous one was applied yields. Restarts (serialize →
//! deserialize) between batches must not change anything either.

use proptest::prelude::*;

use super::apply::TxnResult;
use super::prep::{prepare, AnySession, PendingChanges, PrepConfig, RequestMeta, WriteRequest};
use super::test_strategies::{dump, path_strategy, simple_op, Dump};
use super::*;
use crate::proto::{Id, Txn, TxnHeader};

const SESSIONS: [SessionId; 2] = [
    SessionId(0x0100_0000_0000_0001),
    SessionId(0x0100_0000_0000_0002),
];

fn request_strategy() -> impl Strategy<Value = (usize, WriteRequest)> {
    let multi_op = prop_oneof![
        4 => simple_op().prop_filter("no setACL in multi", |r| !matches!(r, WriteRequest::SetAcl { .. })),
        1 => (path_strategy(), -1..2i32).prop_map(|(path, version)| WriteRequest::Check { path, version }),
    ];
    let req = prop_oneof![
        8 => simple_op(),
        2 => proptest::collection::vec(multi_op, 1..4).prop_map(WriteRequest::Multi),
        1 => Just(WriteRequest::CloseSession),
    ];
    (0..SESSIONS.len(), req)
}

/// Prepares and applies `reqs` with batches of the given sizes; returns every prepared (header, txn), every
/// apply result, and the final tree bytes.
fn run(
    reqs: &[(usize, WriteRequest)],
    batches: &[usize],
    restarts: bool,
) -> (Vec<(TxnHeader, Txn)>, Vec<TxnResult>, Dump) {
    let mut tree = DataTree::new(false);
    let mut pending = PendingChanges::new();
    let config = PrepConfig::default();
    let auth = [Id::new("digest", "u:h")];
    let mut prepared = Vec::new();
    let mut results = Vec::new();
    let mut zxid = 0x1_0000_0000i64;
    let mut i = 0;
    let mut b = 0;
    while i < reqs.len() {
        let size = batches.get(b).copied().unwrap_or(1).max(1);
        b += 1;
        let batch: Vec<(TxnHeader, Txn)> = reqs[i..(i + size).min(reqs.len())]
            .iter()
            .map(|(s, req)| {
                zxid += 1;
                let meta = RequestMeta {
                    session: SESSIONS[*s],
                    cxid: 1,
                    zxid,
                    time_ms: zxid * 3,
                    auth_ids: &auth,
                };
                let p = prepare(&tree, &mut pending, &mut AnySession, &config, &meta, req);
                (p.header, p.txn)
            })
            .collect();
        i += size;
        for (h, t) in &batch {
            let o = tree.apply_txn(h, t);
            pending.release_through(h.zxid);
            results.push(o.result);
        }
        assert!(pending.is_empty(), "overlay not drained");
        assert_eq!(tree.validate(), Ok(()));
        if restarts {
            let before = dump(&tree);
            let digest = tree.digest();
            let zx = tree.last_processed_zxid();
            tree = DataTree::deserialize(&tree.serialize(), false).expect("decode");
            tree.set_last_processed_zxid(zx);
            assert_eq!(dump(&tree), before);
            assert_eq!(tree.digest(), digest);
            assert_eq!(tree.validate(), Ok(()));
        }
        prepared.extend(batch);
    }
    (prepared, results, dump(&tree))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Pipelined preparation (batches against the overlay) equals one-at-a-time preparation, with and
    /// without restarts between batches.
    #[test]
    fn pipelined_prep_equals_sequential(
        reqs in proptest::collection::vec(request_strategy(), 1..60),
        batches in proptest::collection::vec(1..6usize, 0..40),
        restarts in any::<bool>(),
    ) {
        let one_by_one = run(&reqs, &[], false);
        let pipelined = run(&reqs, &batches, restarts);
        prop_assert_eq!(&one_by_one.0, &pipelined.0);
        prop_assert_eq!(&one_by_one.1, &pipelined.1);
        prop_assert_eq!(&one_by_one.2, &pipelined.2);
    }
}
