//! docs/configuration.md stays in step with the key table: every key outpost knows has a row there,
//! with the same default and status.

use outpost_conf::keys::{Status, KEYS};
use std::path::Path;

/// Every known key has a table row naming its status, and its default when it has a plain one.
#[test]
fn every_key_is_documented() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let text = std::fs::read_to_string(&path).expect("read docs/configuration.md");
    for def in KEYS {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", def.name)))
            .unwrap_or_else(|| panic!("no row for {}", def.name));
        let status = match def.status {
            Status::Honoured => "| honoured |",
            Status::Accepted => "| accepted, not yet used |",
        };
        assert!(row.ends_with(status), "{}: status differs: {row}", def.name);
        if !def.default.is_empty()
            && !matches!(
                def.name,
                "minSessionTimeout" | "maxSessionTimeout" | "initLimit" | "syncLimit"
            )
        {
            assert!(
                row.contains(&format!("`{}`", def.default)),
                "{}: default differs: {row}",
                def.name
            );
        }
    }
}
