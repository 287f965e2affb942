//! ACL evaluation and the built-in auth providers: `ZooKeeperServer.checkACL`, the `digest` provider
//! (`DigestAuthenticationProvider`: id = `user:base64(sha1(user:password))`, super digest), the `ip`
//! provider (`IPAuthenticationProvider`: `addr[/bits]`, IPv4 and IPv6), and `PrepRequestProcessor.fixupACL`.
//!
//! Pure functions over values: the connection's auth ids come in as a slice, the configuration as an
//! [`AuthConfig`]. SASL and x509 handshakes are not here; their ids (if a shell adds them) are matched by
//! exact string equality when the scheme is listed in [`AuthConfig::extra_schemes`].

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use crate::proto::{perms, Acl, ErrorCode, Id};

/// ACL-related server settings (ZooKeeper system properties).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `zookeeper.skipACL=yes`: every permission check passes.
    pub skip_acl: bool,
    /// `zookeeper.DigestAuthenticationProvider.superDigest`: `user:base64hash`; a digest auth that yields
    /// exactly this id also gains `super:`.
    pub super_digest: Option<String>,
    /// Schemes of additionally registered providers (`zookeeper.authProvider.N`, e.g. `sasl`, `x509`):
    /// ACL ids of these schemes are accepted by fix-up and matched by string equality.
    pub extra_schemes: Vec<String>,
}

/// `DigestAuthenticationProvider.generateDigest`: `user + ":" + base64(sha1("user:password"))`, where
/// `user` is the text before the first `:` (the whole string if there is none).
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// What a `digest` auth packet adds to the connection (`DigestAuthenticationProvider.handleAuthentication`):
/// `super:` first when the digest equals the configured super digest, then `digest:<id>`. Digest auth
/// never fails. Java decodes the bytes with the platform charset; we decode as UTF-8, lossily.
pub fn digest_auth(auth_data: &[u8], config: &AuthConfig) -> Vec<Id> {
    let text = String::from_utf8_lossy(auth_data);
    let id = digest_id(&text);
    let mut out = Vec::with_capacity(2);
    if config.super_digest.as_deref() == Some(id.as_str()) {
        out.push(Id::new("super", ""));
    }
    out.push(Id::new("digest", id));
    out
}

/// Number of pieces Java's `String.split(regex)` (limit 0) returns for a single-character separator:
/// trailing empty strings are dropped, and a string without the separator yields one piece.
fn java_split_len(s: &str, sep: char) -> usize {
    if !s.contains(sep) {
        return 1;
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.len()
}

/// `DigestAuthenticationProvider.isValid`: `id.split(":")` has exactly two pieces.
pub fn digest_id_is_valid(id: &str) -> bool {
    java_split_len(id, ':') == 2
}

/// `IPAuthenticationProvider.v4addr2Bytes`: four dot-separated decimal bytes (Java's `parseInt`, which
/// also accepts a leading sign, as Rust's `parse` does).
fn v4_bytes(addr: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts
        .iter()
        .map(|p| match p.parse::<i32>() {
            Ok(v) if (0..=255).contains(&v) => Some(v as u8),
            _ => None,
        })
        .collect()
}

/// `IPAuthenticationProvider.parseV6addr` (ZooKeeper 3.9+): eight hex segments, or one `::` standing for
/// the missing zero segments. Embedded IPv4 and zone ids are not accepted, as in Java.
fn v6_bytes(addr: &str) -> Option<Vec<u8>> {
    let halves: Vec<&str> = addr.split("::").collect();
    let (first, second): (Vec<&str>, Vec<&str>) = match halves.as_slice() {
        [whole] => {
            let segs: Vec<&str> = whole.split(':').collect();
            if segs.len() != 8 {
                return None;
            }
            (segs, Vec::new())
        }
        [a, b] => {
            let segs1: Vec<&str> = if a.is_empty() {
                Vec::new()
            } else {
                a.split(':').collect()
            };
            let segs2: Vec<&str> = if b.is_empty() {
                Vec::new()
            } else {
                b.split(':').collect()
            };
            if segs1.len() + segs2.len() >= 8 {
                return None;
            }
            (segs1, segs2)
        }
        _ => return None,
    };
    let mut out = vec![0u8; 16];
    let mut put = |start: usize, segs: &[&str]| -> Option<()> {
        for (k, seg) in segs.iter().enumerate() {
            if seg.is_empty() || seg.len() > 4 {
                return None;
            }
            let v = i32::from_str_radix(seg, 16).ok()?;
            out[start + 2 * k] = ((v >> 8) & 0xff) as u8;
            out[start + 2 * k + 1] = (v & 0xff) as u8;
        }
        Some(())
    };
    put(0, &first)?;
    put(16 - second.len() * 2, &second)?;
    Some(out)
}

/// `IPAuthenticationProvider.addr2Bytes`: IPv6 if the text has a `:`, IPv4 if it has a `.`.
fn addr_bytes(addr: &str) -> Option<Vec<u8>> {
    if addr.contains(':') {
        v6_bytes(addr)
    } else if addr.contains('.') {
        v4_bytes(addr)
    } else {
        None
    }
}

/// Clears every bit after the first `bits` (`IPAuthenticationProvider.mask`).
fn mask(b: &mut [u8], bits: usize) {
    let start = bits / 8;
    let rem = bits % 8;
    for (k, byte) in b.iter_mut().enumerate().skip(start) {
        if k == start && rem != 0 {
            *byte &= !((1u8 << (8 - rem)) - 1);
        } else {
            *byte = 0;
        }
    }
}

/// Parses `addr[/bits]` into masked bytes and the prefix length; `None` when Java's provider rejects it.
fn parse_ip_expr(expr: &str) -> Option<(Vec<u8>, usize)> {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let mut bytes = addr_bytes(addr)?;
    let max = bytes.len() * 8;
    let bits = match bits {
        None => max,
        Some(b) => match b.parse::<i32>() {
            Ok(v) if v >= 0 && (v as usize) <= max => v as usize,
            _ => return None,
        },
    };
    mask(&mut bytes, bits);
    Some((bytes, bits))
}

/// `IPAuthenticationProvider.isValid`: an address with an optional in-range prefix length.
pub fn ip_expr_is_valid(expr: &str) -> bool {
    parse_ip_expr(expr).is_some()
}

/// `IPAuthenticationProvider.matches`: the connection address `id` equals the ACL's `addr/bits` under the
/// mask; IPv4 never matches IPv6.
pub fn ip_matches(id: &str, expr: &str) -> bool {
    let Some((acl_addr, bits)) = parse_ip_expr(expr) else {
        return false;
    };
    let Some(mut remote) = addr_bytes(id) else {
        return false;
    };
    if remote.len() != acl_addr.len() {
        return false;
    }
    mask(&mut remote, bits);
    remote == acl_addr
}

/// Whether a server-side provider exists for `scheme` (ZooKeeper's `ProviderRegistry`: `ip` and `digest`
/// are built in; others only when configured).
fn has_provider(scheme: &str, config: &AuthConfig) -> bool {
    scheme == "ip" || scheme == "digest" || config.extra_schemes.iter().any(|s| s == scheme)
}

/// The provider's `matches(id, aclExpr)`.
fn provider_matches(scheme: &str, id: &str, expr: &str) -> bool {
    match scheme {
        "ip" => ip_matches(id, expr),
        // digest, and the equality-matched extra schemes.
        _ => id == expr,
    }
}

/// `ZooKeeperServer.checkACL`: does a connection with `auth_ids` hold any bit of `perm` on a node with
/// `acl`? Order: skipACL, empty ACL, `super` id, then each entry granting `perm` (world:anyone, or a
/// same-scheme id its provider matches).
pub fn check_acl(
    acl: &[Acl],
    perm: i32,
    auth_ids: &[Id],
    config: &AuthConfig,
) -> Result<(), ErrorCode> {
    if config.skip_acl || acl.is_empty() {
        return Ok(());
    }
    if auth_ids.iter().any(|id| id.scheme == "super") {
        return Ok(());
    }
    for entry in acl {
        if entry.perms & perm == 0 {
            continue;
        }
        if entry.id.scheme == "world" && entry.id.id == "anyone" {
            return Ok(());
        }
        if !has_provider(&entry.id.scheme, config) {
            continue;
        }
        let matched = auth_ids.iter().any(|auth| {
            auth.scheme == entry.id.scheme && provider_matches(&auth.scheme, &auth.id, &entry.id.id)
        });
        if matched {
            return Ok(());
        }
    }
    Err(ErrorCode::NoAuth)
}

/// Whether the provider of `scheme` counts ids of that scheme as "authenticated" for `auth` ACL expansion
/// (`isAuthenticated`): digest yes, ip no; extra schemes (sasl, x509) yes.
fn is_authenticated_scheme(scheme: &str, config: &AuthConfig) -> bool {
    scheme == "digest" || (scheme != "ip" && config.extra_schemes.iter().any(|s| s == scheme))
}

/// `PrepRequestProcessor.fixupACL`: drop duplicates (first occurrence kept), refuse an empty list, keep
/// `world:anyone`, expand each `auth` entry into one entry per authenticated id of the connection (none →
/// INVALIDACL), and require every other id to be valid for its scheme's provider.
pub fn fixup_acl(acl: &[Acl], auth_ids: &[Id], config: &AuthConfig) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let id = &a.id;
        if id.scheme == "world" && id.id == "anyone" {
            out.push(a.clone());
        } else if id.scheme == "auth" {
            let mut any = false;
            for cid in auth_ids {
                if is_authenticated_scheme(&cid.scheme, config) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: cid.clone(),
                    });
                }
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else {
            let valid = match id.scheme.as_str() {
                "ip" => ip_expr_is_valid(&id.id),
                "digest" => digest_id_is_valid(&id.id),
                s => config.extra_schemes.iter().any(|x| x == s),
            };
            if !valid {
                return Err(ErrorCode::InvalidAcl);
            }
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// `getACL` reply redaction (ZOOKEEPER-1392 / CVE-2019-0201 fix): a caller without ADMIN sees each
/// `digest` id as `<user>:x`.
pub fn redact_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl {
                    perms: a.perms,
                    id: Id::new("digest", format!("{user}:x")),
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

/// The permission bits needed for the client-side `getACL`: READ or ADMIN.
pub const GET_ACL_PERMS: i32 = perms::READ | perms::ADMIN;

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id::new(scheme, id),
        }
    }

    /// The digest id matches ZooKeeper's well-known example (`super:test`) and splits on the first `:`.
    #[test]
    fn digest_id_matches_java() {
        // From ZooKeeper's docs: DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
        assert!(digest_id("a:b:c").starts_with("a:"));
        let cfg = AuthConfig {
            super_digest: Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into()),
            ..AuthConfig::default()
        };
        let ids = digest_auth(b"super:test", &cfg);
        assert_eq!(ids[0], Id::new("super", ""));
        assert_eq!(ids.len(), 2);
        assert_eq!(digest_auth(b"bob:pw", &cfg).len(), 1);
    }

    /// Digest id validity follows Java's `split(":")`, which drops trailing empty pieces.
    #[test]
    fn digest_validity_follows_java_split() {
        assert!(digest_id_is_valid("u:h"));
        assert!(digest_id_is_valid(":h"));
        assert!(digest_id_is_valid("u:h:"));
        assert!(!digest_id_is_valid("u:"));
        assert!(!digest_id_is_valid("u"));
        assert!(!digest_id_is_valid("u:h:x"));
        assert!(!digest_id_is_valid(""));
    }

    /// IPv4 and IPv6 expressions with prefix lengths match as Java masks them; v4 never matches v6.
    #[test]
    fn ip_matching() {
        assert!(ip_matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!ip_matches("11.1.2.3", "10.0.0.0/8"));
        assert!(ip_matches("192.168.1.77", "192.168.1.64/26"));
        assert!(!ip_matches("192.168.1.128", "192.168.1.64/26"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_matches("1.2.3.4", "0.0.0.0/0"));
        assert!(ip_matches("0:0:0:0:0:0:0:1", "::1"));
        assert!(ip_matches("fe80:0:0:0:1:2:3:4", "fe80::/10"));
        assert!(!ip_matches("fec0:0:0:0:1:2:3:4", "fe80::/10"));
        assert!(!ip_matches("0:0:0:0:0:0:0:1", "0.0.0.1"));
        assert!(!ip_matches("1.2.3.4", "1.2.3.4/33"));
        assert!(ip_expr_is_valid("::"));
        assert!(ip_expr_is_valid("1::2:3"));
        assert!(!ip_expr_is_valid("1::2::3"));
        assert!(!ip_expr_is_valid("1:2:3:4:5:6:7:8:9"));
        assert!(!ip_expr_is_valid("1:2:3:4::5:6:7:8"));
        assert!(!ip_expr_is_valid("12345::"));
        assert!(!ip_expr_is_valid("localhost"));
        assert!(!ip_expr_is_valid("1.2.3"));
        assert!(!ip_expr_is_valid("1.2.3.256"));
        assert!(!ip_expr_is_valid("1.2.3.4/-1"));
    }

    /// checkACL: skipACL, empty ACL and super always pass; otherwise some entry with the bit must match.
    #[test]
    fn check_acl_order() {
        let cfg = AuthConfig::default();
        let me = vec![Id::new("ip", "10.0.0.5"), Id::new("digest", "bob:h")];
        let node = vec![
            acl(perms::READ, "digest", "bob:h"),
            acl(perms::ALL, "ip", "10.0.0.0/24"),
        ];
        assert_eq!(check_acl(&node, perms::READ, &me, &cfg), Ok(()));
        assert_eq!(check_acl(&node, perms::ADMIN, &me, &cfg), Ok(()));
        let other = vec![Id::new("ip", "10.0.1.5")];
        assert_eq!(
            check_acl(&node, perms::ADMIN, &other, &cfg),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check_acl(&[], perms::ADMIN, &other, &cfg), Ok(()));
        let sup = vec![Id::new("super", "")];
        assert_eq!(check_acl(&node, perms::ADMIN, &sup, &cfg), Ok(()));
        let skip = AuthConfig {
            skip_acl: true,
            ..AuthConfig::default()
        };
        assert_eq!(check_acl(&node, perms::ADMIN, &other, &skip), Ok(()));
        assert_eq!(
            check_acl(&Acl::read_unsafe(), perms::WRITE, &me, &cfg),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(
            check_acl(&Acl::read_unsafe(), perms::READ, &[], &cfg),
            Ok(())
        );
    }

    /// fixupACL: duplicates removed, auth expanded to authenticated ids only, invalid ids refused.
    #[test]
    fn fixup_acl_rules() {
        let cfg = AuthConfig::default();
        let ids = vec![Id::new("ip", "1.2.3.4"), Id::new("digest", "bob:h")];
        let out = fixup_acl(
            &[
                acl(31, "world", "anyone"),
                acl(31, "world", "anyone"),
                acl(1, "auth", ""),
            ],
            &ids,
            &cfg,
        );
        assert_eq!(
            out,
            Ok(vec![acl(31, "world", "anyone"), acl(1, "digest", "bob:h")])
        );
        assert_eq!(fixup_acl(&[], &ids, &cfg), Err(ErrorCode::InvalidAcl));
        let ip_only = vec![Id::new("ip", "1.2.3.4")];
        assert_eq!(
            fixup_acl(&[acl(1, "auth", "")], &ip_only, &cfg),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(1, "digest", "nocolon")], &ids, &cfg),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(1, "world", "someone")], &ids, &cfg),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(1, "sasl", "bob")], &ids, &cfg),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup_acl(&[acl(1, "ip", "10.0.0.0/8")], &ids, &cfg).map(|v| v.len()),
            Ok(1)
        );
        let sasl = AuthConfig {
            extra_schemes: vec!["sasl".into()],
            ..AuthConfig::default()
        };
        assert!(fixup_acl(&[acl(1, "sasl", "bob")], &ids, &sasl).is_ok());
    }

    /// getACL redaction hides everything after the user name of digest ids.
    #[test]
    fn redaction() {
        let out = redact_digests(&[acl(31, "digest", "bob:abc=="), acl(1, "ip", "1.2.3.4")]);
        assert_eq!(out[0].id.id, "bob:x");
        assert_eq!(out[1].id.id, "1.2.3.4");
    }
}
