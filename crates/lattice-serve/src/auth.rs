//! API keys with scopes. Keys are stored as SHA-256 hashes (a config file or the
//! `LATTICE_API_KEYS` environment variable) and compared in constant time.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Score,
    Audience,
    Events,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "score" => Some(Scope::Score),
            "audience" => Some(Scope::Audience),
            "events" => Some(Scope::Events),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Score => "score",
            Scope::Audience => "audience",
            Scope::Events => "events",
            Scope::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds the key (appears in logs instead of the key).
    pub name: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(rename = "key", default)]
    keys: Vec<ApiKey>,
}

/// The configured keys, with their hashes decoded.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    keys: Vec<(ApiKey, [u8; 32])>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No key, or a key that matches none: 401.
    Unauthenticated,
    /// A valid key without the scope: 403.
    Forbidden,
}

/// A key configuration that cannot be used; says which file or entry and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}", path = .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}", path = .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// A key of the file at `path` is wrong.
    #[error("{path}: {source}", path = .path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<KeyError>,
    },
    #[error("key {name:?}: sha256 must be 64 hex digits (the SHA-256 of the key)")]
    BadHash { name: String },
    #[error("key {name:?}: no scopes")]
    NoScopes { name: String },
    #[error("LATTICE_API_KEYS entry {entry}: expected name:sha256:scope+scope")]
    EntryShape { entry: usize },
    #[error(
        "LATTICE_API_KEYS entry {entry} ({name}): unknown scope {scope:?} \
         (expected score, audience, events or admin)"
    )]
    UnknownScope {
        entry: usize,
        name: String,
        scope: String,
    },
}

pub fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Equal without an early exit, so the time taken does not say how many bytes matched.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl ApiKeys {
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, KeyError> {
        let mut out = Vec::new();
        for k in keys {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(&k.sha256, &mut hash).map_err(|_| KeyError::BadHash {
                name: k.name.clone(),
            })?;
            if k.scopes.is_empty() {
                return Err(KeyError::NoScopes { name: k.name });
            }
            out.push((k, hash));
        }
        Ok(ApiKeys { keys: out })
    }

    /// `[[key]]` tables with `name`, `sha256` and `scopes`.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let f: KeysFile = toml::from_str(&text).map_err(|source| KeyError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        Self::new(f.keys).map_err(|e| KeyError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// `name:sha256:scope+scope` entries separated by commas (the `LATTICE_API_KEYS` format).
    pub fn from_env_value(value: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (i, entry) in value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let parts: Vec<&str> = entry.split(':').collect();
            let [name, sha256, scopes] = parts[..] else {
                return Err(KeyError::EntryShape { entry: i + 1 });
            };
            let scopes = scopes
                .split('+')
                .map(|s| {
                    Scope::parse(s).ok_or_else(|| KeyError::UnknownScope {
                        entry: i + 1,
                        name: name.to_string(),
                        scope: s.to_string(),
                    })
                })
                .collect::<Result<_, _>>()?;
            keys.push(ApiKey {
                name: name.to_string(),
                sha256: sha256.to_string(),
                scopes,
            });
        }
        Self::new(keys)
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn extend(&mut self, other: ApiKeys) {
        self.keys.extend(other.keys);
    }

    /// The name of the key holder if `presented` is a key with `scope`. Every key is compared,
    /// so the time does not depend on which one matched.
    pub fn check(&self, presented: Option<&str>, scope: Scope) -> Result<&str, Denied> {
        let Some(presented) = presented else {
            return Err(Denied::Unauthenticated);
        };
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (k, hash) in &self.keys {
            if ct_eq(&digest, hash) {
                found = Some(k);
            }
        }
        match found {
            None => Err(Denied::Unauthenticated),
            Some(k) if k.scopes.contains(&scope) => Ok(&k.name),
            Some(_) => Err(Denied::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::from_env_value(&format!(
            "crm:{}:score,ops:{}:admin+score",
            sha256_hex("k1"),
            sha256_hex("k2")
        ))
        .unwrap()
    }

    #[test]
    fn scopes_are_enforced() {
        let k = keys();
        assert_eq!(k.check(Some("k1"), Scope::Score), Ok("crm"));
        assert_eq!(k.check(Some("k1"), Scope::Admin), Err(Denied::Forbidden));
        assert_eq!(k.check(Some("k2"), Scope::Admin), Ok("ops"));
        assert_eq!(
            k.check(Some("nope"), Scope::Score),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(k.check(None, Scope::Score), Err(Denied::Unauthenticated));
    }

    #[test]
    fn bad_configuration_is_named() {
        let e = ApiKeys::from_env_value("crm:abc:score")
            .unwrap_err()
            .to_string();
        assert!(e.contains("crm") && e.contains("64 hex"), "{e}");
        let e = ApiKeys::from_env_value(&format!("crm:{}:everything", sha256_hex("x")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("everything"), "{e}");
        let e = ApiKeys::from_env_value("just-a-key")
            .unwrap_err()
            .to_string();
        assert!(e.contains("entry 1"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.toml");
        std::fs::write(
            &p,
            "[[key]]\nname = \"a\"\nsha256 = \"00\"\nscopes = [\"score\"]\n",
        )
        .unwrap();
        let e = ApiKeys::from_file(&p).unwrap_err().to_string();
        assert!(e.contains("keys.toml") && e.contains("\"a\""), "{e}");
    }
}
