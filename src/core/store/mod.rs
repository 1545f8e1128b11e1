//! Where a fleet of processes keeps one token: a store behind a small trait (a value with
//! an expiry, and a lock), the encoding of what is stored (the latest token response, its
//! refresh token included, sealed with XChaCha20-Poly1305 when a secret is given), and the
//! store's URL. Redis (`redis://`, `rediss://`) and a file (`file://`) are two modules; a
//! third backend is one more.

#[cfg(unix)]
mod file;
mod redis;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::error::Invalid;
use super::token::TokenResponse;

/// A store operation in flight.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Largest stored value read: a token response is a few KiB; anything bigger is refused
/// before it is read whole (a planted value, a file that never ends).
pub const MAX_VALUE: usize = 1024 * 1024;

/// Why the store could not be used. Its text names no secret (no password of the store's
/// URL): it reaches events and debug output.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A way the store keeps working, but less well than it should: each is a
/// `store-degraded` event whose reason names no secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Degraded {
    /// The lock could not be released (it lapses at the end of its lease).
    LockNotReleased,
    /// The lock has no expiry, is not one of ours, or outlived a lease: this process
    /// fetches on its own until it sees the lock released.
    LockStuck,
    /// The stored value is larger than [`MAX_VALUE`]: not read, overwritten next time.
    ValueTooLarge,
    /// The store path is not a regular file (a FIFO, a device, a directory).
    NotARegularFile,
    /// The lock file was removed or replaced while it was held: the lock did not exclude.
    LockFileReplaced,
    /// The stored value vanished before its time (evicted, flushed, deleted).
    ValueEvicted,
    /// A stored token of another account (its `user_name` claim) under our key.
    ValueNotOurs,
    /// This process held the lock past its lease (it was stopped, or too slow to renew)
    /// and another took it: it did not write its token.
    LeaseLost,
    /// The store's clock is ahead of this machine's (Redis `TIME`): one of them is wrong,
    /// and stored tokens look too old to share.
    ClockBehind,
}

impl Degraded {
    /// The event's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Degraded::LockNotReleased => "lock-not-released",
            Degraded::LockStuck => "lock-stuck",
            Degraded::ValueTooLarge => "value-too-large",
            Degraded::NotARegularFile => "not-a-regular-file",
            Degraded::LockFileReplaced => "lock-file-replaced",
            Degraded::ValueEvicted => "value-evicted",
            Degraded::ValueNotOurs => "value-not-ours",
            Degraded::LeaseLost => "lease-lost",
            Degraded::ClockBehind => "clock-behind",
        }
    }
}

/// What a read found.
#[derive(Debug)]
pub enum Stored {
    Missing,
    Value(Vec<u8>),
    /// Something is there that is not read (too large, not a regular file).
    Unusable(Degraded),
}

/// How a write went.
#[derive(Debug, PartialEq)]
pub enum Written {
    Yes,
    /// The lock it was made under is no longer ours: nothing was written, so a holder
    /// that resumes after its lease lapsed never overwrites a newer token.
    LockLost,
    /// Written, but the lock turned out not to exclude anyone.
    Degraded(Degraded),
}

/// Who holds the lock, as a process waiting for it sees it.
#[derive(Debug, PartialEq)]
pub enum Held {
    Free,
    /// Held under a lease its holder renews.
    Leased,
    /// Held in a way that will not end by itself soon; the text says how.
    Stuck(&'static str),
}

/// Proof of holding the fleet lock, handed back to renew and release it.
pub struct Lock(pub(crate) LockInner);

pub(crate) enum LockInner {
    /// The random value set under the lock key; renewed and released only if it is
    /// still ours.
    Redis(String),
    /// The open lock file; the OS lock goes with it (and with the process, if it dies).
    /// Its device and inode tell whether the path still names it.
    File { file: std::fs::File, id: (u64, u64) },
}

/// A place a fleet of processes shares: one value with an expiry, and one lock held
/// under a lease its holder renews while it works.
pub trait Store: Send + Sync {
    /// The stored value, if there is one (at most [`MAX_VALUE`] bytes).
    fn read(&self) -> StoreFuture<'_, Stored>;
    /// Replaces the value; it expires after `ttl`. With `lock`, only while that lock is
    /// still ours.
    fn write<'a>(
        &'a self,
        value: Vec<u8>,
        ttl: Duration,
        lock: Option<&'a Lock>,
    ) -> StoreFuture<'a, Written>;
    /// Takes the lock for one `lease`, or None if another process holds it.
    fn try_lock(&self, lease: Duration) -> StoreFuture<'_, Option<Lock>>;
    /// Extends the lease; false when the lock is no longer ours.
    fn renew<'a>(&'a self, lock: &'a Lock, lease: Duration) -> StoreFuture<'a, bool>;
    /// Releases the lock if it is still ours; false when it was not.
    fn unlock(&self, lock: Lock) -> StoreFuture<'_, bool>;
    /// How the lock looks to a process that could not take it.
    fn held(&self, lease: Duration) -> StoreFuture<'_, Held>;
    /// The store's clock minus this machine's, in seconds, as last read (Redis `TIME`,
    /// with each read); None when the store has no clock of its own.
    fn clock_offset(&self) -> Option<f64> {
        None
    }
}

/// What a `TokenManager` needs to share its token: the store, the key, the sealing key,
/// and how long a store operation may take before the manager carries on alone.
pub struct StoreConfig {
    pub store: Arc<dyn Store>,
    pub sealing: Option<Sealing>,
    /// Authenticated with the sealed value, so a value cannot be moved to another key.
    pub key: String,
    /// Whose token it is (the [`default_key`] of its token URL and user name, whatever
    /// `key` is): written with the token and checked on every read, so that managers of
    /// two accounts given the same file or key never take each other's token.
    pub owner: String,
    pub timeout: Duration,
    /// How long the lock is held without a renewal.
    pub lease: Duration,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("key", &self.key)
            .field("sealed", &self.sealing.is_some())
            .finish_non_exhaustive()
    }
}

/// The sealing key for `storeSecret`, derived on first use: a passphrase goes through
/// Argon2id, which takes tens of milliseconds and must not run on the JavaScript thread.
pub struct Sealing {
    passphrase: Option<(Zeroizing<Vec<u8>>, String)>,
    key: tokio::sync::OnceCell<Zeroizing<[u8; 32]>>,
}

impl Sealing {
    /// Checks `secret` now (32 bytes, or a passphrase of 8 characters or more); a
    /// passphrase is derived later, by [`Sealing::key`].
    pub fn new(
        secret: Zeroizing<Vec<u8>>,
        is_passphrase: bool,
        key: &str,
    ) -> Result<Sealing, Invalid> {
        if !is_passphrase {
            if secret.len() != 32 {
                return Err(Invalid::new("must be 32 bytes, or a passphrase string"));
            }
            let mut out = Zeroizing::new([0u8; 32]);
            out.copy_from_slice(&secret);
            return Ok(Sealing {
                passphrase: None,
                key: tokio::sync::OnceCell::new_with(Some(out)),
            });
        }
        if secret.len() < 8 {
            return Err(Invalid::new(
                "as a passphrase must be at least 8 characters",
            ));
        }
        Ok(Sealing {
            passphrase: Some((secret, key.to_owned())),
            key: tokio::sync::OnceCell::new(),
        })
    }

    /// The 32-byte key, derived off the runtime's worker the first time.
    pub async fn key(&self) -> Result<&[u8; 32], StoreError> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let (secret, salt_key) = self
                    .passphrase
                    .clone()
                    .ok_or_else(|| StoreError("no sealing key".into()))?;
                tokio::task::spawn_blocking(move || derive_key(&secret, &salt_key))
                    .await
                    .map_err(|_| StoreError("the sealing key could not be derived".into()))?
                    .map_err(|_| StoreError("the sealing key could not be derived".into()))
            })
            .await?;
        Ok(key)
    }
}

/// Where to share, before it is opened: a checked URL.
pub enum StoreUrl {
    Redis(String),
    File(std::path::PathBuf),
}

impl StoreUrl {
    /// Checks a `store` URL: `redis://`, `rediss://` or `file:///absolute/path`.
    pub fn parse(raw: &str) -> Result<StoreUrl, Invalid> {
        let url = url::Url::parse(raw).map_err(|_| Invalid::new("is not a valid URL"))?;
        match url.scheme() {
            "redis" | "rediss" => {
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(Invalid::new("has no host"));
                }
                Ok(StoreUrl::Redis(raw.to_owned()))
            }
            "file" => {
                if url
                    .host_str()
                    .is_some_and(|h| !h.is_empty() && h != "localhost")
                {
                    return Err(Invalid::new(
                        "must be file:///absolute/path (a file on this machine)",
                    ));
                }
                let path = url
                    .to_file_path()
                    .map_err(|_| Invalid::new("must be file:///absolute/path"))?;
                if path.as_os_str().as_encoded_bytes().contains(&0) {
                    return Err(Invalid::new("has a NUL character in its path"));
                }
                if url.path().ends_with('/') || path.file_name().is_none() {
                    return Err(Invalid::new("must name a file, not a directory"));
                }
                Ok(StoreUrl::File(path))
            }
            _ => Err(Invalid::new(
                "must be a redis://, rediss:// or file:/// URL",
            )),
        }
    }

    /// Opens the store for `key`. `ca` adds roots to trust for `rediss://` (as for the
    /// token endpoint).
    pub fn open(
        self,
        key: &str,
        ca: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<Arc<dyn Store>, Invalid> {
        Ok(match self {
            StoreUrl::Redis(url) => Arc::new(redis::RedisStore::new(&url, key, ca, timeout)?),
            #[cfg(unix)]
            StoreUrl::File(path) => Arc::new(file::FileStore::new(path)),
            #[cfg(not(unix))]
            StoreUrl::File(_) => {
                return Err(Invalid::new(
                    "is a file:// store, which needs Linux or macOS; use redis:// or rediss://",
                ))
            }
        })
    }

    /// Whether what crosses the network to this store is readable on the way: plain
    /// `redis://` to a host other than this machine.
    pub fn in_clear_off_machine(&self) -> bool {
        let StoreUrl::Redis(raw) = self else {
            return false;
        };
        let Ok(url) = url::Url::parse(raw) else {
            return false;
        };
        if url.scheme() != "redis" {
            return false;
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
            // redis: is not a special scheme: the url crate leaves an IPv4 host as text.
            // Only `localhost` itself: other `.localhost` names go to DNS, which a search
            // domain or a wildcard can send anywhere.
            Some(url::Host::Domain(name)) => match name.parse::<std::net::IpAddr>() {
                Ok(ip) => !ip.is_loopback(),
                Err(_) => !matches!(
                    name.to_ascii_lowercase().as_str(),
                    "localhost" | "localhost."
                ),
            },
            None => true,
        }
    }
}

/// The default key, and the owner written with every value: the token URL and the user
/// name hashed together, never the name itself.
pub fn default_key(token_url: &str, username: &str) -> String {
    let digest = Sha256::digest(format!("{token_url}\0{username}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("sonetel-auth:v1:{hex}")
}

/// The sealing key for a passphrase `storeSecret` (checked by [`Sealing::new`]): Argon2id,
/// salted with the store key (every process of the fleet derives the same key).
fn derive_key(passphrase: &[u8], key: &str) -> Result<Zeroizing<[u8; 32]>, Invalid> {
    let mut out = Zeroizing::new([0u8; 32]);
    let salt = Sha256::digest(format!("sonetel-auth store salt\0{key}").as_bytes());
    // OWASP's minimum for Argon2id: 19 MiB, 2 passes. Once per manager.
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32))
        .map_err(|_| Invalid::new("could not be derived"))?;
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase, &salt, out.as_mut())
        .map_err(|_| Invalid::new("could not be derived"))?;
    Ok(out)
}

const SEALED_PREFIX: &str = "sonetel-auth.sealed.v1.";

/// The value to store for `token`: an envelope with the token response, sealed when there
/// is a sealing key. No clock skew goes with it: skew belongs to one machine's clock, and
/// a writer's is never right for a reader.
pub fn encode(
    token: &TokenResponse,
    sealing: Option<&[u8; 32]>,
    key: &str,
    owner: &str,
) -> Option<Vec<u8>> {
    let token: Value = serde_json::from_str(token.json()).ok()?;
    let envelope =
        Zeroizing::new(serde_json::json!({ "v": 1, "owner": owner, "token": token }).to_string());
    let Some(sealing) = sealing else {
        return Some(envelope.as_bytes().to_vec());
    };
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce).ok()?;
    let cipher = XChaCha20Poly1305::new(sealing.into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: envelope.as_bytes(),
                aad: key.as_bytes(),
            },
        )
        .ok()?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Some(format!("{SEALED_PREFIX}{text}").into_bytes())
}

/// A stored token, or None for anything else: an empty key, a value of another program or
/// another account, one sealed with another secret, one not sealed when we seal (an
/// attacker's plain value must not be taken for ours). A `skew` written by an older
/// version is ignored.
pub fn decode(
    value: &[u8],
    sealing: Option<&[u8; 32]>,
    key: &str,
    owner: &str,
) -> Option<TokenResponse> {
    let envelope = match sealing {
        None => Zeroizing::new(String::from_utf8(value.to_vec()).ok()?),
        Some(sealing) => {
            let text = std::str::from_utf8(value)
                .ok()?
                .strip_prefix(SEALED_PREFIX)?;
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text)
                .ok()?;
            if bytes.len() < 24 {
                return None;
            }
            let (nonce, sealed) = bytes.split_at(24);
            let cipher = XChaCha20Poly1305::new(sealing.into());
            let plain = cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: key.as_bytes(),
                    },
                )
                .ok()?;
            Zeroizing::new(String::from_utf8(plain).ok()?)
        }
    };
    let mut parsed: Value = serde_json::from_str(&envelope).ok()?;
    if parsed.get("v")?.as_u64()? != 1 || parsed.get("owner")?.as_str()? != owner {
        return None;
    }
    let token = parsed.get_mut("token")?.take();
    TokenResponse::from_stored(Zeroizing::new(token.to_string()).to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenResponse {
        TokenResponse::from_stored(
            r#"{"access_token":"a.b.c","refresh_token":"r.s.t","extra":1}"#.into(),
        )
        .unwrap()
    }

    #[test]
    fn plain_and_sealed_values_round_trip() {
        let plain = encode(&token(), None, "k", "me").unwrap();
        assert!(!String::from_utf8_lossy(&plain).contains("skew"));
        let back = decode(&plain, None, "k", "me").unwrap();
        assert_eq!(back.access_token(), "a.b.c");
        assert_eq!(back.refresh_token(), Some("r.s.t"));

        let secret = [7u8; 32];
        let sealed = encode(&token(), Some(&secret), "k", "me").unwrap();
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(!text.contains("a.b.c") && !text.contains("r.s.t"));
        assert!(decode(&sealed, Some(&secret), "k", "me").is_some());
        assert!(
            decode(&sealed, Some(&[8u8; 32]), "k", "me").is_none(),
            "another secret"
        );
        assert!(
            decode(&sealed, Some(&secret), "other", "me").is_none(),
            "another key"
        );
        assert!(
            decode(&plain, Some(&secret), "k", "me").is_none(),
            "plain where we seal"
        );
        assert!(
            decode(&plain, None, "k", "someone else").is_none(),
            "another account"
        );
        assert!(decode(b"garbage", None, "k", "me").is_none());
        assert!(decode(br#"{"v":2,"token":{}}"#, None, "k", "me").is_none());
    }

    #[test]
    fn urls_and_keys() {
        assert!(matches!(
            StoreUrl::parse("redis://127.0.0.1:6379/2"),
            Ok(StoreUrl::Redis(_))
        ));
        assert!(matches!(
            StoreUrl::parse("rediss://u:p@cache.example:6380"),
            Ok(StoreUrl::Redis(_))
        ));
        assert!(matches!(
            StoreUrl::parse("file:///var/run/token.json"),
            Ok(StoreUrl::File(_))
        ));
        for bad in [
            "memcached://x",
            "file://host/x",
            "file:///",
            "file:///tmp/",
            "file:///tmp/a%00b",
            "redis://",
            "not a url",
            "https://x",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
        for (url, clear) in [
            ("redis://10.0.0.5:6379", true),
            ("redis://cache.example", true),
            ("redis://127.0.0.1:6379", false),
            ("redis://127.8.9.1", false),
            ("redis://[::1]:6379", false),
            ("redis://localhost", false),
            ("redis://LOCALHOST.", false),
            ("redis://evil.localhost", true),
            ("redis://evil.com%2f.localhost", true),
            ("redis://127.0.0.1.nip.io", true),
            ("rediss://cache.example", false),
            ("file:///tmp/x", false),
        ] {
            assert_eq!(
                StoreUrl::parse(url).unwrap().in_clear_off_machine(),
                clear,
                "{url}"
            );
        }
        let key = default_key("https://api.sonetel.com/t", "me@example.com");
        assert!(key.starts_with("sonetel-auth:v1:") && !key.contains("me@example"));
        assert_ne!(
            key,
            default_key("https://api.sonetel.com/t", "you@example.com")
        );
    }

    #[test]
    fn passphrases_go_through_argon2() {
        let a = derive_key(b"correct horse", "k").unwrap();
        assert_eq!(*a, *derive_key(b"correct horse", "k").unwrap());
        assert_ne!(*a, *derive_key(b"correct horse", "k2").unwrap());
        let sealing = |secret: &[u8], passphrase| {
            Sealing::new(Zeroizing::new(secret.to_vec()), passphrase, "k")
        };
        assert!(sealing(b"short", true).is_err());
        assert!(sealing(&[1u8; 31], false).is_err());
        assert_eq!(
            **sealing(&[1u8; 32], false).unwrap().key.get().unwrap(),
            [1u8; 32]
        );
    }
}
