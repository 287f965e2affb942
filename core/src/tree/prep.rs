//! Request preparation: ZooKeeper's `PrepRequestProcessor` as a pure function. A client write (plus its
//! session, auth ids, the zxid and leader time it will get) is validated against the tree **and the
//! outstanding changes of earlier, not yet applied requests** ([`PendingChanges`], Java's
//! `outstandingChanges`/`outstandingChangesForPath`), and becomes the txn to log: the real txn, an
//! `ErrorTxn` carrying the first failed check (failed writes still consume a zxid), or for a multi a
//! `MultiTxn` whose failing op and later ops are error sub-txns.
//!
//! Check order and error codes follow `pRequest2Txn`/`pRequest2TxnCreate` step by step (cited inline).
//! Not modelled: quotas (`zookeeper.enforceQuota`, off by default) and the tree digest. A reconfig is
//! prepared only with a [`ReconfigContext`] (an ensemble leader's view of its configurations). Session validity is delegated through [`SessionCheck`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::acl::{check_acl, fixup_acl, AuthConfig};
use crate::ids::SessionId;
use crate::proto::enums::CreateMode;
use crate::proto::txn::{
    CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, DeleteTxn, SetAclTxn, SetDataTxn,
};
use crate::proto::{perms, Acl, ErrorCode, Id, OpCode, StatPersisted, Txn, TxnHeader};

use super::{
    create_stat, DataTree, EphemeralType, CONFIG_NODE, CONTAINER_OWNER, QUOTA_NODE, ZOOKEEPER_NODE,
};

/// A decoded client write, as prep needs it (the server maps its request records onto this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteRequest {
    /// create (1), create2 (15), createContainer (19), createTTL (21): `op` says which.
    Create {
        /// Which create opcode the client used (decides the txn type and the reply shape).
        op: OpCode,
        /// Requested path (before any sequence suffix).
        path: String,
        /// Data; `None` is the null buffer (stored as null, read back as null).
        data: Option<Vec<u8>>,
        /// Requested ACL (before fix-up).
        acl: Vec<Acl>,
        /// CreateMode flags.
        flags: i32,
        /// TTL for createTTL; -1 for the others.
        ttl: i64,
    },
    /// delete (2).
    Delete {
        /// Path.
        path: String,
        /// Expected version, -1 for any.
        version: i32,
    },
    /// deleteContainer (20), internal (container manager).
    DeleteContainer {
        /// Path.
        path: String,
    },
    /// setData (5).
    SetData {
        /// Path.
        path: String,
        /// New data; `None` is the null buffer.
        data: Option<Vec<u8>>,
        /// Expected version, -1 for any.
        version: i32,
    },
    /// setACL (7).
    SetAcl {
        /// Path.
        path: String,
        /// New ACL (before fix-up).
        acl: Vec<Acl>,
        /// Expected aversion, -1 for any.
        version: i32,
    },
    /// check (13), only inside multi.
    Check {
        /// Path.
        path: String,
        /// Expected version, -1 for any.
        version: i32,
    },
    /// multi (14): creates, deletes, setData and checks.
    Multi(Vec<WriteRequest>),
    /// createSession (-10), from the connect handshake.
    CreateSession {
        /// Negotiated timeout.
        timeout_ms: i32,
    },
    /// closeSession (-11), from the client or from expiry.
    CloseSession,
    /// reconfig (16): the `ReconfigRequest` fields; prepared only on an ensemble leader (see
    /// [`ReconfigContext`]), refused elsewhere.
    Reconfig {
        /// Incremental: `server.N=spec` entries to add, comma-separated.
        joining: Option<String>,
        /// Incremental: sids to remove, comma-separated.
        leaving: Option<String>,
        /// Non-incremental: the whole new membership.
        new_members: Option<String>,
        /// `-v`: the configuration version the client expects, -1 for any.
        from_version: i64,
    },
    /// A request ZooKeeper's prep cannot process although it decoded (e.g. a multi create op whose
    /// flags select createTTL but whose record has no TTL): an error txn with MARSHALLINGERROR that
    /// still consumes a zxid, answered with that error in the reply header. Inside a multi, it fails
    /// the whole multi that way when prep reaches it (not when an earlier op already failed).
    Malformed,
}

impl WriteRequest {
    fn path(&self) -> Option<&str> {
        match self {
            WriteRequest::Create { path, .. }
            | WriteRequest::Delete { path, .. }
            | WriteRequest::DeleteContainer { path }
            | WriteRequest::SetData { path, .. }
            | WriteRequest::SetAcl { path, .. }
            | WriteRequest::Check { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// Session validation, as `SessionTracker.checkSession`/`checkGlobalSession`/`setSessionClosing` (the
/// owner is the implementor's business).
pub trait SessionCheck {
    /// UNKNOWNSESSION / SESSIONEXPIRED / SESSIONMOVED, or Ok.
    fn check_session(&mut self, session: SessionId) -> Result<(), ErrorCode>;
    /// As `check_session`, for ops that need a global session (ephemeral creates).
    fn check_global_session(&mut self, session: SessionId) -> Result<(), ErrorCode>;
    /// Marks a session closing (its closeSession was prepared).
    fn set_closing(&mut self, session: SessionId);
}

/// Accepts every session (tests, replay tools).
#[derive(Debug, Default, Clone, Copy)]
pub struct AnySession;

impl SessionCheck for AnySession {
    fn check_session(&mut self, _: SessionId) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn check_global_session(&mut self, _: SessionId) -> Result<(), ErrorCode> {
        Ok(())
    }
    fn set_closing(&mut self, _: SessionId) {}
}

/// [`SessionCheck`] over a [`crate::session::SessionTracker`] for requests arriving through `owner`.
#[derive(Debug)]
pub struct TrackerCheck<'a> {
    /// The tracker.
    pub tracker: &'a mut crate::session::SessionTracker,
    /// The connection/learner the request came through.
    pub owner: u64,
}

impl SessionCheck for TrackerCheck<'_> {
    fn check_session(&mut self, session: SessionId) -> Result<(), ErrorCode> {
        self.tracker.check_session(session, self.owner)
    }
    fn check_global_session(&mut self, session: SessionId) -> Result<(), ErrorCode> {
        self.tracker.check_global_session(session, self.owner)
    }
    fn set_closing(&mut self, session: SessionId) {
        self.tracker.set_closing(session);
    }
}

/// Prep settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepConfig {
    /// `zookeeper.extendedTypesEnabled` (TTL nodes).
    pub extended_types: bool,
    /// ACL settings (skipACL, superDigest, extra providers).
    pub auth: AuthConfig,
    /// `zookeeper.closeSessionTxn.enabled` (default true): closeSession txns list the ephemerals.
    pub close_session_txn: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// What a leader knows about its configurations; `None` outside an ensemble leader (a standalone
    /// server answers UNIMPLEMENTED, as `LeaderZooKeeperServer`'s cast fails in Java).
    pub reconfig: Option<Arc<ReconfigContext>>,
}

/// A leader's configurations and synced learners, as `PrepRequestProcessor` reads them from
/// `LeaderZooKeeperServer.self` and `Leader.isQuorumSynced`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconfigContext {
    /// The committed configuration's version.
    pub committed_version: i64,
    /// The last seen configuration (the committed one when no reconfig is in flight).
    pub last_seen: outpost_conf::QuorumConfig,
    /// This server and the followers (voting or not) synced with it: `isQuorumSynced`'s candidates.
    pub synced: BTreeSet<u64>,
    /// `standaloneEnabled` (default true): a new configuration then needs two voters.
    pub standalone_enabled: bool,
}

impl Default for PrepConfig {
    fn default() -> Self {
        PrepConfig {
            extended_types: false,
            auth: AuthConfig::default(),
            close_session_txn: true,
            reconfig_enabled: false,
            reconfig: None,
        }
    }
}

/// Who sends the request and what the leader assigned to it.
#[derive(Clone, Copy, Debug)]
pub struct RequestMeta<'a> {
    /// The session (`TxnHeader.clientId`).
    pub session: SessionId,
    /// The client xid (`TxnHeader.cxid`).
    pub cxid: i32,
    /// The zxid this request gets (failed writes consume one too).
    pub zxid: i64,
    /// Leader wall-clock ms (`TxnHeader.time`).
    pub time_ms: i64,
    /// The connection's auth ids (`request.authInfo`).
    pub auth_ids: &'a [Id],
}

/// The txn to propose for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Prepared {
    /// Header; `ty` is the txn's type (`Error` for a failed non-multi write).
    pub header: TxnHeader,
    /// Body.
    pub txn: Txn,
    /// The check that failed (`request.getException()`); for a multi, its first failing op's error
    /// (the multi reply itself still says 0).
    pub error: Option<ErrorCode>,
}

/// An outstanding change (`ZooKeeperServer.ChangeRecord`): the state a path will have once the earlier
/// prepared txns are applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    /// zxid of the txn that produces this state (-1 for a record read from the tree).
    pub zxid: i64,
    /// Path.
    pub path: String,
    /// Stat after the change; `None` when the change deletes the node.
    pub stat: Option<StatPersisted>,
    /// Child count after the change.
    pub child_count: i32,
    /// ACL after the change.
    pub acl: Arc<[Acl]>,
}

/// The outstanding-changes overlay (`outstandingChanges` queue + `outstandingChangesForPath` map).
#[derive(Clone, Debug, Default)]
pub struct PendingChanges {
    /// In prepare order; each record has a sequence number standing in for Java's object identity.
    queue: VecDeque<(u64, ChangeRecord)>,
    by_path: HashMap<String, (u64, ChangeRecord)>,
    next_seq: u64,
}

impl PendingChanges {
    /// An empty overlay.
    pub fn new() -> PendingChanges {
        PendingChanges::default()
    }

    /// Number of outstanding records.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Drops everything (leader change: the pipeline is gone).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.by_path.clear();
    }

    /// `addChangeRecord`.
    pub fn add(&mut self, rec: ChangeRecord) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_path.insert(rec.path.clone(), (seq, rec.clone()));
        self.queue.push_back((seq, rec));
    }

    /// `FinalRequestProcessor`'s release after applying the txn with `zxid`: records with zxid ≤ `zxid`
    /// leave the queue, and leave the path map only if they are still the latest record for their path.
    pub fn release_through(&mut self, zxid: i64) {
        while let Some((seq, rec)) = self.queue.front() {
            if rec.zxid > zxid {
                break;
            }
            if self.by_path.get(&rec.path).is_some_and(|(s, _)| s == seq) {
                self.by_path.remove(&rec.path);
            }
            self.queue.pop_front();
        }
    }

    /// The latest outstanding record for `path`, if any.
    pub fn get(&self, path: &str) -> Option<&ChangeRecord> {
        self.by_path.get(path).map(|(_, r)| r)
    }

    /// `getRecordForPath`: the outstanding record, else the tree's node; NONODE when neither exists or the
    /// latest change deletes it.
    pub fn record_for(&self, tree: &DataTree, path: &str) -> Result<ChangeRecord, ErrorCode> {
        if let Some((_, r)) = self.by_path.get(path) {
            return if r.stat.is_some() {
                Ok(r.clone())
            } else {
                Err(ErrorCode::NoNode)
            };
        }
        let n = tree.node(path).ok_or(ErrorCode::NoNode)?;
        Ok(ChangeRecord {
            zxid: -1,
            path: path.to_owned(),
            stat: Some(n.stat),
            child_count: n.num_children as i32,
            acl: tree.acl_of_node(n),
        })
    }

    /// `getPendingChanges(multiRequest)`: the current records of the ops' paths and their parents.
    fn save_for_multi(&self, ops: &[WriteRequest]) -> HashMap<String, (u64, ChangeRecord)> {
        let mut saved = HashMap::new();
        for op in ops {
            let Some(path) = op.path() else { continue };
            if let Some(r) = self.by_path.get(path) {
                saved.insert(path.to_owned(), r.clone());
            }
            let Some(slash) = path.rfind('/') else {
                continue;
            };
            if path.contains('\0') {
                continue;
            }
            let parent = &path[..slash];
            if let Some(r) = self.by_path.get(parent) {
                saved.insert(parent.to_owned(), r.clone());
            }
        }
        saved
    }

    /// `rollbackPendingChanges`: removes this multi's records and restores the saved ones that are still
    /// in the queue's range.
    fn rollback(&mut self, zxid: i64, saved: &HashMap<String, (u64, ChangeRecord)>) {
        while let Some((_, rec)) = self.queue.back() {
            if rec.zxid != zxid {
                break;
            }
            self.by_path.remove(&rec.path);
            self.queue.pop_back();
        }
        let Some((_, first)) = self.queue.front() else {
            return;
        };
        let first_zxid = first.zxid;
        for (path, (seq, rec)) in saved {
            if rec.zxid < first_zxid {
                continue;
            }
            self.by_path.insert(path.clone(), (*seq, rec.clone()));
        }
    }

    /// Paths a closeSession must delete: the tree's ephemerals of the session, adjusted by the outstanding
    /// changes in order (deleted → removed, created with this owner → added).
    fn ephemerals_for_close(&self, tree: &DataTree, session: SessionId) -> BTreeSet<String> {
        let mut es: BTreeSet<String> = tree.ephemerals(session).into_iter().collect();
        for (_, c) in &self.queue {
            match &c.stat {
                None => {
                    es.remove(&c.path);
                }
                Some(s) if s.ephemeral_owner == session.0 => {
                    es.insert(c.path.clone());
                }
                Some(_) => {}
            }
        }
        es
    }
}

/// `getParentPathAndValidate`: BADARGUMENTS for no `/`, a NUL, or a built-in path.
fn parent_of_deletable(path: &str) -> Result<&str, ErrorCode> {
    let slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
    if path.contains('\0') || matches!(path, "/" | ZOOKEEPER_NODE | QUOTA_NODE | CONFIG_NODE) {
        return Err(ErrorCode::BadArguments);
    }
    Ok(&path[..slash])
}

/// `PrepRequestProcessor.validatePath`.
fn validate_path(path: &str) -> Result<(), ErrorCode> {
    crate::path::validate(path).map_err(|_| ErrorCode::BadArguments)
}

/// `checkAndIncVersion`.
fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

struct Ctx<'a, 'b> {
    tree: &'a DataTree,
    pending: &'a mut PendingChanges,
    sessions: &'a mut dyn SessionCheck,
    config: &'a PrepConfig,
    meta: &'a RequestMeta<'b>,
}

impl Ctx<'_, '_> {
    fn check_acl(&self, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        check_acl(acl, perm, self.meta.auth_ids, &self.config.auth)
    }

    fn record(&self, path: &str) -> Result<ChangeRecord, ErrorCode> {
        self.pending.record_for(self.tree, path)
    }

    /// One op of `pRequest2Txn` (also used for multi sub-ops, which share the header's zxid and time).
    fn op(&mut self, req: &WriteRequest) -> Result<Txn, ErrorCode> {
        let zxid = self.meta.zxid;
        let session = self.meta.session;
        match req {
            WriteRequest::Create {
                op,
                path,
                data,
                acl,
                flags,
                ttl,
            } => self.create(*op, path, data.as_deref(), acl, *flags, *ttl),
            WriteRequest::DeleteContainer { path } => {
                // pRequest2Txn case deleteContainer: no session or ACL check.
                let parent_path = parent_of_deletable(path)?;
                let node = self.record(path)?;
                if node.child_count > 0 {
                    return Err(ErrorCode::NotEmpty);
                }
                let owner = node.stat.map_or(0, |s| s.ephemeral_owner);
                if matches!(
                    EphemeralType::of(owner, self.config.extended_types),
                    EphemeralType::Normal(_)
                ) {
                    return Err(ErrorCode::BadVersion);
                }
                let parent = self.record(parent_path)?;
                self.add_delete_records(parent, path, zxid);
                Ok(Txn::DeleteContainer(DeleteTxn { path: path.clone() }))
            }
            WriteRequest::Delete { path, version } => {
                self.sessions.check_session(session)?;
                let parent_path = parent_of_deletable(path)?;
                let parent = self.record(parent_path)?;
                self.check_acl(&parent.acl, perms::DELETE)?;
                let node = self.record(path)?;
                check_and_inc_version(node.stat.map_or(0, |s| s.version), *version)?;
                if node.child_count > 0 {
                    return Err(ErrorCode::NotEmpty);
                }
                self.add_delete_records(parent, path, zxid);
                Ok(Txn::Delete(DeleteTxn { path: path.clone() }))
            }
            WriteRequest::SetData {
                path,
                data,
                version,
            } => {
                self.sessions.check_session(session)?;
                validate_path(path)?;
                let mut node = self.record(path)?;
                self.check_acl(&node.acl, perms::WRITE)?;
                let mut stat = node.stat.expect("record_for returns live nodes");
                let new_version = check_and_inc_version(stat.version, *version)?;
                stat.version = new_version;
                stat.mtime = self.meta.time_ms;
                stat.mzxid = zxid;
                node.stat = Some(stat);
                node.zxid = zxid;
                self.pending.add(node);
                Ok(Txn::SetData(SetDataTxn {
                    path: path.clone(),
                    data: data.clone(),
                    version: new_version,
                }))
            }
            WriteRequest::SetAcl { path, acl, version } => {
                self.sessions.check_session(session)?;
                validate_path(path)?;
                let list = fixup_acl(acl, self.meta.auth_ids, &self.config.auth)?;
                let mut node = self.record(path)?;
                self.check_acl(&node.acl, perms::ADMIN)?;
                let mut stat = node.stat.expect("record_for returns live nodes");
                let new_version = check_and_inc_version(stat.aversion, *version)?;
                stat.aversion = new_version;
                node.stat = Some(stat);
                node.zxid = zxid;
                // Java's duplicate() keeps the old ACL in the record; later pipelined requests should be
                // checked against the new one, so we record it.
                node.acl = list.clone().into();
                self.pending.add(node);
                Ok(Txn::SetAcl(SetAclTxn {
                    path: path.clone(),
                    acl: list,
                    version: new_version,
                }))
            }
            WriteRequest::Check { path, version } => {
                self.sessions.check_session(session)?;
                validate_path(path)?;
                let node = self.record(path)?;
                self.check_acl(&node.acl, perms::READ)?;
                let v = check_and_inc_version(node.stat.map_or(0, |s| s.version), *version)?;
                Ok(Txn::CheckVersion(CheckVersionTxn {
                    path: path.clone(),
                    version: v,
                }))
            }
            WriteRequest::CreateSession { timeout_ms } => Ok(Txn::CreateSession {
                timeout: *timeout_ms,
            }),
            WriteRequest::CloseSession => {
                // No session check: the expirer issues closeSession without owning the session.
                let es = self.pending.ephemerals_for_close(self.tree, session);
                for p in &es {
                    // Java (digest enabled) records the parent with the new pzxid but leaves its child
                    // count alone, so a delete of the parent pipelined behind the closeSession fails with
                    // NOTEMPTY although the child will be gone; we also count the child out, so pipelined
                    // and one-at-a-time preparation agree.
                    let parent = crate::path::parent(p).and_then(|pp| self.record(pp).ok());
                    if let Some(parent) = parent {
                        self.add_delete_records(parent, p, zxid);
                    } else {
                        self.pending.add(ChangeRecord {
                            zxid,
                            path: p.clone(),
                            stat: None,
                            child_count: 0,
                            acl: Arc::from(Vec::new().into_boxed_slice()),
                        });
                    }
                }
                self.sessions.set_closing(session);
                Ok(Txn::CloseSession {
                    paths2delete: self
                        .config
                        .close_session_txn
                        .then(|| es.into_iter().collect()),
                })
            }
            WriteRequest::Reconfig {
                joining,
                leaving,
                new_members,
                from_version,
            } => self.reconfig(
                joining.as_deref(),
                leaving.as_deref(),
                new_members.as_deref(),
                *from_version,
            ),
            WriteRequest::Multi(_) | WriteRequest::Malformed => Err(ErrorCode::MarshallingError),
        }
    }

    /// `pRequest2Txn`, `case OpCode.reconfig`, check by check.
    fn reconfig(
        &mut self,
        joining: Option<&str>,
        leaving: Option<&str>,
        new_members: Option<&str>,
        from_version: i64,
    ) -> Result<Txn, ErrorCode> {
        use outpost_conf::reconfig::{next_config, ReconfigError, ReconfigOps};
        let zxid = self.meta.zxid;
        if !self.config.reconfig_enabled {
            return Err(ErrorCode::ReconfigDisabled);
        }
        self.sessions.check_session(self.meta.session)?;
        // Standalone: the cast to LeaderZooKeeperServer fails.
        let ctx = self
            .config
            .reconfig
            .clone()
            .ok_or(ErrorCode::Unimplemented)?;
        let last_seen_version = ctx.last_seen.version as i64;
        if last_seen_version != ctx.committed_version {
            return Err(ErrorCode::ReconfigInProgress);
        }
        if from_version != -1 && from_version != last_seen_version {
            return Err(ErrorCode::BadVersion);
        }
        let ops = ReconfigOps {
            joining,
            leaving,
            new_members,
        };
        let next =
            next_config(&ctx.last_seen, ops, ctx.standalone_enabled, zxid as u64).map_err(|e| {
                tracing::warn!("reconfig refused: {e}");
                match e {
                    ReconfigError::BadArguments(_) => ErrorCode::BadArguments,
                    ReconfigError::Marshalling(_) => ErrorCode::MarshallingError,
                }
            })?;
        // Leader.isQuorumSynced: this server and the synced followers that vote in the new configuration
        // must form one of its quorums.
        let voters = next.voters();
        let synced: BTreeSet<u64> = ctx.synced.intersection(&voters).copied().collect();
        if !next.quorum.is_quorum(&synced) {
            tracing::warn!(
                "Reconfig failed - there must be a connected and synced quorum in new configuration"
            );
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        // Only who may write /zookeeper/config may reconfigure: its ACL is world:anyone READ, so the
        // super user (superDigest) or skipACL.
        let mut rec = self.record(CONFIG_NODE)?;
        self.check_acl(&rec.acl, perms::WRITE)?;
        let data = next.render().into_bytes();
        rec.zxid = zxid;
        if let Some(stat) = rec.stat.as_mut() {
            stat.version = -1;
            stat.mtime = self.meta.time_ms;
            stat.mzxid = zxid;
        }
        self.pending.add(rec);
        Ok(Txn::Reconfig(SetDataTxn {
            path: CONFIG_NODE.to_owned(),
            data: Some(data),
            version: -1,
        }))
    }

    fn add_delete_records(&mut self, mut parent: ChangeRecord, path: &str, zxid: i64) {
        parent.zxid = zxid;
        parent.child_count -= 1;
        if let Some(s) = parent.stat.as_mut() {
            s.pzxid = zxid;
        }
        self.pending.add(parent);
        self.pending.add(ChangeRecord {
            zxid,
            path: path.to_owned(),
            stat: None,
            child_count: -1,
            acl: Arc::from(Vec::new().into_boxed_slice()),
        });
    }

    /// `pRequest2TxnCreate`.
    fn create(
        &mut self,
        op: OpCode,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        flags: i32,
        ttl: i64,
    ) -> Result<Txn, ErrorCode> {
        let zxid = self.meta.zxid;
        let session = self.meta.session;
        // 1. CreateMode.fromFlag.
        let mode = CreateMode::from_flag(flags).ok_or(ErrorCode::BadArguments)?;
        // 2. validateCreateRequest: TTL needs extended types; TTL range; session (global for ephemerals).
        if mode.is_ttl() && !self.config.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            if EphemeralType::ttl_owner(ttl).is_none() {
                return Err(ErrorCode::BadArguments);
            }
        } else if ttl >= 0 {
            return Err(ErrorCode::BadArguments);
        }
        if mode.is_ephemeral() {
            self.sessions.check_global_session(session)?;
        } else {
            self.sessions.check_session(session)?;
        }
        // 3. validatePathForCreate.
        let slash = path.rfind('/').ok_or(ErrorCode::BadArguments)?;
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = &path[..slash];
        // 4. fixupACL.
        let list = fixup_acl(acl, self.meta.auth_ids, &self.config.auth)?;
        // 5. The parent, including outstanding changes.
        let parent = self.record(parent_path)?;
        // 6. CREATE on the parent.
        self.check_acl(&parent.acl, perms::CREATE)?;
        let parent_stat = parent.stat.expect("record_for returns live nodes");
        // 7. Sequence suffix from the parent's persisted cversion.
        let final_path = if mode.is_sequential() {
            format!(
                "{path}{}",
                crate::path::sequence_suffix(parent_stat.cversion)
            )
        } else {
            path.to_owned()
        };
        // 8. Full path validation.
        validate_path(&final_path)?;
        // 9. Existing node.
        if self.record(&final_path).is_ok() {
            return Err(ErrorCode::NodeExists);
        }
        // 10. Ephemeral parent.
        if matches!(
            EphemeralType::of(parent_stat.ephemeral_owner, self.config.extended_types),
            EphemeralType::Normal(_)
        ) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let new_cversion = parent_stat.cversion.wrapping_add(1);
        // 11. The txn, by request type.
        let txn = match op {
            OpCode::CreateContainer => Txn::CreateContainer(CreateContainerTxn {
                path: final_path.clone(),
                data: data.map(<[u8]>::to_vec),
                acl: list.clone(),
                parent_cversion: new_cversion,
            }),
            OpCode::CreateTtl => Txn::CreateTtl(CreateTtlTxn {
                path: final_path.clone(),
                data: data.map(<[u8]>::to_vec),
                acl: list.clone(),
                parent_cversion: new_cversion,
                ttl,
            }),
            _ => {
                let t = CreateTxn {
                    path: final_path.clone(),
                    data: data.map(<[u8]>::to_vec),
                    acl: list.clone(),
                    ephemeral: mode.is_ephemeral(),
                    parent_cversion: new_cversion,
                };
                if op == OpCode::Create {
                    Txn::Create(t)
                } else {
                    Txn::Create2(t)
                }
            }
        };
        // 12. Change records: parent (one more child, cversion+1, pzxid) and the new node.
        let owner = if mode.is_container() {
            CONTAINER_OWNER
        } else if mode.is_ttl() {
            EphemeralType::ttl_owner(ttl).unwrap_or(0)
        } else if mode.is_ephemeral() {
            session.0
        } else {
            0
        };
        let mut parent = parent;
        parent.zxid = zxid;
        parent.child_count += 1;
        parent.stat = Some(StatPersisted {
            cversion: new_cversion,
            pzxid: zxid,
            ..parent_stat
        });
        self.pending.add(parent);
        self.pending.add(ChangeRecord {
            zxid,
            path: final_path,
            stat: Some(create_stat(zxid, self.meta.time_ms, owner)),
            child_count: 0,
            acl: list.into(),
        });
        Ok(txn)
    }
}

/// `PrepRequestProcessor.pRequest2Txn` for one client write: the txn to propose (never fails: a failed
/// check yields an `ErrorTxn`, a failed multi a multi with error sub-txns). The overlay gains the records
/// of a successful request; call [`PendingChanges::release_through`] after applying each txn.
pub fn prepare(
    tree: &DataTree,
    pending: &mut PendingChanges,
    sessions: &mut dyn SessionCheck,
    config: &PrepConfig,
    meta: &RequestMeta<'_>,
    req: &WriteRequest,
) -> Prepared {
    let mut ctx = Ctx {
        tree,
        pending,
        sessions,
        config,
        meta,
    };
    let header = |txn: &Txn| TxnHeader {
        client_id: meta.session.0,
        cxid: meta.cxid,
        zxid: meta.zxid,
        time: meta.time_ms,
        ty: txn.type_code(),
    };
    match req {
        WriteRequest::Multi(ops) => {
            let saved = ctx.pending.save_for_multi(ops);
            let mut failed: Option<ErrorCode> = None;
            let mut txns = Vec::with_capacity(ops.len());
            for op in ops {
                if failed.is_some() {
                    txns.push(Txn::Error {
                        err: ErrorCode::RuntimeInconsistency,
                    });
                    continue;
                }
                let r = match op {
                    WriteRequest::Create { .. }
                    | WriteRequest::Delete { .. }
                    | WriteRequest::SetData { .. }
                    | WriteRequest::Check { .. } => ctx.op(op),
                    // Java's prep throws a non-Keeper exception on this op (only if it gets this far:
                    // after a failed op the rest are not prepped), which fails the whole multi as one
                    // MARSHALLINGERROR error txn.
                    WriteRequest::Malformed => {
                        ctx.pending.rollback(meta.zxid, &saved);
                        let txn = Txn::Error {
                            err: ErrorCode::MarshallingError,
                        };
                        return Prepared {
                            header: header(&txn),
                            txn,
                            error: Some(ErrorCode::MarshallingError),
                        };
                    }
                    // MultiOperationRecord cannot carry other types; treat as undecodable.
                    _ => Err(ErrorCode::MarshallingError),
                };
                match r {
                    Ok(t) => txns.push(t),
                    Err(e) => {
                        failed = Some(e);
                        txns.push(Txn::Error { err: e });
                        ctx.pending.rollback(meta.zxid, &saved);
                    }
                }
            }
            let txn = Txn::Multi(txns);
            Prepared {
                header: header(&txn),
                txn,
                error: failed,
            }
        }
        _ => match ctx.op(req) {
            Ok(txn) => Prepared {
                header: header(&txn),
                txn,
                error: None,
            },
            Err(err) => {
                let txn = Txn::Error { err };
                Prepared {
                    header: header(&txn),
                    txn,
                    error: Some(err),
                }
            }
        },
    }
}

#[cfg(test)]
mod tests;
