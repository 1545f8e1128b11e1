//! `redis://` and `rediss://` (Redis, Valkey): the value under a key that expires with the
//! refresh token; the lock is `SET <key>:lock <random> NX PX <lease>`, renewed and released
//! only while its value is still ours. The compare-and-renew, compare-and-release and
//! write-while-locked are `WATCH`/`MULTI`/`EXEC` transactions: nothing needs scripting
//! rights, which ACL users and managed services often lack.
//!
//! One connection per URL per process, shared by every store that names it, and healed
//! here: a connection the server closed (an idle timeout) is replaced and the command sent
//! again; one that could not be made (a refused login) is tried again with back-off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::super::token::to_epoch_secs;
use super::{
    Held, Invalid, Lock, LockInner, Store, StoreError, StoreFuture, Stored, Written, MAX_VALUE,
};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The process's connections, by URL (and extra roots): stores naming the same Redis
/// share one, which goes when the last of them does.
static SHARED: StdMutex<Option<HashMap<String, Weak<Shared>>>> = StdMutex::new(None);

struct Shared {
    client: Client,
    timeout: Duration,
    slot: Mutex<Slot>,
    /// A `WATCH` holds for its connection until `EXEC`: one transaction at a time.
    transactions: Mutex<()>,
}

#[derive(Default)]
struct Slot {
    connection: Option<(MultiplexedConnection, u64)>,
    generation: u64,
    /// After a failed connect: no new try before this, and the wait after the next failure.
    not_before: Option<Instant>,
    backoff: Duration,
    last_failure: Option<StoreError>,
}

impl Shared {
    /// The live connection, or a new one (unless the back-off says wait). The flag says
    /// whether it was just made.
    async fn connection(&self) -> Result<(MultiplexedConnection, u64, bool), StoreError> {
        let mut slot = self.slot.lock().await;
        if let Some((c, generation)) = &slot.connection {
            return Ok((c.clone(), *generation, false));
        }
        if slot.not_before.is_some_and(|t| Instant::now() < t) {
            return Err(slot
                .last_failure
                .clone()
                .unwrap_or_else(|| StoreError("Redis is not reachable".into())));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let made = tokio::time::timeout(
            self.timeout * 2,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| StoreError("Redis did not answer in time".into()))
        .and_then(|r| r.map_err(|e| failure(&e)));
        match made {
            Ok(c) => {
                slot.generation += 1;
                let generation = slot.generation;
                slot.connection = Some((c.clone(), generation));
                slot.not_before = None;
                slot.backoff = Duration::ZERO;
                slot.last_failure = None;
                Ok((c, generation, true))
            }
            Err(e) => {
                slot.backoff = (slot.backoff * 2).clamp(FIRST_BACKOFF, MAX_BACKOFF);
                slot.not_before = Some(Instant::now() + slot.backoff);
                slot.last_failure = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Drops connection `generation` (if it is still the one in use): the next command
    /// makes a new one.
    async fn broken(&self, generation: u64) {
        let mut slot = self.slot.lock().await;
        if slot
            .connection
            .as_ref()
            .is_some_and(|(_, g)| *g == generation)
        {
            slot.connection = None;
        }
    }
}

pub struct RedisStore {
    shared: Arc<Shared>,
    key: String,
    lock_key: String,
    timeout: Duration,
    /// Redis's clock minus ours, from the last read.
    clock: StdMutex<Option<f64>>,
}

/// A command or a pipeline, sent the same way.
#[derive(Clone, Copy)]
enum Request<'a> {
    One(&'a redis::Cmd),
    Many(&'a redis::Pipeline),
}

impl<'a> From<&'a redis::Cmd> for Request<'a> {
    fn from(c: &'a redis::Cmd) -> Self {
        Request::One(c)
    }
}

impl<'a> From<&'a redis::Pipeline> for Request<'a> {
    fn from(p: &'a redis::Pipeline) -> Self {
        Request::Many(p)
    }
}

impl RedisStore {
    /// `ca` adds roots to trust for `rediss://`, as for the token endpoint.
    pub fn new(
        url: &str,
        key: &str,
        ca: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<RedisStore, Invalid> {
        let mut id = Sha256::new();
        id.update(url.as_bytes());
        for bundle in ca {
            id.update([0]);
            id.update(bundle);
        }
        let id: String = id.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        let map = shared.get_or_insert_with(HashMap::new);
        map.retain(|_, s| s.strong_count() > 0);
        let connection = match map.get(&id).and_then(Weak::upgrade) {
            Some(existing) => existing,
            None => {
                let made = Arc::new(Shared {
                    client: client(url, ca)?,
                    timeout,
                    slot: Mutex::new(Slot::default()),
                    transactions: Mutex::new(()),
                });
                map.insert(id, Arc::downgrade(&made));
                made
            }
        };
        Ok(RedisStore {
            shared: connection,
            key: key.to_owned(),
            lock_key: format!("{key}:lock"),
            timeout,
            clock: StdMutex::new(None),
        })
    }

    /// Runs one command (or pipeline) within the store timeout. A connection that turns
    /// out closed (the server's idle timeout, a restart) is replaced and the command sent
    /// once more.
    async fn run<'r, T: redis::FromRedisValue>(
        &self,
        command: impl Into<Request<'r>>,
    ) -> Result<T, StoreError> {
        let command = command.into();
        for again in [false, true] {
            let (mut c, generation, fresh) = self.shared.connection().await?;
            let sent = async {
                match command {
                    Request::One(cmd) => cmd.query_async(&mut c).await,
                    Request::Many(pipe) => pipe.query_async(&mut c).await,
                }
            };
            match tokio::time::timeout(self.timeout, sent).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if lost(&e) => {
                    self.shared.broken(generation).await;
                    if fresh || again {
                        return Err(failure(&e));
                    }
                }
                Ok(Err(e)) => return Err(failure(&e)),
                Err(_) => {
                    self.shared.broken(generation).await;
                    return Err(StoreError("Redis did not answer in time".into()));
                }
            }
        }
        Err(StoreError("Redis is not reachable".into()))
    }

    /// Runs `then` (as one `MULTI`/`EXEC`) only if the lock still holds `id`. False when
    /// it does not, or when it changed hands between the check and the transaction.
    async fn if_locked_by(&self, id: &str, then: &mut redis::Pipeline) -> Result<bool, StoreError> {
        let _one = self.shared.transactions.lock().await;
        let (mut c, generation, _) = self.shared.connection().await?;
        let lock_key = self.lock_key.as_str();
        let step = async {
            // Both pipelines go over this one connection: a WATCH does not follow a
            // reconnect, and an EXEC on another connection would be unconditional.
            let (_, holder): ((), Option<String>) = redis::pipe()
                .cmd("WATCH")
                .arg(lock_key)
                .cmd("GET")
                .arg(lock_key)
                .query_async(&mut c)
                .await?;
            if holder.as_deref() != Some(id) {
                redis::cmd("UNWATCH").query_async::<()>(&mut c).await?;
                return Ok(false);
            }
            let done: redis::Value = then.atomic().query_async(&mut c).await?;
            Ok::<_, RedisError>(!matches!(done, redis::Value::Nil))
        };
        match tokio::time::timeout(self.timeout, step).await {
            Ok(Ok(ours)) => Ok(ours),
            Ok(Err(e)) => {
                if lost(&e) {
                    self.shared.broken(generation).await;
                }
                Err(failure(&e))
            }
            Err(_) => {
                // A WATCH may be left on the connection: it must not carry over.
                self.shared.broken(generation).await;
                Err(StoreError("Redis did not answer in time".into()))
            }
        }
    }
}

fn client(url: &str, ca: &[Vec<u8>]) -> Result<Client, Invalid> {
    let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url)
        .map_err(|_| Invalid::new("is not a usable Redis URL"))?;
    if ca.is_empty() || !url.starts_with("rediss:") {
        Client::open(info)
    } else {
        Client::build_with_tls(
            info,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(roots_pem(ca)),
            },
        )
    }
    .map_err(|_| Invalid::new("is not a usable Redis URL"))
}

/// Whether the connection is gone and must be replaced.
fn lost(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// The failure of a command on a key that holds a hash, a list, … (not a string).
const WRONG_TYPE: &str = "the Redis key holds another type of value";

/// Whether a command met a key of another type (in a pipeline, redis-rs keeps the
/// server's code only in the text).
fn wrong_type(e: &RedisError) -> bool {
    e.code() == Some("WRONGTYPE") || e.to_string().contains("WRONGTYPE")
}

/// What went wrong, in words that hold no secret (a Redis error can quote the URL).
fn failure(e: &RedisError) -> StoreError {
    let text = match e.kind() {
        _ if wrong_type(e) => WRONG_TYPE,
        ErrorKind::AuthenticationFailed => "Redis refused the login",
        ErrorKind::Server(redis::ServerErrorKind::NoPerm) => {
            "Redis refused a command to this user (ACL)"
        }
        ErrorKind::InvalidClientConfig => "the Redis TLS set-up failed",
        _ if e.code() == Some("WRONGPASS") || e.code() == Some("NOAUTH") => {
            "Redis refused the login"
        }
        _ if e.is_timeout() => "Redis did not answer in time",
        ErrorKind::Io => "Redis is not reachable",
        _ if e.is_connection_refusal() || e.is_connection_dropped() => "Redis is not reachable",
        _ => "Redis answered with an error",
    };
    StoreError(text.into())
}

/// The built-in roots (Mozilla's, as for HTTPS) and `ca`, as one PEM bundle: redis-rs takes
/// roots as a bundle that replaces its own.
fn roots_pem(ca: &[Vec<u8>]) -> Vec<u8> {
    let mut pem = Vec::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    for bundle in ca {
        pem.extend_from_slice(bundle);
        pem.push(b'\n');
    }
    pem
}

fn millis(d: Duration) -> u64 {
    d.as_millis().clamp(1, u64::MAX as u128) as u64
}

/// Ours: 32 lowercase hex digits.
fn is_our_lock_value(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store for RedisStore {
    fn read(&self) -> StoreFuture<'_, Stored> {
        Box::pin(async move {
            // GETRANGE copies at most MAX_VALUE + 1 bytes, however large the value is;
            // TIME, in the same round trip, tells how far this machine's clock is off.
            let mut cmd = redis::pipe();
            cmd.cmd("GETRANGE").arg(&self.key).arg(0).arg(MAX_VALUE);
            cmd.cmd("TIME");
            let sent = SystemTime::now();
            let value: Vec<u8> = match self.run::<(Vec<u8>, (u64, u64))>(&cmd).await {
                Ok((value, (secs, micros))) => {
                    let now = to_epoch_secs(SystemTime::now());
                    let mid = (to_epoch_secs(sent) + now) / 2.0;
                    let theirs = secs as f64 + micros as f64 / 1e6;
                    *self.clock.lock().unwrap_or_else(|e| e.into_inner()) = Some(theirs - mid);
                    value
                }
                // Not ours to read; the next write replaces it (SET takes any type).
                Err(e) if e.0 == WRONG_TYPE => {
                    return Ok(Stored::Unusable(super::Degraded::ValueNotOurs))
                }
                Err(e) => return Err(e),
            };
            Ok(if value.is_empty() {
                Stored::Missing
            } else if value.len() > MAX_VALUE {
                Stored::Unusable(super::Degraded::ValueTooLarge)
            } else {
                Stored::Value(value)
            })
        })
    }

    fn write<'a>(
        &'a self,
        value: Vec<u8>,
        ttl: Duration,
        lock: Option<&'a Lock>,
    ) -> StoreFuture<'a, Written> {
        Box::pin(async move {
            match lock.map(|l| &l.0) {
                Some(LockInner::Redis(id)) => {
                    let mut then = redis::pipe();
                    then.cmd("SET")
                        .arg(&self.key)
                        .arg(value)
                        .arg("PX")
                        .arg(millis(ttl))
                        .ignore();
                    Ok(if self.if_locked_by(id, &mut then).await? {
                        Written::Yes
                    } else {
                        Written::LockLost
                    })
                }
                _ => {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&self.key).arg(value).arg("PX").arg(millis(ttl));
                    self.run::<()>(&cmd).await?;
                    Ok(Written::Yes)
                }
            }
        })
    }

    fn try_lock(&self, lease: Duration) -> StoreFuture<'_, Option<Lock>> {
        Box::pin(async move {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).map_err(|_| StoreError("no randomness".into()))?;
            let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let mut cmd = redis::cmd("SET");
            cmd.arg(&self.lock_key)
                .arg(&id)
                .arg("NX")
                .arg("PX")
                .arg(millis(lease));
            let set: Option<String> = self.run(&cmd).await?;
            Ok(set.map(|_| Lock(LockInner::Redis(id))))
        })
    }

    fn renew<'a>(&'a self, lock: &'a Lock, lease: Duration) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let LockInner::Redis(id) = &lock.0 else {
                return Ok(false);
            };
            let mut then = redis::pipe();
            then.cmd("PEXPIRE")
                .arg(&self.lock_key)
                .arg(millis(lease))
                .ignore();
            self.if_locked_by(id, &mut then).await
        })
    }

    fn unlock(&self, lock: Lock) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let LockInner::Redis(id) = &lock.0 else {
                return Ok(false);
            };
            let mut then = redis::pipe();
            then.cmd("DEL").arg(&self.lock_key).ignore();
            self.if_locked_by(id, &mut then).await
        })
    }

    fn clock_offset(&self) -> Option<f64> {
        *self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn held(&self, lease: Duration) -> StoreFuture<'_, Held> {
        Box::pin(async move {
            let mut cmd = redis::pipe();
            cmd.cmd("GET").arg(&self.lock_key);
            cmd.cmd("PTTL").arg(&self.lock_key);
            let (value, ttl): (Option<String>, i64) = match self.run(&cmd).await {
                Ok(answer) => answer,
                Err(e) if e.0 == WRONG_TYPE => {
                    return Ok(Held::Stuck("the lock key holds another type of value"))
                }
                Err(e) => return Err(e),
            };
            Ok(match (value, ttl) {
                (None, _) => Held::Free,
                (Some(_), -1) => Held::Stuck("the lock has no expiry"),
                (Some(v), _) if !is_our_lock_value(&v) => {
                    Held::Stuck("the lock is not one sonetel-auth set")
                }
                (Some(_), ms) if ms > millis(lease + Duration::from_secs(1)) as i64 => {
                    Held::Stuck("the lock outlives this process's lease")
                }
                _ => Held::Leased,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_values_and_failures() {
        assert!(is_our_lock_value("0123456789abcdef0123456789abcdef"));
        assert!(!is_our_lock_value("someone-else"));
        assert!(!is_our_lock_value("0123456789ABCDEF0123456789ABCDEF"));
        let noperm = RedisError::from((
            ErrorKind::Server(redis::ServerErrorKind::NoPerm),
            "NOPERM this user has no permissions to run the 'eval' command",
        ));
        assert_eq!(
            failure(&noperm).0,
            "Redis refused a command to this user (ACL)"
        );
    }

    #[test]
    fn stores_naming_one_url_share_one_connection() {
        let a = RedisStore::new("redis://127.0.0.1:1/9", "a", &[], Duration::from_secs(1)).unwrap();
        let b = RedisStore::new("redis://127.0.0.1:1/9", "b", &[], Duration::from_secs(1)).unwrap();
        let c = RedisStore::new("redis://127.0.0.1:1/8", "a", &[], Duration::from_secs(1)).unwrap();
        assert!(Arc::ptr_eq(&a.shared, &b.shared));
        assert!(!Arc::ptr_eq(&a.shared, &c.shared));
        let weak = Arc::downgrade(&a.shared);
        drop((a, b));
        assert!(
            weak.upgrade().is_none(),
            "the connection goes with the last store"
        );
    }
}
