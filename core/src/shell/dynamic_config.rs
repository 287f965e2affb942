//! Persisting configurations as ZooKeeper does (`QuorumPeerConfig.writeDynamicConfig` and
//! `editStaticConfig`): the committed one in `<zoo.cfg>.dynamic.<version hex>` with zoo.cfg's
//! `dynamicConfigFile` pointing at it, the last seen one in `<zoo.cfg>.dynamic.next`. Files are written
//! atomically (temp file, fsync, rename, directory fsync) so a crash leaves the old or the new file.

use std::io;
use std::path::{Path, PathBuf};

use outpost_conf::properties;
use outpost_conf::reconfig::parse_config_text;

use crate::storage::Disk;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `<zoo.cfg>.dynamic.next`.
pub fn next_path(cfg_path: &Path) -> PathBuf {
    with_suffix(cfg_path, ".dynamic.next")
}

/// `<zoo.cfg>.dynamic.<version hex>` (`QuorumPeer.makeDynamicConfigFilename`).
pub fn dynamic_path(cfg_path: &Path, version: u64) -> PathBuf {
    with_suffix(cfg_path, &format!(".dynamic.{version:x}"))
}

/// Writes `data` to `path` atomically.
fn write_atomic(disk: &dyn Disk, path: &Path, data: &[u8]) -> io::Result<()> {
    let temp = with_suffix(path, ".tmp");
    if disk.exists(&temp)? {
        disk.remove(&temp)?;
    }
    disk.create(&temp)?;
    disk.write_at(&temp, 0, data)?;
    disk.fsync(&temp)?;
    disk.rename(&temp, path)?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => disk.fsync_dir(dir),
        _ => Ok(()),
    }
}

fn read_all(disk: &dyn Disk, path: &Path) -> io::Result<Vec<u8>> {
    let len = usize::try_from(disk.len(path)?).map_err(invalid)?;
    let mut buf = vec![0; len];
    let mut off = 0;
    while off < len {
        let n = disk.read_at(path, off as u64, &mut buf[off..])?;
        if n == 0 {
            break;
        }
        off += n;
    }
    buf.truncate(off);
    Ok(buf)
}

/// `setLastSeenQuorumVerifier(qv, true)`: `<zoo.cfg>.dynamic.next` with the sorted lines, version kept.
pub fn write_next(disk: &dyn Disk, cfg_path: &Path, text: &[u8]) -> io::Result<PathBuf> {
    let qc = parse_config_text(&String::from_utf8_lossy(text)).map_err(invalid)?;
    let path = next_path(cfg_path);
    write_atomic(disk, &path, qc.render_dynamic_file(true).as_bytes())?;
    Ok(path)
}

/// `setQuorumVerifier(qv, true)`: writes `<zoo.cfg>.dynamic.<version>` (sorted lines, no version),
/// rewrites zoo.cfg without its membership keys and with `dynamicConfigFile` naming the new file, and
/// deletes `.dynamic.next` when it holds this version or an older one. Returns the dynamic file.
///
/// zoo.cfg keeps its other keys in their order (Java writes them in `Properties` hash order) and its
/// `clientPort` (Java drops it when the server line has a client address; outpost reads both and
/// they agree).
pub fn write_activated(disk: &dyn Disk, cfg_path: &Path, text: &[u8]) -> io::Result<PathBuf> {
    let qc = parse_config_text(&String::from_utf8_lossy(text)).map_err(invalid)?;
    let dynamic = dynamic_path(cfg_path, qc.version);
    write_atomic(disk, &dynamic, qc.render_dynamic_file(false).as_bytes())?;
    let old = read_all(disk, cfg_path)?;
    let entries = properties::parse(&properties::decode_latin1(&old)).map_err(|e| {
        invalid(format!(
            "{}: line {}: {}",
            cfg_path.display(),
            e.line,
            e.message
        ))
    })?;
    let mut out = String::new();
    for e in entries {
        let key = e.key.trim();
        let membership = key.starts_with("server.")
            || key.starts_with("group")
            || key.starts_with("weight")
            || key.starts_with("dynamicConfigFile")
            || key.starts_with("peerType");
        if !membership {
            out.push_str(&format!("{key}={}\n", e.value.trim()));
        }
    }
    out.push_str(&format!("dynamicConfigFile={}\n", dynamic.display()));
    write_atomic(disk, cfg_path, out.as_bytes())?;
    let next = next_path(cfg_path);
    if disk.exists(&next)? {
        let stale = read_all(disk, &next)
            .ok()
            .and_then(|b| parse_config_text(&String::from_utf8_lossy(&b)).ok())
            .is_none_or(|n| n.version <= qc.version);
        if stale {
            disk.remove(&next)?;
        }
    }
    Ok(dynamic)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemDisk;

    const V2: &[u8] = b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183\n\
server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=100000002";

    /// Activation writes the versioned dynamic file with sorted lines and no version, points zoo.cfg at
    /// it without membership keys, and removes a `.dynamic.next` that is not newer.
    #[test]
    fn activation_writes_files_as_zookeeper() {
        let disk = MemDisk::new();
        let cfg = Path::new("/conf/zoo.cfg");
        disk.create_dir_all(Path::new("/conf")).expect("dir");
        disk.create(cfg).expect("create");
        disk.write_at(
            cfg,
            0,
            b"tickTime=2000\nserver.1=127.0.0.1:2888:3888\nclientPort=2181\nreconfigEnabled=true\n",
        )
        .expect("write");
        write_next(&disk, cfg, V2).expect("next");
        let next = read_all(&disk, &next_path(cfg)).expect("read next");
        assert!(String::from_utf8_lossy(&next).ends_with("\nversion=100000002"));
        let dynamic = write_activated(&disk, cfg, V2).expect("activate");
        assert_eq!(dynamic, Path::new("/conf/zoo.cfg.dynamic.100000002"));
        assert_eq!(
            read_all(&disk, &dynamic).expect("read"),
            b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
server.3=127.0.0.1:2890:3890:observer;0.0.0.0:2183"
        );
        assert_eq!(
            String::from_utf8_lossy(&read_all(&disk, cfg).expect("read cfg")),
            "tickTime=2000\nclientPort=2181\nreconfigEnabled=true\n\
             dynamicConfigFile=/conf/zoo.cfg.dynamic.100000002\n"
        );
        assert!(!disk.exists(&next_path(cfg)).expect("exists"));
    }
}
