//! The data tree: znodes with data, interned ACLs and persisted stats, ZooKeeper's `DataTree`/`DataNode`
//! semantics (built-in `/zookeeper` nodes, `copyStat`, ephemeral/container/TTL owners, per-session
//! ephemerals), applied deterministically; plus request preparation ([`prep`]), txn application
//! ([`apply`]), the snapshot encoding ([`snapshot`]), its fuzzy streaming writer for disk snapshots
//! and SNAP syncs ([`snap_stream`]), the tree digest ([`digest`]) and quota stats ([`quota`]).
//!
//! Layout, chosen for memory (a million small znodes) and ordered iteration: one `BTreeMap` per depth,
//! keyed by full path. A node's children are exactly the keys of the next depth in the range
//! `[path + "/", path + "0")` (`'0'` is the byte after `'/'`), so `getChildren` is a sorted range scan, no
//! per-node child set is stored, and each path is stored once. The root lives outside the maps and
//! answers to both `""` and `"/"` as in Java. Nothing here fires watches or checks ACLs: mutations return
//! [`Trigger`]s and callers apply policy.
//!
//! Measured (debug build, 1M znodes of 100 bytes under one parent): about 274 bytes per znode, against
//! about 440 bytes of live heap per node for Java's `DataTree` (≈1 GB RSS with `-Xmx1000m`). Paths up to
//! 23 bytes are stored inline in the key ([`path_key`]), nodes are boxed so half-full B-tree leaves waste
//! small slots, and ACL references are `i32`.

pub mod acl_cache;
pub mod apply;
pub mod digest;
pub mod path_key;
pub mod prep;
pub mod quota;
pub mod snap_stream;
pub mod snapshot;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use crate::ids::SessionId;
use crate::proto::{Acl, ErrorCode, Stat, StatPersisted};
use crate::watch::Trigger;

pub use acl_cache::{AclCache, AclRef, OPEN_UNSAFE_ACL_REF};

/// `ZooDefs.CONFIG_NODE`.
pub const CONFIG_NODE: &str = "/zookeeper/config";
/// `Quotas.procZookeeper`.
pub const ZOOKEEPER_NODE: &str = "/zookeeper";
/// `Quotas.quotaZookeeper`.
pub const QUOTA_NODE: &str = "/zookeeper/quota";

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// `EphemeralType.TTL.maxValue()`: 0xFFFFFFFFFF ms.
pub const TTL_MAX_MS: i64 = 0xFF_FFFF_FFFF;
const EXTENDED_MASK: i64 = 0xff00_0000_0000_0000_u64 as i64;
const RESERVED_BITS_MASK: i64 = 0x00ff_ff00_0000_0000;

/// What a stored `ephemeralOwner` means (`EphemeralType.get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EphemeralType {
    /// 0: persistent.
    Void,
    /// Owned by a session.
    Normal(SessionId),
    /// `i64::MIN`.
    Container,
    /// `0xFF00… | ttl`, only with extended types enabled.
    Ttl(i64),
}

impl EphemeralType {
    /// Classifies an owner. With `extended_types` off, TTL-looking values are normal session owners, as in
    /// Java. An extended value with unknown feature bits (Java throws) is treated as a normal owner.
    pub fn of(owner: i64, extended_types: bool) -> EphemeralType {
        if extended_types
            && owner & EXTENDED_MASK == EXTENDED_MASK
            && owner & RESERVED_BITS_MASK == 0
        {
            return EphemeralType::Ttl(owner & !(EXTENDED_MASK | RESERVED_BITS_MASK));
        }
        match owner {
            CONTAINER_OWNER => EphemeralType::Container,
            0 => EphemeralType::Void,
            s => EphemeralType::Normal(SessionId(s)),
        }
    }

    /// `EphemeralType.TTL.toEphemeralOwner`: `None` unless `0 < ttl <= TTL_MAX_MS`.
    pub fn ttl_owner(ttl_ms: i64) -> Option<i64> {
        if ttl_ms <= 0 || ttl_ms > TTL_MAX_MS {
            return None;
        }
        Some(EXTENDED_MASK | ttl_ms)
    }
}

/// One znode. The path is the map key; children are found by range (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Data; `None` is Java's null buffer (sent as length -1).
    pub data: Option<Box<[u8]>>,
    /// ACL reference into the tree's [`AclCache`].
    pub acl: AclRef,
    /// Persisted stat.
    pub stat: StatPersisted,
    /// Number of children (kept so `Stat` is O(1)).
    pub num_children: u32,
}

impl Node {
    fn new(data: Option<Box<[u8]>>, acl: AclRef, stat: StatPersisted) -> Node {
        Node {
            data,
            acl,
            stat,
            num_children: 0,
        }
    }

    fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.len())
    }

    /// `DataNode.copyStat`: visible cversion = 2 × persisted − children, ephemeralOwner 0 unless a normal
    /// ephemeral.
    pub fn stat(&self, extended_types: bool) -> Stat {
        let s = &self.stat;
        let owner = match EphemeralType::of(s.ephemeral_owner, extended_types) {
            EphemeralType::Normal(id) => id.0,
            _ => 0,
        };
        let n = self.num_children as i32;
        Stat {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion.wrapping_mul(2).wrapping_sub(n),
            aversion: s.aversion,
            ephemeral_owner: owner,
            data_length: self.data_len() as i32,
            num_children: n,
            pzxid: s.pzxid,
        }
    }
}

/// `DataTree.createStat`.
pub fn create_stat(zxid: i64, time: i64, ephemeral_owner: i64) -> StatPersisted {
    StatPersisted {
        czxid: zxid,
        mzxid: zxid,
        ctime: time,
        mtime: time,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner,
        pzxid: zxid,
    }
}

/// Number of `/` in a path: its map level (the root is handled separately).
fn depth(path: &str) -> usize {
    path.bytes().filter(|&b| b == b'/').count()
}

fn is_root(path: &str) -> bool {
    path.is_empty() || path == "/"
}

/// Bounds of the children of `path` at the next level.
fn child_bounds(path: &str) -> (String, String) {
    if is_root(path) {
        ("/".to_owned(), "0".to_owned())
    } else {
        (format!("{path}/"), format!("{path}0"))
    }
}

/// The ZooKeeper data tree.
#[derive(Clone, Debug)]
pub struct DataTree {
    root: Node,
    /// `levels[d]`: nodes whose path has `d` slashes (`levels[0]` stays empty).
    /// Values are boxed: a half-full B-tree leaf then wastes 24-byte slots rather than 96-byte ones.
    levels: Vec<BTreeMap<path_key::PathKey, Box<Node>>>,
    /// Non-root nodes.
    len: usize,
    acls: AclCache,
    ephemerals: BTreeMap<i64, BTreeSet<Box<str>>>,
    containers: BTreeSet<Box<str>>,
    ttls: BTreeSet<Box<str>>,
    /// `approximateDataSize` (see [`DataTree::approximate_data_size`]).
    data_size: i64,
    extended_types: bool,
    last_processed_zxid: i64,
    /// Tree digest (§8.6), kept incrementally.
    digest: i64,
    /// Paths with a quota (Java's `pTrie`), see [`quota`].
    quotas: BTreeSet<Box<str>>,
}

impl DataTree {
    /// A fresh tree as `new DataTree()` builds it: `/` and `/zookeeper`, `/zookeeper/quota` with the
    /// implicit open ACL (-1), and `/zookeeper/config` with READ-only `world:anyone` set through an ACL
    /// update with version -1 (so its aversion is -1). `extended_types` is
    /// `zookeeper.extendedTypesEnabled` (TTL owners are recognised only when true).
    pub fn new(extended_types: bool) -> DataTree {
        let mut t = DataTree::empty(extended_types);
        t.root = Node::new(
            Some(Box::default()),
            OPEN_UNSAFE_ACL_REF,
            StatPersisted::default(),
        );
        t.digest = t.node_digest_of("");
        for p in [ZOOKEEPER_NODE, QUOTA_NODE, CONFIG_NODE] {
            t.insert_raw(
                p,
                Node::new(
                    Some(Box::default()),
                    OPEN_UNSAFE_ACL_REF,
                    StatPersisted::default(),
                ),
            )
            .expect("built-in parents exist");
        }
        t.set_acl(CONFIG_NODE, &Acl::read_unsafe(), -1)
            .expect("config node exists");
        t
    }

    fn empty(extended_types: bool) -> DataTree {
        DataTree {
            root: Node::new(None, OPEN_UNSAFE_ACL_REF, StatPersisted::default()),
            levels: Vec::new(),
            len: 0,
            acls: AclCache::default(),
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            // "" and "/" (root aliases) contribute 0 + 1.
            data_size: 1,
            extended_types,
            last_processed_zxid: 0,
            digest: 0,
            quotas: BTreeSet::new(),
        }
    }

    /// Whether TTL owners are recognised.
    pub fn extended_types(&self) -> bool {
        self.extended_types
    }

    /// `lastProcessedZxid`.
    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    /// Sets `lastProcessedZxid` (after a snapshot load the caller knows it from the file name).
    pub fn set_last_processed_zxid(&mut self, zxid: i64) {
        self.last_processed_zxid = zxid;
    }

    /// The node at `path` (`""` and `"/"` are the root).
    pub fn node(&self, path: &str) -> Option<&Node> {
        if is_root(path) {
            return Some(&self.root);
        }
        if !path.starts_with('/') {
            return None;
        }
        self.levels
            .get(depth(path))?
            .get(path.as_bytes())
            .map(|n| &**n)
    }

    fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        if is_root(path) {
            return Some(&mut self.root);
        }
        if !path.starts_with('/') {
            return None;
        }
        self.levels
            .get_mut(depth(path))?
            .get_mut(path.as_bytes())
            .map(|n| &mut **n)
    }

    /// The children of `path` as (full path, node), in byte order of their names.
    pub fn children_of<'a>(&'a self, path: &str) -> impl Iterator<Item = (&'a str, &'a Node)> + 'a {
        let level = if is_root(path) { 1 } else { depth(path) + 1 };
        let (lo, hi) = child_bounds(path);
        self.levels
            .get(level)
            .into_iter()
            .flat_map(move |m| {
                m.range::<[u8], _>((
                    Bound::Included(lo.as_bytes()),
                    Bound::Excluded(hi.as_bytes()),
                ))
            })
            .map(|(k, v)| (k.as_str(), &**v))
    }

    /// Inserts a node under an existing parent without any stat bookkeeping (construction, snapshot load).
    fn insert_raw(&mut self, path: &str, node: Node) -> Result<(), ErrorCode> {
        let parent = crate::path::parent(path).ok_or(ErrorCode::NoNode)?;
        let d = depth(path);
        if d == 0 || is_root(path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.node(path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        self.node_mut(parent).ok_or(ErrorCode::NoNode)?.num_children += 1;
        if self.levels.len() <= d {
            self.levels.resize_with(d + 1, BTreeMap::new);
        }
        self.data_size += (path.len() + node.data_len()) as i64;
        self.digest =
            self.digest
                .wrapping_add(digest::node_digest(path, node.data.as_deref(), &node.stat));
        self.index_owner(path, node.stat.ephemeral_owner);
        self.levels[d].insert(path_key::PathKey::new(path), Box::new(node));
        self.len += 1;
        Ok(())
    }

    fn index_owner(&mut self, path: &str, owner: i64) {
        match EphemeralType::of(owner, self.extended_types) {
            EphemeralType::Container => {
                self.containers.insert(path.into());
            }
            EphemeralType::Ttl(_) => {
                self.ttls.insert(path.into());
            }
            EphemeralType::Normal(s) => {
                self.ephemerals.entry(s.0).or_default().insert(path.into());
            }
            EphemeralType::Void => {}
        }
    }

    fn unindex_owner(&mut self, path: &str, owner: i64) {
        match EphemeralType::of(owner, self.extended_types) {
            EphemeralType::Container => {
                self.containers.remove(path);
            }
            EphemeralType::Ttl(_) => {
                self.ttls.remove(path);
            }
            EphemeralType::Normal(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s.0) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s.0);
                    }
                }
            }
            EphemeralType::Void => {}
        }
    }

    /// The ACL list of a node.
    pub fn acl_of_node(&self, node: &Node) -> Arc<[Acl]> {
        self.acl_by_ref(node.acl)
    }

    /// The ACL list behind a reference.
    pub fn acl_by_ref(&self, acl_ref: AclRef) -> Arc<[Acl]> {
        match self.acls.get(acl_ref) {
            Some(a) => Arc::clone(a),
            // Unreachable for trees built by this module (every stored reference is counted); an empty
            // list means "no restriction" to checkACL, so be conservative and deny instead.
            None => Arc::from(Vec::<Acl>::new().into_boxed_slice()),
        }
    }

    /// `DataTree.createNode`. `parent_cversion == -1` means "parent's cversion + 1"; the parent's cversion
    /// and pzxid only move forward (replay over fuzzy snapshots). On NODEEXISTS the existing node's ACL is
    /// replaced, as Java does. Returns the new node's stat and the watch trigger.
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<(Stat, Trigger), ErrorCode> {
        let parent_path = crate::path::parent(path).ok_or(ErrorCode::NoNode)?;
        if self.node(parent_path).is_none() {
            return Err(ErrorCode::NoNode);
        }
        if is_root(path) {
            return Err(ErrorCode::NodeExists);
        }
        let acl_ref = self.acls.intern(acl);
        if let Some(existing) = self.node_mut(path) {
            let old = std::mem::replace(&mut existing.acl, acl_ref);
            self.acls.remove_usage(old);
            return Err(ErrorCode::NodeExists);
        }
        let parent_digest = self.node_digest_of(parent_path);
        let parent = self.node_mut(parent_path).expect("parent checked above");
        let mut pcv = parent_cversion;
        if pcv == -1 {
            pcv = parent.stat.cversion.wrapping_add(1);
        }
        if pcv > parent.stat.cversion {
            parent.stat.cversion = pcv;
            parent.stat.pzxid = zxid;
        }
        let parent_acl_ref = parent.acl;
        self.rehash(parent_path, parent_digest);
        let node = Node::new(
            data.map(Box::from),
            acl_ref,
            create_stat(zxid, time, ephemeral_owner),
        );
        let stat = node.stat(self.extended_types);
        let data_len = node.data_len();
        self.insert_raw(path, node)?;
        self.quota_after_create(path, data_len);
        let acl = self.acls.get(acl_ref).cloned().expect("interned above");
        let parent_acl = self.acl_by_ref(parent_acl_ref);
        Ok((
            stat,
            Trigger::Created {
                path: path.to_owned(),
                acl,
                parent_acl,
            },
        ))
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves to `zxid` if larger even when the child is already
    /// gone (fuzzy snapshot replay); the parent's persisted cversion is unchanged.
    pub fn delete_node(&mut self, path: &str, zxid: i64) -> Result<Trigger, ErrorCode> {
        let parent_path = crate::path::parent(path).ok_or(ErrorCode::NoNode)?;
        if is_root(path) {
            return Err(ErrorCode::NoNode);
        }
        // Java would orphan the subtree of a node deleted with children; prep never asks for that, and
        // refusing keeps the level maps consistent.
        if self.node(path).is_some_and(|n| n.num_children > 0) {
            return Err(ErrorCode::NotEmpty);
        }
        let parent_digest = self.node_digest_of(parent_path);
        let parent = self.node_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
        }
        let parent_acl_ref = parent.acl;
        self.rehash(parent_path, parent_digest);
        let d = depth(path);
        let node = self
            .levels
            .get_mut(d)
            .and_then(|m| m.remove(path.as_bytes()))
            .ok_or(ErrorCode::NoNode)?;
        self.len -= 1;
        self.digest =
            self.digest
                .wrapping_sub(digest::node_digest(path, node.data.as_deref(), &node.stat));
        let parent = self.node_mut(parent_path).expect("parent exists");
        parent.num_children -= 1;
        let acl = self.acl_of_node(&node);
        self.acls.remove_usage(node.acl);
        self.data_size -= (path.len() + node.data_len()) as i64;
        self.unindex_owner(path, node.stat.ephemeral_owner);
        self.quota_after_delete(path, node.data_len());
        let parent_acl = self.acl_by_ref(parent_acl_ref);
        Ok(Trigger::Deleted {
            path: path.to_owned(),
            acl,
            parent_acl,
        })
    }

    /// `DataTree.setData`: data, mtime, mzxid and version replaced (the txn carries the new version).
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<(Stat, Trigger), ErrorCode> {
        let ext = self.extended_types;
        let before = self.node_digest_of(path);
        let node = self.node_mut(path).ok_or(ErrorCode::NoNode)?;
        let old_len = node.data_len() as i64;
        node.data = data.map(Box::from);
        node.stat.mtime = time;
        node.stat.mzxid = zxid;
        node.stat.version = version;
        let stat = node.stat(ext);
        let new_len = node.data_len() as i64;
        let acl_ref = node.acl;
        self.data_size += new_len - old_len;
        self.rehash(path, before);
        self.quota_after_set_data(path, old_len as usize, new_len as usize);
        let acl = self.acl_by_ref(acl_ref);
        Ok((
            stat,
            Trigger::DataChanged {
                path: path.to_owned(),
                acl,
            },
        ))
    }

    /// `DataTree.setACL`: ACL replaced and aversion set to `version` (mzxid/mtime unchanged; no watch).
    pub fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let old = self.node(path).ok_or(ErrorCode::NoNode)?.acl;
        let before = self.node_digest_of(path);
        self.acls.remove_usage(old);
        let r = self.acls.intern(acl);
        let ext = self.extended_types;
        let node = self.node_mut(path).expect("checked above");
        node.stat.aversion = version;
        node.acl = r;
        let stat = node.stat(ext);
        self.rehash(path, before);
        Ok(stat)
    }

    /// `DataTree.setCversionPzxid`: raise a node's cversion (and set pzxid) if `new_cversion` is larger;
    /// -1 means current + 1. A trailing `/` is ignored.
    pub fn set_cversion_pzxid(
        &mut self,
        path: &str,
        new_cversion: i32,
        zxid: i64,
    ) -> Result<(), ErrorCode> {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        let before = self.node_digest_of(path);
        let node = self.node_mut(path).ok_or(ErrorCode::NoNode)?;
        let cv = if new_cversion == -1 {
            node.stat.cversion.wrapping_add(1)
        } else {
            new_cversion
        };
        if cv > node.stat.cversion {
            node.stat.cversion = cv;
            node.stat.pzxid = zxid;
        }
        self.rehash(path, before);
        Ok(())
    }

    /// `DataTree.killSession`: deletes the paths listed in the closeSession txn (missing ones ignored),
    /// then any other ephemerals the session still owns. Returns the watch triggers.
    pub fn kill_session(
        &mut self,
        session: SessionId,
        zxid: i64,
        listed: Option<&[String]>,
    ) -> Vec<Trigger> {
        let mut local: BTreeSet<Box<str>> = self.ephemerals.remove(&session.0).unwrap_or_default();
        let mut triggers = Vec::new();
        if let Some(listed) = listed {
            for p in listed {
                if let Ok(t) = self.delete_node(p, zxid) {
                    triggers.push(t);
                }
                local.remove(p.as_str());
            }
        }
        for p in local {
            if let Ok(t) = self.delete_node(&p, zxid) {
                triggers.push(t);
            }
        }
        triggers
    }

    /// Local, txn-less update of `/zookeeper/config` (`ZKDatabase.initConfigInZKDatabase`): data = config
    /// text, version -1, mzxid = config version, mtime = `time_ms`.
    pub fn set_config(&mut self, data: &[u8], config_version: i64, time_ms: i64) -> Trigger {
        self.set_data(CONFIG_NODE, Some(data), -1, config_version, time_ms)
            .expect("config node exists")
            .1
    }

    /// The digest contribution of the node at `path` (0 when absent or under `/zookeeper/`).
    fn node_digest_of(&self, path: &str) -> i64 {
        self.node(path)
            .map_or(0, |n| digest::node_digest(path, n.data.as_deref(), &n.stat))
    }

    /// Replaces `before` (the node's old contribution) by its current one
    /// (`NodeHashMapImpl.preChange`/`postChange`).
    fn rehash(&mut self, path: &str, before: i64) {
        let after = self.node_digest_of(path);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
    }

    /// The tree digest (`DataTree.getTreeDigest`, digest version 2; Appendix A.2): compare with a
    /// `TxnDigest` after applying that txn.
    pub fn digest(&self) -> i64 {
        self.digest
    }

    /// The digest computed from scratch (for checks; O(nodes)).
    pub fn recompute_digest(&self) -> i64 {
        let mut sum = 0i64;
        self.walk(|p, n| {
            sum = sum.wrapping_add(digest::node_digest(p, n.data.as_deref(), &n.stat));
        });
        sum
    }

    // ----- reads -----

    /// getData: data (None = null) and stat.
    pub fn get_data(&self, path: &str) -> Option<(Option<&[u8]>, Stat)> {
        let n = self.node(path)?;
        Some((n.data.as_deref(), n.stat(self.extended_types)))
    }

    /// exists / statNode.
    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.node(path).map(|n| n.stat(self.extended_types))
    }

    /// getChildren: child names, sorted by bytes (ZooKeeper's order is unspecified).
    pub fn get_children(&self, path: &str) -> Option<Vec<String>> {
        self.node(path)?;
        let skip = if is_root(path) { 1 } else { path.len() + 1 };
        Some(
            self.children_of(path)
                .map(|(p, _)| p[skip..].to_owned())
                .collect(),
        )
    }

    /// getACL: the ACL list and stat.
    pub fn get_acl(&self, path: &str) -> Option<(Arc<[Acl]>, Stat)> {
        let n = self.node(path)?;
        Some((self.acl_of_node(n), n.stat(self.extended_types)))
    }

    /// The ACL list of a path.
    pub fn acl(&self, path: &str) -> Option<Arc<[Acl]>> {
        self.node(path).map(|n| self.acl_of_node(n))
    }

    /// getEphemerals: the session's ephemeral paths, sorted; an empty prefix or `/` means all, otherwise a
    /// plain string-prefix match (`FinalRequestProcessor`).
    pub fn get_ephemerals(&self, session: SessionId, prefix: &str) -> Vec<String> {
        let Some(set) = self.ephemerals.get(&session.0) else {
            return Vec::new();
        };
        // Java trims the prefix (String.trim: chars <= ' ') only for the "all" test.
        let trimmed = prefix.trim_matches(|c: char| c <= ' ');
        set.iter()
            .filter(|p| trimmed.is_empty() || trimmed == "/" || p.starts_with(prefix))
            .map(|p| p.to_string())
            .collect()
    }

    /// All ephemeral paths of a session (`DataTree.getEphemerals(sessionId)`).
    pub fn ephemerals(&self, session: SessionId) -> Vec<String> {
        self.get_ephemerals(session, "")
    }

    /// Sessions that own ephemerals (`getSessions`), in id order.
    pub fn sessions_with_ephemerals(&self) -> Vec<SessionId> {
        self.ephemerals.keys().map(|&s| SessionId(s)).collect()
    }

    /// Number of ephemeral nodes (`getEphemeralsCount`).
    pub fn ephemerals_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Container node paths (for the container manager).
    pub fn containers(&self) -> Vec<String> {
        self.containers.iter().map(|p| p.to_string()).collect()
    }

    /// TTL node paths.
    pub fn ttls(&self) -> Vec<String> {
        self.ttls.iter().map(|p| p.to_string()).collect()
    }

    /// getAllChildrenNumber: all descendants; for `/` every node but the root (a fresh tree answers 3).
    /// For `""` (the root's other name) Java counts the keys starting with `"/"`, the root's `"/"` key
    /// included: one more than for `/`.
    pub fn all_children_number(&self, path: &str) -> usize {
        if path.is_empty() {
            return self.len + 1;
        }
        if is_root(path) {
            return self.len;
        }
        let prefix = format!("{path}/");
        let hi = format!("{path}0");
        self.levels
            .iter()
            .skip(depth(path) + 1)
            .map(|m| {
                m.range::<[u8], _>((
                    Bound::Included(prefix.as_bytes()),
                    Bound::Excluded(hi.as_bytes()),
                ))
                .count()
            })
            .sum()
    }

    /// Java's `getNodeCount` (the node map's size, where the root appears as both `""` and `"/"`): what
    /// `mntr`'s `zk_znode_count` and `stat`'s "Node count" report.
    pub fn node_count(&self) -> usize {
        self.len + 2
    }

    /// Real number of znodes including the root.
    pub fn len(&self) -> usize {
        self.len + 1
    }

    /// Never true: the root always exists.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// `approximateDataSize`: Σ (path length + data length); the root path is counted under both names
    /// (`""` and `"/"`, as in Java), its data once (as Java's incremental counter does).
    pub fn approximate_data_size(&self) -> i64 {
        self.data_size
    }

    /// The ACL table (size for `mntr`, snapshots).
    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }

    /// All nodes in pre-order (parent before children, children by name), root first as `""`.
    pub fn walk<'a>(&'a self, mut f: impl FnMut(&'a str, &'a Node)) {
        f("", &self.root);
        // Iterative DFS over child-range iterators, so deep trees cannot overflow the stack and wide
        // nodes are scanned once.
        type Children<'a> = Box<dyn Iterator<Item = (&'a str, &'a Node)> + 'a>;
        let mut stack: Vec<Children<'a>> = vec![Box::new(self.children_of(""))];
        while let Some(top) = stack.last_mut() {
            match top.next() {
                Some((p, n)) => {
                    f(p, n);
                    stack.push(Box::new(self.children_of(p)));
                }
                None => {
                    stack.pop();
                }
            }
        }
    }

    /// Checks the internal indexes against the nodes (expensive; tests and debug builds).
    pub fn validate(&self) -> Result<(), String> {
        let mut count = 0usize;
        let mut size = 1i64;
        let mut acl_counts: BTreeMap<AclRef, u64> = BTreeMap::new();
        let mut ephemerals: BTreeMap<i64, BTreeSet<Box<str>>> = BTreeMap::new();
        let mut bad_children = None;
        self.walk(|p, n| {
            if !p.is_empty() {
                count += 1;
            }
            size += (p.len() + n.data_len()) as i64;
            if n.acl != OPEN_UNSAFE_ACL_REF {
                *acl_counts.entry(n.acl).or_default() += 1;
            }
            if let EphemeralType::Normal(s) =
                EphemeralType::of(n.stat.ephemeral_owner, self.extended_types)
            {
                if !p.is_empty() {
                    ephemerals.entry(s.0).or_default().insert(p.into());
                }
            }
            let kids = self.children_of(p).count();
            if kids != n.num_children as usize && bad_children.is_none() {
                bad_children = Some(format!(
                    "{p:?}: num_children {} but {kids} children",
                    n.num_children
                ));
            }
        });
        if let Some(e) = bad_children {
            return Err(e);
        }
        if count != self.len {
            return Err(format!("len {} but {count} reachable nodes", self.len));
        }
        let stored: usize = self.levels.iter().map(BTreeMap::len).sum();
        if stored != self.len {
            return Err(format!("len {} but {stored} stored nodes", self.len));
        }
        if size != self.data_size {
            return Err(format!("data size {} but computed {size}", self.data_size));
        }
        if acl_counts != self.acls.counts() {
            return Err(format!(
                "acl counts {:?} vs {:?}",
                acl_counts,
                self.acls.counts()
            ));
        }
        if ephemerals != self.ephemerals {
            return Err("ephemeral index differs from nodes".into());
        }
        let recomputed = self.recompute_digest();
        if recomputed != self.digest {
            return Err(format!("digest {} but computed {recomputed}", self.digest));
        }
        Ok(())
    }
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new(false)
    }
}

#[cfg(test)]
mod fuzzy_tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod test_strategies;
#[cfg(test)]
mod tests;
