//! Quota bookkeeping as `DataTree` does it: paths with a `/zookeeper/quota<path>/zookeeper_limits` node
//! are tracked (Java's `PathTrie`), and every create, delete and setData under such a path rewrites the
//! `zookeeper_stats` node's data (`count=N,bytes=M`, `StatsTrack`) locally, without a txn, a stat change
//! or a watch. Enforcement (`zookeeper.enforceQuota`) is not done here.

use std::collections::BTreeSet;

use super::DataTree;

/// `Quotas.limitNode`.
pub const LIMIT_NODE: &str = "zookeeper_limits";
/// `Quotas.statNode`.
pub const STAT_NODE: &str = "zookeeper_stats";
const QUOTA_PREFIX: &str = "/zookeeper/quota";

/// `StatsTrack`: `key=value` pairs separated by `,` or `;`; written as `count=..,bytes=..` followed, when
/// other keys exist, by `=` and `;key=value` pairs in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsTrack {
    pairs: std::collections::BTreeMap<String, i64>,
}

impl StatsTrack {
    /// Parses stats text; malformed pairs are skipped (Java would throw).
    pub fn parse(text: &str) -> StatsTrack {
        let mut pairs = std::collections::BTreeMap::new();
        for kv in text.split([',', ';']).filter(|s| !s.is_empty()) {
            let mut it = kv.split('=');
            let (Some(k), v) = (it.next(), it.next()) else {
                continue;
            };
            let v = match v {
                None | Some("") => -1,
                Some(v) => match v.parse::<i64>() {
                    Ok(v) => v,
                    Err(_) => continue,
                },
            };
            pairs.insert(k.to_owned(), v);
        }
        StatsTrack { pairs }
    }

    fn get(&self, k: &str) -> i64 {
        self.pairs.get(k).copied().unwrap_or(-1)
    }

    /// `count`.
    pub fn count(&self) -> i64 {
        self.get("count")
    }

    /// `bytes`.
    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    /// Sets `count` and `bytes`.
    pub fn set(&mut self, count: i64, bytes: i64) {
        self.pairs.insert("count".into(), count);
        self.pairs.insert("bytes".into(), bytes);
    }

    /// `StatsTrack.toString`.
    pub fn render(&self) -> String {
        let mut out = format!("count={},bytes={}", self.count(), self.bytes());
        let extra: Vec<_> = self
            .pairs
            .iter()
            .filter(|(k, _)| k.as_str() != "count" && k.as_str() != "bytes")
            .collect();
        if !extra.is_empty() {
            out.push('=');
            for (k, v) in extra {
                out.push_str(&format!(";{k}={v}"));
            }
        }
        out
    }
}

impl DataTree {
    /// `getMaxPrefixWithQuota`: the deepest quota path that is `path` or a component-wise ancestor of it;
    /// `None` when there is none or it is `/`.
    pub fn max_prefix_with_quota(&self, path: &str) -> Option<String> {
        if self.quotas.is_empty() {
            return None;
        }
        let mut best = None;
        let mut end = 0;
        let bytes = path.as_bytes();
        while end < bytes.len() {
            end += 1;
            while end < bytes.len() && bytes[end] != b'/' {
                end += 1;
            }
            let prefix = &path[..end];
            if self.quotas.contains(prefix) {
                best = Some(prefix.to_owned());
            }
        }
        best.filter(|p| p != "/" && p != ZOOKEEPER_ROOT_ALIAS)
    }

    /// Quota'd paths (`PathTrie` entries), sorted.
    pub fn quota_paths(&self) -> Vec<String> {
        self.quotas.iter().map(|p| p.to_string()).collect()
    }

    /// `updateQuotaStat`: adds to the stats node of `prefix`.
    fn update_quota_stat(&mut self, prefix: &str, bytes_diff: i64, count_diff: i64) {
        let stat_path = format!("{QUOTA_PREFIX}{prefix}/{STAT_NODE}");
        let Some(node) = self.node(&stat_path) else {
            return;
        };
        let text = String::from_utf8_lossy(node.data.as_deref().unwrap_or_default()).into_owned();
        let mut st = StatsTrack::parse(&text);
        st.set(st.count() + count_diff, st.bytes() + bytes_diff);
        self.replace_data_locally(&stat_path, st.render().into_bytes());
    }

    /// `updateQuotaForPath`: recounts the subtree of `path` into its stats node.
    fn update_quota_for_path(&mut self, path: &str) {
        let Some(root) = self.node(path) else {
            return;
        };
        let mut count = 1i64;
        let mut bytes = root.data.as_ref().map_or(0, |d| d.len() as i64);
        let prefix = format!("{path}/");
        let hi = format!("{path}0");
        for level in self.levels.iter().skip(super::depth(path) + 1) {
            for (_, n) in level.range::<[u8], _>((
                std::ops::Bound::Included(prefix.as_bytes()),
                std::ops::Bound::Excluded(hi.as_bytes()),
            )) {
                count += 1;
                bytes += n.data.as_ref().map_or(0, |d| d.len() as i64);
            }
        }
        let stat_path = format!("{QUOTA_PREFIX}{path}/{STAT_NODE}");
        if self.node(&stat_path).is_none() {
            return;
        }
        let mut st = StatsTrack::default();
        st.set(count, bytes);
        self.replace_data_locally(&stat_path, st.render().into_bytes());
    }

    /// Sets a node's data without touching its stat (quota stats nodes), keeping the size counter and
    /// digest in step.
    fn replace_data_locally(&mut self, path: &str, data: Vec<u8>) {
        let before = self.node_digest_of(path);
        let Some(node) = self.node_mut(path) else {
            return;
        };
        let old = node.data.as_ref().map_or(0, |d| d.len()) as i64;
        let new = data.len() as i64;
        node.data = Some(data.into_boxed_slice());
        self.data_size += new - old;
        self.rehash(path, before);
    }

    /// Quota hooks after a node was created (`createNode`'s tail).
    pub(super) fn quota_after_create(&mut self, path: &str, data_len: usize) {
        let (parent, child) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => return,
        };
        if let Some(real) = parent.strip_prefix(QUOTA_PREFIX) {
            if child == LIMIT_NODE && !real.is_empty() {
                self.quotas.insert(real.into());
            }
            if child == STAT_NODE {
                let real = real.to_owned();
                self.update_quota_for_path(&real);
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, data_len as i64, 1);
        }
    }

    /// Quota hooks after a node was deleted (`deleteNode`'s tail). Removing a limits node forgets that
    /// quota path and every quota path below it, as `PathTrie.deletePath` drops the whole sub-trie.
    pub(super) fn quota_after_delete(&mut self, path: &str, data_len: usize) {
        let (parent, child) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => return,
        };
        if child == LIMIT_NODE {
            if let Some(real) = parent.strip_prefix(QUOTA_PREFIX) {
                let sub = format!("{real}/");
                let doomed: Vec<Box<str>> = self
                    .quotas
                    .iter()
                    .filter(|q| &***q == real || q.starts_with(&sub))
                    .cloned()
                    .collect();
                for q in doomed {
                    self.quotas.remove(&q);
                }
            }
        }
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, -(data_len as i64), -1);
        }
    }

    /// Quota hook after setData.
    pub(super) fn quota_after_set_data(&mut self, path: &str, old_len: usize, new_len: usize) {
        if let Some(prefix) = self.max_prefix_with_quota(path) {
            self.update_quota_stat(&prefix, new_len as i64 - old_len as i64, 0);
        }
    }

    /// `setupQuota` (after a snapshot load): every `.../zookeeper_limits` leaf under `/zookeeper/quota`
    /// registers its path and recounts its stats.
    pub(super) fn setup_quota(&mut self) {
        let mut found = BTreeSet::new();
        let suffix = format!("/{LIMIT_NODE}");
        self.walk(|p, n| {
            if n.num_children == 0 && p.starts_with(QUOTA_PREFIX) && p.ends_with(&suffix) {
                if let Some(i) = p.find(&suffix) {
                    let real = &p[QUOTA_PREFIX.len()..i];
                    if !real.is_empty() {
                        found.insert(real.to_owned());
                    }
                }
            }
        });
        for real in found {
            self.update_quota_for_path(&real);
            self.quotas.insert(real.into());
        }
    }
}

/// The root's internal name, which Java's trie can also report.
const ZOOKEEPER_ROOT_ALIAS: &str = "";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Acl;

    fn create(t: &mut DataTree, p: &str, data: &[u8]) {
        t.create_node(p, Some(data), &Acl::open_unsafe(), 0, -1, 1, 0)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }

    fn stats(t: &DataTree, p: &str) -> String {
        let path = format!("/zookeeper/quota{p}/zookeeper_stats");
        String::from_utf8(
            t.get_data(&path)
                .and_then(|(d, _)| d)
                .unwrap_or_default()
                .to_vec(),
        )
        .expect("utf8")
    }

    /// zkCli's setquota creates limits then stats nodes; later changes below the path update the stats
    /// data (count includes the quota root), without changing the stats node's stat; a reload recounts.
    #[test]
    fn quota_stats_follow_changes() {
        let mut t = DataTree::new(false);
        create(&mut t, "/app", b"12");
        create(&mut t, "/app/x", b"abc");
        create(&mut t, "/zookeeper/quota/app", b"");
        create(
            &mut t,
            "/zookeeper/quota/app/zookeeper_limits",
            b"count=10,bytes=-1",
        );
        create(
            &mut t,
            "/zookeeper/quota/app/zookeeper_stats",
            b"count=0,bytes=0",
        );
        assert_eq!(stats(&t, "/app"), "count=2,bytes=5");
        let st_before = t.stat("/zookeeper/quota/app/zookeeper_stats");
        create(&mut t, "/app/y", b"4444");
        assert_eq!(stats(&t, "/app"), "count=3,bytes=9");
        let _ = t.set_data("/app/y", Some(b"1"), 1, 2, 0).expect("set");
        assert_eq!(stats(&t, "/app"), "count=3,bytes=6");
        t.delete_node("/app/x", 3).expect("delete");
        assert_eq!(stats(&t, "/app"), "count=2,bytes=3");
        assert_eq!(
            t.stat("/zookeeper/quota/app/zookeeper_stats")
                .map(|s| s.mzxid),
            st_before.map(|s| s.mzxid)
        );
        // Unrelated and sibling-prefix paths are not counted.
        create(&mut t, "/application", b"zz");
        assert_eq!(stats(&t, "/app"), "count=2,bytes=3");
        assert_eq!(t.max_prefix_with_quota("/app/y"), Some("/app".to_string()));
        assert_eq!(t.max_prefix_with_quota("/application"), None);
        assert_eq!(t.validate(), Ok(()));
        let back = DataTree::deserialize(&t.serialize(), false).expect("decode");
        assert_eq!(back.quota_paths(), vec!["/app".to_string()]);
        assert_eq!(stats(&back, "/app"), "count=2,bytes=3");
        // Removing the limits node stops the accounting.
        t.delete_node("/zookeeper/quota/app/zookeeper_limits", 4)
            .expect("delete");
        create(&mut t, "/app/z", b"1");
        assert_eq!(stats(&t, "/app"), "count=2,bytes=3");
        assert_eq!(t.validate(), Ok(()));
    }

    /// StatsTrack renders count and bytes first, then the other keys after a '=' marker.
    #[test]
    fn stats_track_format() {
        let mut s = StatsTrack::parse("count=1,bytes=2=;countHardLimit=5;byteHardLimit=7");
        assert_eq!(s.count(), 1);
        s.set(3, 4);
        assert_eq!(
            s.render(),
            "count=3,bytes=4=;byteHardLimit=7;countHardLimit=5"
        );
        assert_eq!(StatsTrack::parse("count=-1,bytes=").bytes(), -1);
    }
}
