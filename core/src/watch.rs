//! Server-side watch registry: ZooKeeper's `WatchManager` (one table for data/exists watches, one for child
//! watches, each with a per-(connection, path) mode), `WatcherModeManager`, the trigger rules of
//! `DataTree.createNode/deleteNode/setData`, and `DataTree.setWatches` re-arming after a reconnect.
//!
//! Watchers are opaque [`WatcherId`]s (the shell's connection ids). Triggering returns notifications as
//! values; the shell filters them by READ permission (CVE-2024-23944: the ACL travels with each
//! notification) and writes them before the reply of the write that caused them. This module never
//! touches the data tree: callers pass node facts in.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::proto::Acl;

/// A connection, as the shell numbers it.
pub type WatcherId = u64;

pub use crate::proto::enums::{EventType, WatcherType};

/// `KeeperState.SyncConnected`: the only state a server puts in notifications.
pub const STATE_SYNC_CONNECTED: i32 = 3;

/// One notification body (`WatcherEvent{type, state=3, path}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The (server-side) path it happened to.
    pub path: String,
}

/// A notification for one connection, with the ACL of the node it refers to so the shell can drop it
/// when the connection lacks READ (ZooKeeper 3.8.4+ `ServerCnxn.process(event, acl)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Destination.
    pub watcher: WatcherId,
    /// The event.
    pub event: WatchedEvent,
    /// ACL of the node the event is about (the parent's for NodeChildrenChanged).
    pub acl: Arc<[Acl]>,
}

/// A tree change that may fire watches, as the data tree reports it when a txn is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Node created: data table NodeCreated on `path`, child table NodeChildrenChanged on the parent.
    Created {
        /// The new node.
        path: String,
        /// Its ACL.
        acl: Arc<[Acl]>,
        /// The parent's ACL.
        parent_acl: Arc<[Acl]>,
    },
    /// Node deleted: NodeDeleted in both tables on `path` (the child table suppressed for connections the
    /// data table already notified), then NodeChildrenChanged on the parent.
    Deleted {
        /// The removed node.
        path: String,
        /// Its ACL.
        acl: Arc<[Acl]>,
        /// The parent's ACL.
        parent_acl: Arc<[Acl]>,
    },
    /// setData: data table NodeDataChanged on `path`.
    DataChanged {
        /// The node.
        path: String,
        /// Its ACL.
        acl: Arc<[Acl]>,
    },
}

/// Registration mode (`WatcherMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WatcherMode {
    /// One-shot (getData/exists/getChildren).
    Standard,
    /// addWatch mode 0.
    Persistent,
    /// addWatch mode 1.
    PersistentRecursive,
}

impl WatcherMode {
    /// `AddWatchMode` wire value (0 persistent, 1 persistent recursive) to a mode.
    pub fn from_add_watch_mode(mode: i32) -> Option<WatcherMode> {
        match mode {
            0 => Some(WatcherMode::Persistent),
            1 => Some(WatcherMode::PersistentRecursive),
            _ => None,
        }
    }

    fn is_persistent(self) -> bool {
        self != WatcherMode::Standard
    }

    fn is_recursive(self) -> bool {
        self == WatcherMode::PersistentRecursive
    }
}

/// Watch counts in the shape of ZooKeeper's `WatchesSummary` (`wchs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WatchesSummary {
    /// Connections with at least one watch.
    pub connections: usize,
    /// Watched paths.
    pub paths: usize,
    /// (connection, path) pairs.
    pub total: usize,
}

/// One `WatchManager`: path → watchers with their mode, and the reverse index.
#[derive(Clone, Debug, Default)]
struct WatchTable {
    by_path: HashMap<String, BTreeMap<WatcherId, WatcherMode>>,
    by_watcher: HashMap<WatcherId, BTreeSet<String>>,
    /// Number of recursive registrations; when zero, triggers look at the path only (Java's
    /// `PathParentIterator.forPathOnly` optimisation).
    recursive: usize,
}

impl WatchTable {
    /// `addWatch`: a later registration on the same (watcher, path) replaces the mode, as
    /// `WatcherModeManager.setWatcherMode` does in 3.8.
    fn add(&mut self, path: &str, watcher: WatcherId, mode: WatcherMode) -> bool {
        let entry = self.by_path.entry(path.to_owned()).or_default();
        if let Some(old) = entry.insert(watcher, mode) {
            if old.is_recursive() {
                self.recursive -= 1;
            }
        }
        if mode.is_recursive() {
            self.recursive += 1;
        }
        self.by_watcher
            .entry(watcher)
            .or_default()
            .insert(path.to_owned())
    }

    fn remove(&mut self, path: &str, watcher: WatcherId) -> bool {
        let Some(paths) = self.by_watcher.get_mut(&watcher) else {
            return false;
        };
        if !paths.remove(path) {
            return false;
        }
        if paths.is_empty() {
            self.by_watcher.remove(&watcher);
        }
        let Some(set) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(mode) = set.remove(&watcher) else {
            return false;
        };
        if mode.is_recursive() {
            self.recursive -= 1;
        }
        if set.is_empty() {
            self.by_path.remove(path);
        }
        true
    }

    fn remove_watcher(&mut self, watcher: WatcherId) {
        let Some(paths) = self.by_watcher.remove(&watcher) else {
            return;
        };
        for p in paths {
            if let Some(set) = self.by_path.get_mut(&p) {
                if let Some(mode) = set.remove(&watcher) {
                    if mode.is_recursive() {
                        self.recursive -= 1;
                    }
                }
                if set.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
    }

    fn contains(&self, path: &str, watcher: WatcherId) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|set| set.contains_key(&watcher))
    }

    /// `WatchManager.triggerWatch`: the set of watchers that match, in id order. Standard registrations
    /// at `path` itself are consumed; recursive ones on `path` or an ancestor match unless the event is
    /// NodeChildrenChanged.
    fn trigger(&mut self, path: &str, event: EventType) -> BTreeSet<WatcherId> {
        let mut out = BTreeSet::new();
        let mut local = path;
        let mut at_parent = false;
        loop {
            if let Some(set) = self.by_path.get_mut(local) {
                let mut consumed = Vec::new();
                for (&w, &mode) in set.iter() {
                    if mode.is_recursive() {
                        if event != EventType::NodeChildrenChanged {
                            out.insert(w);
                        }
                    } else if !at_parent {
                        out.insert(w);
                        if !mode.is_persistent() {
                            consumed.push(w);
                        }
                    }
                }
                for w in consumed {
                    set.remove(&w);
                    if let Some(paths) = self.by_watcher.get_mut(&w) {
                        paths.remove(local);
                        if paths.is_empty() {
                            self.by_watcher.remove(&w);
                        }
                    }
                }
                if set.is_empty() {
                    self.by_path.remove(local);
                }
            }
            if self.recursive == 0 {
                break;
            }
            // Next ancestor: "/a/b" → "/a" → "/" (PathParentIterator).
            match local.rfind('/') {
                Some(0) if local.len() > 1 => local = "/",
                Some(i) if i > 0 => local = &local[..i],
                _ => break,
            }
            at_parent = true;
        }
        out
    }

    fn summary(&self) -> WatchesSummary {
        WatchesSummary {
            connections: self.by_watcher.len(),
            paths: self.by_path.len(),
            total: self.by_watcher.values().map(BTreeSet::len).sum(),
        }
    }
}

/// Both watch tables of a server (`DataTree.dataWatches` / `DataTree.childWatches`).
#[derive(Clone, Debug, Default)]
pub struct WatchManager {
    data: WatchTable,
    child: WatchTable,
}

impl WatchManager {
    /// An empty registry.
    pub fn new() -> WatchManager {
        WatchManager::default()
    }

    /// getData/exists with `watch=true`: a one-shot data watch (exists registers it even when the node
    /// is missing).
    pub fn add_data_watch(&mut self, path: &str, watcher: WatcherId) {
        self.data.add(path, watcher, WatcherMode::Standard);
    }

    /// getChildren/getChildren2 with `watch=true`: a one-shot child watch.
    pub fn add_child_watch(&mut self, path: &str, watcher: WatcherId) {
        self.child.add(path, watcher, WatcherMode::Standard);
    }

    /// addWatch (`DataTree.addWatch`): registers `mode` in both tables.
    pub fn add_watch(&mut self, path: &str, watcher: WatcherId, mode: WatcherMode) {
        self.child.add(path, watcher, mode);
        self.data.add(path, watcher, mode);
    }

    /// Connection closed: drop every registration of `watcher` (`DataTree.removeCnxn`).
    pub fn remove_watcher(&mut self, watcher: WatcherId) {
        self.data.remove_watcher(watcher);
        self.child.remove_watcher(watcher);
    }

    /// checkWatches: does `watcher` have a registration of this type on exactly `path`? (Persistent watches
    /// live in both tables, so they count for either type.) The caller answers NOWATCHER on false.
    ///
    /// ZooKeeper 3.8's `WatchManager.containsWatcher` also answers true when *another* connection watches
    /// the path; we answer for the asking connection only, as the protocol documents it.
    pub fn contains(&self, path: &str, kind: WatcherType, watcher: WatcherId) -> bool {
        match kind {
            WatcherType::Children => self.child.contains(path, watcher),
            WatcherType::Data => self.data.contains(path, watcher),
            WatcherType::Any => {
                self.child.contains(path, watcher) || self.data.contains(path, watcher)
            }
        }
    }

    /// removeWatches (`DataTree.removeWatch`): removes the registration(s); false → NOWATCHER.
    pub fn remove(&mut self, path: &str, kind: WatcherType, watcher: WatcherId) -> bool {
        match kind {
            WatcherType::Children => self.child.remove(path, watcher),
            WatcherType::Data => self.data.remove(path, watcher),
            WatcherType::Any => {
                let c = self.child.remove(path, watcher);
                let d = self.data.remove(path, watcher);
                c || d
            }
        }
    }

    /// Fires the watches of one tree change, in ZooKeeper's order (data table first, then child table).
    /// Each trigger call notifies a connection at most once.
    pub fn trigger(&mut self, t: &Trigger) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut emit = |ws: &BTreeSet<WatcherId>,
                        skip: Option<&BTreeSet<WatcherId>>,
                        ev: EventType,
                        path: &str,
                        acl: &Arc<[Acl]>| {
            for &w in ws {
                if skip.is_some_and(|s| s.contains(&w)) {
                    continue;
                }
                out.push(Notification {
                    watcher: w,
                    event: WatchedEvent {
                        event_type: ev,
                        path: path.to_owned(),
                    },
                    acl: Arc::clone(acl),
                });
            }
        };
        match t {
            Trigger::Created {
                path,
                acl,
                parent_acl,
            } => {
                let ws = self.data.trigger(path, EventType::NodeCreated);
                emit(&ws, None, EventType::NodeCreated, path, acl);
                let parent = crate::path::parent_display(path).unwrap_or("/");
                let ws = self.child.trigger(parent, EventType::NodeChildrenChanged);
                emit(
                    &ws,
                    None,
                    EventType::NodeChildrenChanged,
                    parent,
                    parent_acl,
                );
            }
            Trigger::Deleted {
                path,
                acl,
                parent_acl,
            } => {
                let processed = self.data.trigger(path, EventType::NodeDeleted);
                emit(&processed, None, EventType::NodeDeleted, path, acl);
                let ws = self.child.trigger(path, EventType::NodeDeleted);
                emit(&ws, Some(&processed), EventType::NodeDeleted, path, acl);
                let parent = crate::path::parent_display(path).unwrap_or("/");
                let ws = self.child.trigger(parent, EventType::NodeChildrenChanged);
                emit(
                    &ws,
                    None,
                    EventType::NodeChildrenChanged,
                    parent,
                    parent_acl,
                );
            }
            Trigger::DataChanged { path, acl } => {
                let ws = self.data.trigger(path, EventType::NodeDataChanged);
                emit(&ws, None, EventType::NodeDataChanged, path, acl);
            }
        }
        out
    }

    /// setWatches/setWatches2 (`DataTree.setWatches`): re-arms a reconnecting client's watches relative to
    /// the last zxid it saw, returning the catch-up events to send at once (in request order).
    /// `lookup(path)` gives `(mzxid, pzxid)` of an existing node.
    #[allow(clippy::too_many_arguments)]
    pub fn set_watches(
        &mut self,
        watcher: WatcherId,
        relative_zxid: i64,
        data_watches: &[String],
        exist_watches: &[String],
        child_watches: &[String],
        persistent_watches: &[String],
        persistent_recursive_watches: &[String],
        lookup: impl Fn(&str) -> Option<(i64, i64)>,
    ) -> Vec<WatchedEvent> {
        let mut events = Vec::new();
        let ev = |t: EventType, p: &str| WatchedEvent {
            event_type: t,
            path: p.to_owned(),
        };
        for p in data_watches {
            match lookup(p) {
                None => events.push(ev(EventType::NodeDeleted, p)),
                Some((mzxid, _)) if mzxid > relative_zxid => {
                    events.push(ev(EventType::NodeDataChanged, p))
                }
                Some(_) => self.add_data_watch(p, watcher),
            }
        }
        for p in exist_watches {
            match lookup(p) {
                Some(_) => events.push(ev(EventType::NodeCreated, p)),
                None => self.add_data_watch(p, watcher),
            }
        }
        for p in child_watches {
            match lookup(p) {
                None => events.push(ev(EventType::NodeDeleted, p)),
                Some((_, pzxid)) if pzxid > relative_zxid => {
                    events.push(ev(EventType::NodeChildrenChanged, p))
                }
                Some(_) => self.add_child_watch(p, watcher),
            }
        }
        for p in persistent_watches {
            self.add_watch(p, watcher, WatcherMode::Persistent);
        }
        for p in persistent_recursive_watches {
            self.add_watch(p, watcher, WatcherMode::PersistentRecursive);
        }
        events
    }

    /// `wchs`: ZooKeeper reports the data table only (`DataTree.getWatchesSummary`).
    pub fn data_summary(&self) -> WatchesSummary {
        self.data.summary()
    }

    /// The child table's counts (not reported by ZooKeeper's 4lw, useful for metrics).
    pub fn child_summary(&self) -> WatchesSummary {
        self.child.summary()
    }

    /// `wchc`: data-table paths per connection, sorted.
    pub fn data_watches_by_watcher(&self) -> BTreeMap<WatcherId, Vec<String>> {
        self.data
            .by_watcher
            .iter()
            .map(|(w, ps)| (*w, ps.iter().cloned().collect()))
            .collect()
    }

    /// `wchp`: data-table connections per path, sorted.
    pub fn data_watches_by_path(&self) -> BTreeMap<String, Vec<WatcherId>> {
        self.data
            .by_path
            .iter()
            .map(|(p, ws)| (p.clone(), ws.keys().copied().collect()))
            .collect()
    }

    /// Total registrations in both tables (`DataTree.getWatchCount`, used by `mntr`'s zk_watch_count).
    pub fn watch_count(&self) -> usize {
        self.data.summary().total + self.child.summary().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Arc<[Acl]> {
        Acl::open_unsafe().into()
    }

    fn created(p: &str) -> Trigger {
        Trigger::Created {
            path: p.into(),
            acl: open(),
            parent_acl: open(),
        }
    }

    fn deleted(p: &str) -> Trigger {
        Trigger::Deleted {
            path: p.into(),
            acl: open(),
            parent_acl: open(),
        }
    }

    fn changed(p: &str) -> Trigger {
        Trigger::DataChanged {
            path: p.into(),
            acl: open(),
        }
    }

    fn summary(ns: &[Notification]) -> Vec<(WatcherId, EventType, String)> {
        ns.iter()
            .map(|n| (n.watcher, n.event.event_type, n.event.path.clone()))
            .collect()
    }

    /// Standard watches fire once: an exists watch on a missing node fires NodeCreated, and the parent's
    /// child watch fires NodeChildrenChanged with "/" for root children.
    #[test]
    fn one_shot_create() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a", 1);
        m.add_child_watch("/", 2);
        let n = m.trigger(&created("/a"));
        assert_eq!(
            summary(&n),
            vec![
                (1, EventType::NodeCreated, "/a".into()),
                (2, EventType::NodeChildrenChanged, "/".into())
            ]
        );
        assert!(m.trigger(&created("/a")).is_empty());
        assert_eq!(m.watch_count(), 0);
    }

    /// Delete notifies a connection with both a data and a child watch on the node only once, and fires the
    /// parent's child watch.
    #[test]
    fn delete_suppresses_duplicate() {
        let mut m = WatchManager::new();
        m.add_data_watch("/a/b", 1);
        m.add_child_watch("/a/b", 1);
        m.add_child_watch("/a/b", 2);
        m.add_child_watch("/a", 3);
        let n = m.trigger(&deleted("/a/b"));
        assert_eq!(
            summary(&n),
            vec![
                (1, EventType::NodeDeleted, "/a/b".into()),
                (2, EventType::NodeDeleted, "/a/b".into()),
                (3, EventType::NodeChildrenChanged, "/a".into())
            ]
        );
        assert_eq!(m.watch_count(), 0);
    }

    /// Persistent watches stay; recursive ones match descendants but never NodeChildrenChanged; overlapping
    /// registrations of one connection give one event per trigger.
    #[test]
    fn persistent_and_recursive() {
        let mut m = WatchManager::new();
        m.add_watch("/a", 1, WatcherMode::Persistent);
        m.add_watch("/", 2, WatcherMode::PersistentRecursive);
        m.add_watch("/a", 2, WatcherMode::PersistentRecursive);
        m.add_data_watch("/a/b", 2);
        for _ in 0..2 {
            let n = m.trigger(&changed("/a"));
            assert_eq!(
                summary(&n),
                vec![
                    (1, EventType::NodeDataChanged, "/a".into()),
                    (2, EventType::NodeDataChanged, "/a".into())
                ]
            );
        }
        let n = m.trigger(&created("/a/b"));
        // Data: recursive 2 (once, despite three matching registrations); child table on /a:
        // persistent 1 gets NodeChildrenChanged, recursive 2 does not.
        assert_eq!(
            summary(&n),
            vec![
                (2, EventType::NodeCreated, "/a/b".into()),
                (1, EventType::NodeChildrenChanged, "/a".into())
            ]
        );
        assert!(m.contains("/a", WatcherType::Children, 1));
        assert!(m.contains("/a", WatcherType::Data, 1));
        assert!(!m.contains("/a", WatcherType::Data, 3));
        assert!(m.remove("/a", WatcherType::Any, 1));
        assert!(!m.remove("/a", WatcherType::Any, 1));
        m.remove_watcher(2);
        assert_eq!(m.watch_count(), 0);
        assert!(m.trigger(&changed("/a")).is_empty());
    }

    /// setWatches sends catch-up events for changes after the client's zxid and re-registers the rest.
    #[test]
    fn set_watches_catch_up() {
        let mut m = WatchManager::new();
        let lookup = |p: &str| match p {
            "/old" => Some((5, 5)),
            "/new" => Some((9, 9)),
            _ => None,
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let evs = m.set_watches(
            7,
            6,
            &s(&["/old", "/new", "/gone"]),
            &s(&["/old", "/gone"]),
            &s(&["/old", "/new", "/gone"]),
            &s(&["/p"]),
            &[],
            lookup,
        );
        let kinds: Vec<_> = evs
            .iter()
            .map(|e| (e.event_type, e.path.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (EventType::NodeDataChanged, "/new"),
                (EventType::NodeDeleted, "/gone"),
                (EventType::NodeCreated, "/old"),
                (EventType::NodeChildrenChanged, "/new"),
                (EventType::NodeDeleted, "/gone"),
            ]
        );
        assert!(m.contains("/old", WatcherType::Data, 7));
        assert!(m.contains("/gone", WatcherType::Data, 7));
        assert!(m.contains("/old", WatcherType::Children, 7));
        assert!(m.contains("/p", WatcherType::Children, 7));
        let s = m.data_summary();
        assert_eq!((s.connections, s.paths, s.total), (1, 3, 3));
        assert_eq!(m.data_watches_by_path()["/old"], vec![7]);
    }

    /// A standard registration after a persistent one replaces its mode (ZooKeeper 3.8 behaviour).
    #[test]
    fn later_registration_replaces_mode() {
        let mut m = WatchManager::new();
        m.add_watch("/a", 1, WatcherMode::Persistent);
        m.add_data_watch("/a", 1);
        assert_eq!(m.trigger(&changed("/a")).len(), 1);
        assert!(m.trigger(&changed("/a")).is_empty());
    }
}
