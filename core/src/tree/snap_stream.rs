//! The streaming snapshot writer, for disk snapshots and SNAP syncs alike: the body produced in bounded
//! chunks while txns keep being applied between them. A leader (or observer master) sends it after a SNAP
//! packet, as Java's `LearnerHandler` serializes `ZKDatabase.serializeSnapshot` straight onto the
//! learner's socket while the leader keeps committing; a server's periodic snapshot hands each chunk to
//! its snapshot thread, which compresses and writes it as it comes (`storage::SnapshotFile`), as Java's
//! snapshot thread streams the tree to the file. Neither ever holds the whole serialized tree.
//!
//! The bytes are Java's snapshot layout, the same as [`crate::server::standalone::snapshot_blob`]:
//! the session list, the ACL table, the nodes in pre-order, `"/"`. For a tree that does not change
//! while it is streamed, the concatenated chunks equal that blob byte for byte (a test checks it).
//!
//! A stream cannot go back, so the ACL table is written first, as the tree's table at the start
//! (`ReferenceCountedACLCache.serialize` is also the first thing Java writes). Two rules keep the result
//! exact once every txn after the start zxid is replayed over it (a learner gets them on the same stream
//! after the snapshot; recovery reads them from the txn log):
//! - a node created after the start (`czxid` above the start zxid) is skipped with its subtree. Its
//!   create is replayed; the parent's cversion and pzxid only ever move up on replay (`createNode` takes
//!   the larger cversion, `deleteNode` the larger pzxid), so a parent written after that create stays
//!   as it was written;
//! - every written node existed at the start, so its ACL list then was in the table. If its list
//!   changed since to one the table does not hold, a `setACL` after the start zxid did it and its replay
//!   sets it again; the node is written with the implicit open list (`-1`, always resolvable) meanwhile.
//!
//! References are never reused by [`super::acl_cache::AclCache`], so a reference that was in the table
//! at the start still names the same list.

use std::collections::BTreeSet;
use std::ops::Bound;

use crate::ids::SessionId;
use crate::jute::{JuteWriter, Record};

use super::acl_cache::{AclRef, OPEN_UNSAFE_ACL_REF};
use super::snapshot::write_sessions;
use super::{child_bounds, depth, is_root, DataTree, Node};

/// One level of the pre-order walk: a written node and the last child visited under it.
#[derive(Debug)]
struct Frame {
    path: String,
    after: Option<String>,
}

/// A snapshot body being streamed (see the module doc).
#[derive(Debug)]
pub struct SnapStream {
    zxid: i64,
    /// The ACL references in the table written at the start.
    start_refs: BTreeSet<AclRef>,
    /// Sessions and ACL table, handed out with the first chunk.
    header: Option<Vec<u8>>,
    started: bool,
    finished: bool,
    stack: Vec<Frame>,
    nodes: u64,
    bytes: u64,
}

impl SnapStream {
    /// Starts streaming `tree` as of its last applied zxid, with the session list as it is now.
    pub fn new(tree: &DataTree, sessions: &[(SessionId, i32)]) -> SnapStream {
        let mut w = JuteWriter::new();
        write_sessions(&mut w, sessions);
        tree.acls.write(&mut w);
        SnapStream {
            zxid: tree.last_processed_zxid(),
            start_refs: tree.acls.counts().into_keys().collect(),
            header: Some(w.into_inner()),
            started: false,
            finished: false,
            stack: Vec::new(),
            nodes: 0,
            bytes: 0,
        }
    }

    /// The zxid the snapshot stands for (the SNAP packet's): the learner replays every txn after it.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Whether the last chunk (ending with `"/"`) has been handed out.
    pub fn is_done(&self) -> bool {
        self.finished
    }

    /// Nodes written so far.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Bytes handed out so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next chunk: at least one node (or the header), then nodes while the chunk is under
    /// `max_bytes`; the last chunk ends with the `"/"` terminator. `tree` must be the tree the stream
    /// started on, with any txns applied since. Empty once [`SnapStream::is_done`].
    pub fn next_chunk(&mut self, tree: &DataTree, max_bytes: usize) -> Vec<u8> {
        if self.finished {
            return Vec::new();
        }
        let mut w = JuteWriter::from_vec(self.header.take().unwrap_or_default());
        if !self.started {
            self.started = true;
            self.write_node(&mut w, "", &tree.root);
            self.stack.push(Frame {
                path: String::new(),
                after: None,
            });
        }
        while w.len() < max_bytes.max(1) {
            let Some(top) = self.stack.last() else {
                w.write_string("/");
                self.finished = true;
                break;
            };
            match tree.next_child(&top.path, top.after.as_deref()) {
                None => {
                    let done = self.stack.pop().expect("top exists");
                    if let Some(parent) = self.stack.last_mut() {
                        parent.after = Some(done.path);
                    }
                }
                Some((path, node)) => {
                    let path = path.to_owned();
                    if node.stat.czxid > self.zxid {
                        // Created after the start: replayed, not written (see the module doc).
                        self.stack.last_mut().expect("top exists").after = Some(path);
                        continue;
                    }
                    self.write_node(&mut w, &path, node);
                    self.stack.push(Frame { path, after: None });
                }
            }
        }
        let chunk = w.into_inner();
        self.bytes += chunk.len() as u64;
        chunk
    }

    fn write_node(&mut self, w: &mut JuteWriter, path: &str, node: &Node) {
        let acl = if node.acl == OPEN_UNSAFE_ACL_REF || self.start_refs.contains(&node.acl) {
            node.acl
        } else {
            OPEN_UNSAFE_ACL_REF
        };
        w.write_string(path);
        w.write_buffer_opt(node.data.as_deref());
        w.write_i64(i64::from(acl));
        node.stat.write(w);
        self.nodes += 1;
    }
}

impl DataTree {
    /// The first child of `parent` (in name order) strictly after the path `after`, if any.
    pub(super) fn next_child<'a>(
        &'a self,
        parent: &str,
        after: Option<&str>,
    ) -> Option<(&'a str, &'a Node)> {
        let level = if is_root(parent) {
            1
        } else {
            depth(parent) + 1
        };
        let (lo, hi) = child_bounds(parent);
        let lo = match after {
            Some(a) => Bound::Excluded(a.as_bytes()),
            None => Bound::Included(lo.as_bytes()),
        };
        self.levels
            .get(level)?
            .range::<[u8], _>((lo, Bound::Excluded(hi.as_bytes())))
            .next()
            .map(|(k, v)| (k.as_str(), &**v))
    }
}
