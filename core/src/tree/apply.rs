//! Applying committed txns to the tree: `DataTree.processTxn`, including multi (an error sub-txn makes the
//! whole multi a no-op whose results are 0 / the error / -2), closeSession's ephemeral cleanup, and the
//! replay tolerance for fuzzy snapshots (NODEEXISTS on a `create` still raises the parent's cversion and
//! pzxid; NONODE on delete is reported and ignored).
//!
//! The outcome is Java's `ProcessTxnResult` shape plus the watch triggers in the order ZooKeeper fires
//! them; session bookkeeping (createSession/closeSession in the session tracker) is the caller's job.

use crate::ids::SessionId;
use crate::proto::txn::CreateTxn;
use crate::proto::{ErrorCode, OpCode, Stat, Txn, TxnHeader};
use crate::watch::Trigger;

use super::{DataTree, EphemeralType, CONTAINER_OWNER};

/// One txn's result (`DataTree.ProcessTxnResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResult {
    /// The txn type applied (for a multi's sub-results: the sub-txn's type, `Error` when the multi failed).
    pub op: OpCode,
    /// Result code; a failed multi reports its first non-zero sub-error.
    pub err: ErrorCode,
    /// The node path (creates: the final path), when the txn has one.
    pub path: Option<String>,
    /// The node's stat after the change (create2/createTTL/createContainer, setData, setACL).
    pub stat: Option<Stat>,
    /// Sub-results of a multi, in order.
    pub multi: Vec<TxnResult>,
}

impl TxnResult {
    fn new(op: OpCode) -> TxnResult {
        TxnResult {
            op,
            err: ErrorCode::Ok,
            path: None,
            stat: None,
            multi: Vec::new(),
        }
    }
}

/// What applying one txn did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct ApplyOutcome {
    /// The result, for building the reply.
    pub result: TxnResult,
    /// Watch triggers, in firing order; feed them to [`crate::watch::WatchManager::trigger`].
    pub triggers: Vec<Trigger>,
}

impl DataTree {
    /// Applies a committed (or replayed) txn, as `DataTree.processTxn(header, txn)`. Never panics on
    /// txn content: impossible requests become error results. `lastProcessedZxid` advances after the whole
    /// txn.
    pub fn apply_txn(&mut self, hdr: &TxnHeader, txn: &Txn) -> ApplyOutcome {
        let mut triggers = Vec::new();
        let result = self.process(hdr, txn, &mut triggers);
        if hdr.zxid > self.last_processed_zxid {
            self.last_processed_zxid = hdr.zxid;
        }
        ApplyOutcome { result, triggers }
    }

    fn process(&mut self, hdr: &TxnHeader, txn: &Txn, triggers: &mut Vec<Trigger>) -> TxnResult {
        let mut rc = TxnResult::new(txn.op_code());
        let outcome: Result<(), ErrorCode> = match txn {
            Txn::Create(t) | Txn::Create2(t) => {
                let owner = if t.ephemeral { hdr.client_id } else { 0 };
                rc.path = Some(t.path.clone());
                self.apply_create(
                    hdr,
                    &t.path,
                    t.data.as_deref(),
                    &t.acl,
                    owner,
                    t.parent_cversion,
                    &mut rc,
                    triggers,
                )
            }
            Txn::CreateTtl(t) => {
                rc.path = Some(t.path.clone());
                match EphemeralType::ttl_owner(t.ttl) {
                    // Java throws IllegalArgumentException here (and crashes the applier); a bad TTL can
                    // only come from a broken peer, so report it instead.
                    None => Err(ErrorCode::BadArguments),
                    Some(owner) => self.apply_create(
                        hdr,
                        &t.path,
                        t.data.as_deref(),
                        &t.acl,
                        owner,
                        t.parent_cversion,
                        &mut rc,
                        triggers,
                    ),
                }
            }
            Txn::CreateContainer(t) => {
                rc.path = Some(t.path.clone());
                self.apply_create(
                    hdr,
                    &t.path,
                    t.data.as_deref(),
                    &t.acl,
                    CONTAINER_OWNER,
                    t.parent_cversion,
                    &mut rc,
                    triggers,
                )
            }
            Txn::Delete(t) | Txn::DeleteContainer(t) => {
                rc.path = Some(t.path.clone());
                self.delete_node(&t.path, hdr.zxid)
                    .map(|tr| triggers.push(tr))
            }
            Txn::SetData(t) | Txn::Reconfig(t) => {
                rc.path = Some(t.path.clone());
                self.set_data(&t.path, t.data.as_deref(), t.version, hdr.zxid, hdr.time)
                    .map(|(stat, tr)| {
                        rc.stat = Some(stat);
                        triggers.push(tr);
                    })
            }
            Txn::SetAcl(t) => {
                rc.path = Some(t.path.clone());
                self.set_acl(&t.path, &t.acl, t.version)
                    .map(|stat| rc.stat = Some(stat))
            }
            Txn::CloseSession { paths2delete } => {
                let ts =
                    self.kill_session(SessionId(hdr.client_id), hdr.zxid, paths2delete.as_deref());
                triggers.extend(ts);
                Ok(())
            }
            Txn::CreateSession { .. } => Ok(()),
            Txn::Error { err } => Err(*err),
            Txn::CheckVersion(t) => {
                rc.path = Some(t.path.clone());
                Ok(())
            }
            Txn::Multi(subs) => {
                self.apply_multi(hdr, subs, &mut rc, triggers);
                Ok(())
            }
        };
        if let Err(e) = outcome {
            rc.err = e;
        }
        // Fuzzy-snapshot replay (processTxn's tail): a `create` that finds its node already there still
        // raises the parent's cversion/pzxid to the txn's values.
        if let Txn::Create(CreateTxn {
            path,
            parent_cversion,
            ..
        }) = txn
        {
            if rc.err == ErrorCode::NodeExists {
                if let Some(parent) = crate::path::parent(path) {
                    if let Err(e) = self.set_cversion_pzxid(parent, *parent_cversion, hdr.zxid) {
                        rc.err = e;
                    }
                }
            }
        }
        rc
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_create(
        &mut self,
        hdr: &TxnHeader,
        path: &str,
        data: Option<&[u8]>,
        acl: &[crate::proto::Acl],
        owner: i64,
        parent_cversion: i32,
        rc: &mut TxnResult,
        triggers: &mut Vec<Trigger>,
    ) -> Result<(), ErrorCode> {
        let (stat, tr) =
            self.create_node(path, data, acl, owner, parent_cversion, hdr.zxid, hdr.time)?;
        rc.stat = Some(stat);
        triggers.push(tr);
        Ok(())
    }

    /// The multi branch of `processTxn`: if any sub-txn is an error, every non-error sub-txn is replaced by
    /// `ErrorTxn(0)` before the first error and `ErrorTxn(-2)` after it, so nothing is applied.
    fn apply_multi(
        &mut self,
        hdr: &TxnHeader,
        subs: &[Txn],
        rc: &mut TxnResult,
        triggers: &mut Vec<Trigger>,
    ) {
        let failed = subs.iter().any(|t| matches!(t, Txn::Error { .. }));
        let mut post_failed = false;
        for sub in subs {
            if matches!(sub, Txn::Error { .. }) {
                post_failed = true;
            }
            let replaced;
            let sub = if failed && !matches!(sub, Txn::Error { .. }) {
                replaced = Txn::Error {
                    err: if post_failed {
                        ErrorCode::RuntimeInconsistency
                    } else {
                        ErrorCode::Ok
                    },
                };
                &replaced
            } else {
                sub
            };
            let sub_hdr = TxnHeader {
                ty: sub.type_code(),
                ..*hdr
            };
            let sub_rc = self.process(&sub_hdr, sub, triggers);
            if sub_rc.err != ErrorCode::Ok && rc.err == ErrorCode::Ok {
                rc.err = sub_rc.err;
            }
            rc.multi.push(sub_rc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::txn::{CheckVersionTxn, CreateTtlTxn, DeleteTxn, SetAclTxn, SetDataTxn};
    use crate::proto::Acl;

    fn hdr(zxid: i64) -> TxnHeader {
        TxnHeader {
            client_id: 0x0100_0000_0000_0000,
            cxid: 1,
            zxid,
            time: 1_700_000_000_000,
            ty: 0,
        }
    }

    fn create(path: &str, ephemeral: bool, pcv: i32) -> Txn {
        Txn::Create(CreateTxn {
            path: path.into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral,
            parent_cversion: pcv,
        })
    }

    /// Each txn type changes what processTxn changes and reports path/stat/err as ProcessTxnResult does.
    #[test]
    fn applies_each_type() {
        let mut t = DataTree::new(true);
        let o = t.apply_txn(&hdr(1), &create("/a", false, 1));
        assert_eq!(
            (o.result.err, o.result.path.as_deref()),
            (ErrorCode::Ok, Some("/a"))
        );
        assert_eq!(o.triggers.len(), 1);
        let o = t.apply_txn(
            &hdr(2),
            &Txn::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(b"yy".to_vec()),
                version: 1,
            }),
        );
        assert_eq!(
            o.result.stat.map(|s| (s.version, s.mzxid, s.data_length)),
            Some((1, 2, 2))
        );
        let o = t.apply_txn(
            &hdr(3),
            &Txn::SetAcl(SetAclTxn {
                path: "/a".into(),
                acl: Acl::read_unsafe(),
                version: 1,
            }),
        );
        assert_eq!(o.result.stat.map(|s| s.aversion), Some(1));
        assert!(o.triggers.is_empty());
        let o = t.apply_txn(
            &hdr(4),
            &Txn::CreateTtl(CreateTtlTxn {
                path: "/t".into(),
                data: Some(vec![]),
                acl: Acl::open_unsafe(),
                parent_cversion: 3,
                ttl: 100,
            }),
        );
        assert_eq!(o.result.err, ErrorCode::Ok);
        assert_eq!(t.ttls(), vec!["/t".to_string()]);
        let o = t.apply_txn(
            &hdr(5),
            &Txn::Error {
                err: ErrorCode::NoNode,
            },
        );
        assert_eq!(o.result.err, ErrorCode::NoNode);
        let o = t.apply_txn(
            &hdr(6),
            &Txn::Delete(DeleteTxn {
                path: "/nope".into(),
            }),
        );
        assert_eq!(o.result.err, ErrorCode::NoNode);
        assert_eq!(t.last_processed_zxid(), 6);
        let o = t.apply_txn(&hdr(3), &Txn::CreateSession { timeout: 30000 });
        assert_eq!(o.result.err, ErrorCode::Ok);
        assert_eq!(t.last_processed_zxid(), 6);
    }

    /// A failed multi applies nothing and reports 0 / error / -2; a good multi applies every op with one
    /// zxid.
    #[test]
    fn multi_all_or_nothing() {
        let mut t = DataTree::new(false);
        let bad = Txn::Multi(vec![
            create("/m", false, 1),
            Txn::Error {
                err: ErrorCode::NoNode,
            },
            Txn::Error {
                err: ErrorCode::RuntimeInconsistency,
            },
        ]);
        let o = t.apply_txn(&hdr(10), &bad);
        assert_eq!(o.result.err, ErrorCode::NoNode);
        let errs: Vec<_> = o.result.multi.iter().map(|r| (r.op, r.err)).collect();
        assert_eq!(
            errs,
            vec![
                (OpCode::Error, ErrorCode::Ok),
                (OpCode::Error, ErrorCode::NoNode),
                (OpCode::Error, ErrorCode::RuntimeInconsistency)
            ]
        );
        assert!(t.stat("/m").is_none());
        assert!(o.triggers.is_empty());
        let good = Txn::Multi(vec![
            create("/m", false, 1),
            create("/m/c", false, 1),
            Txn::CheckVersion(CheckVersionTxn {
                path: "/m".into(),
                version: 1,
            }),
            Txn::Delete(DeleteTxn {
                path: "/m/c".into(),
            }),
        ]);
        let o = t.apply_txn(&hdr(11), &good);
        assert_eq!(o.result.err, ErrorCode::Ok);
        assert_eq!(o.triggers.len(), 3);
        assert_eq!(
            t.stat("/m").map(|s| (s.czxid, s.pzxid, s.cversion)),
            Some((11, 11, 2))
        );
    }

    /// Replay over a fuzzy snapshot: a create of an existing node is NODEEXISTS but still raises the
    /// parent's cversion and pzxid; closeSession removes listed and unlisted ephemerals.
    #[test]
    fn replay_tolerance_and_close_session() {
        let mut t = DataTree::new(false);
        let _ = t.apply_txn(&hdr(1), &create("/a", true, 1));
        let o = t.apply_txn(&hdr(9), &create("/a", true, 5));
        assert_eq!(o.result.err, ErrorCode::NodeExists);
        assert_eq!(
            t.node("/").map(|n| (n.stat.cversion, n.stat.pzxid)),
            Some((5, 9))
        );
        let _ = t.apply_txn(&hdr(10), &create("/b", true, 6));
        let mut h = hdr(11);
        h.ty = OpCode::CloseSession.code();
        let o = t.apply_txn(
            &h,
            &Txn::CloseSession {
                paths2delete: Some(vec!["/a".into()]),
            },
        );
        assert_eq!(o.result.err, ErrorCode::Ok);
        assert_eq!(o.triggers.len(), 2);
        assert!(t.stat("/a").is_none() && t.stat("/b").is_none());
        assert_eq!(t.validate(), Ok(()));
    }
}
