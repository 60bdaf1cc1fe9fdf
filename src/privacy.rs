//! Keyed hashing of personal data (buyer emails, names, phones, street addresses, IPs, postal codes).
//!
//! Owns: the hashing key and its file. The key is created on first use in a local config file, so
//! the same buyer gets the same hash next month, and nobody without the key can test a guessed email
//! against a published report. Must not: ever return or log the raw value.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::ingest::schema::Key;

/// A hash as a key: 0 (one value in 2^64) is taken as 1.
fn nonzero(k: u64) -> Key {
    Key::new(k).unwrap_or(Key::MIN)
}

/// The key of a finished hash: its first 8 bytes, big-endian.
fn first_key(h: &blake3::Hasher) -> Key {
    let out = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&out.as_bytes()[..8]);
    nonzero(u64::from_be_bytes(first))
}

/// A keyed hasher (BLAKE3 keyed mode).
#[derive(Clone)]
pub struct Hasher {
    key: [u8; 32],
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(<key hidden>)")
    }
}

impl Hasher {
    /// A hasher with the given key.
    pub fn with_key(key: [u8; 32]) -> Self {
        Hasher { key }
    }

    /// Hash one personal value of the given kind (`email`, `name`, `ip`, `postal`, …). Values are
    /// normalised first (trimmed, lower case) so cosmetic differences do not split one person.
    /// Returns `None` for empty values. Printed form: `h:` + 16 hex digits (`key` as hex).
    pub fn hash(&self, kind: &str, value: &str) -> Option<crate::ingest::schema::Id> {
        // 18 bytes: stored inline in an `Id`, no allocation per hashed value.
        self.key(kind, value)
            .map(|k| compact_str::format_compact!("h:{:016x}", k.get()))
    }

    /// The 64-bit keyed hash behind `hash` (the first 8 bytes of the BLAKE3 output; 0, one value
    /// in 2^64, is read as 1 so a key fits an `Option` in 8 bytes).
    pub fn key(&self, kind: &str, value: &str) -> Option<Key> {
        let v = value.trim();
        if v.is_empty() {
            return None;
        }
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(kind.as_bytes());
        h.update(&[0]);
        if v.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            h.update(v.to_lowercase().as_bytes());
        } else {
            h.update(v.as_bytes());
        }
        Some(first_key(&h))
    }

    /// A key column given as is (`buyer_key` in a mapping): its own `h:` form read back, any other
    /// value hashed exactly (no normalisation: it is an opaque id).
    pub fn key_of_column(&self, value: &str) -> Option<Key> {
        let v = value.trim();
        if let Some(hex) = v.strip_prefix("h:").filter(|h| h.len() == 16) {
            if let Ok(k) = u64::from_str_radix(hex, 16) {
                return Some(nonzero(k));
            }
        }
        if v.is_empty() {
            return None;
        }
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"key\0");
        h.update(v.as_bytes());
        Some(first_key(&h))
    }

    /// An id column that holds personal data (a review app exporting the buyer's email as the
    /// reviewer id, an IP as the author): the kind to hash it as, or `None` for an ordinary id.
    pub fn personal_kind(value: &str) -> Option<&'static str> {
        let v = value.trim();
        // Ordinary ids (ASINs, order and review ids, account ids) have none of these: one
        // vectorised search settles them.
        memchr::memchr3(b'@', b'.', b':', v.as_bytes())?;
        if let Some((local, domain)) = v.split_once('@') {
            let dot = domain.rfind('.');
            if !local.is_empty()
                && !v.contains(char::is_whitespace)
                && dot.is_some_and(|d| d > 0 && d + 1 < domain.len())
            {
                return Some("email");
            }
        }
        // An IP address has a dot (v4) or a colon (v6): other ids are not parsed.
        if v.contains(['.', ':']) && v.parse::<std::net::IpAddr>().is_ok() {
            return Some("ip");
        }
        None
    }

    /// Load the key from `path`, creating the file with a fresh random key if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read hashing key file {}", path.display()))?;
            let key = parse_key(text.trim()).with_context(|| {
                format!("hashing key file {} is not 64 hex digits", path.display())
            })?;
            return Ok(Hasher { key });
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create config folder {}", dir.display()))?;
        }
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(path, format!("{hex}\n"))
            .with_context(|| format!("cannot write hashing key file {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Hasher { key })
    }
}

fn parse_key(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, k) in key.iter_mut().enumerate() {
        *k = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// Where the key lives: `REVAUDIT_KEY_FILE`, else `$XDG_CONFIG_HOME/revaudit/hash.key`, else
/// `~/.config/revaudit/hash.key`, else `.revaudit/hash.key` in the working folder.
pub fn default_key_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REVAUDIT_KEY_FILE") {
        return PathBuf::from(p);
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("revaudit").join("hash.key");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h)
            .join(".config")
            .join("revaudit")
            .join("hash.key");
    }
    PathBuf::from(".revaudit").join("hash.key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_ids_are_recognised() {
        assert_eq!(Hasher::personal_kind("Jane.Doe@example.com"), Some("email"));
        assert_eq!(Hasher::personal_kind("203.0.113.7"), Some("ip"));
        assert_eq!(Hasher::personal_kind("2001:db8::1"), Some("ip"));
        assert_eq!(Hasher::personal_kind("AGKHLEW2SOWHNMFQIJGBECAF7INQ"), None);
        assert_eq!(Hasher::personal_kind("@handle"), None);
        assert_eq!(Hasher::personal_kind("a@b"), None);
    }

    #[test]
    fn hash_is_keyed_normalised_and_opaque() {
        let a = Hasher::with_key([1; 32]);
        let b = Hasher::with_key([2; 32]);
        let x = a.hash("email", " Buyer@Example.com ").unwrap();
        assert_eq!(x, a.hash("email", "buyer@example.com").unwrap());
        assert_ne!(x, b.hash("email", "buyer@example.com").unwrap());
        assert_ne!(x, a.hash("name", "buyer@example.com").unwrap());
        assert!(!x.contains("example"));
        assert_eq!(a.hash("email", "  "), None);
    }

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("hash.key");
        let h1 = Hasher::load_or_create(&p).unwrap();
        let h2 = Hasher::load_or_create(&p).unwrap();
        assert_eq!(h1.hash("ip", "10.0.0.1"), h2.hash("ip", "10.0.0.1"));
        std::fs::write(&p, "nonsense").unwrap();
        assert!(Hasher::load_or_create(&p).is_err());
    }
}
