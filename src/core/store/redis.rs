//! `redis://` and `rediss://` (Redis, Valkey): the value under a key that expires with the
//! refresh token; the lock is `SET <key>:lock <random> NX PX <ttl>`, released only if the
//! value is still ours (one atomic script), so a holder that died loses it after `ttl`.
//! One connection manager per store reconnects on its own; every operation is bounded by
//! the store timeout, and a failure reaches the manager, which then carries on alone.

use std::time::{Duration, Instant};

use base64::Engine;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError};
use tokio::sync::Mutex;

use super::{Invalid, Lock, LockInner, Store, StoreError, StoreFuture};

/// Deletes the lock only if it still holds our value.
const UNLOCK: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

pub struct RedisStore {
    client: Client,
    key: String,
    lock_key: String,
    timeout: Duration,
    /// Made on first use; made again after a connection could not be made at all, at most
    /// once a second.
    connection: Mutex<(Option<ConnectionManager>, Option<Instant>)>,
}

impl RedisStore {
    /// `ca` adds roots to trust for `rediss://`, as for the token endpoint.
    pub fn new(
        url: &str,
        key: &str,
        ca: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<RedisStore, Invalid> {
        let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|_| Invalid::new("is not a usable Redis URL"))?;
        let client = if ca.is_empty() || !url.starts_with("rediss:") {
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
        .map_err(|_| Invalid::new("is not a usable Redis URL"))?;
        Ok(RedisStore {
            client,
            key: key.to_owned(),
            lock_key: format!("{key}:lock"),
            timeout,
            connection: Mutex::new((None, None)),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = &slot.0 {
            return Ok(c.clone());
        }
        if slot
            .1
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return Err(StoreError("Redis is not reachable".into()));
        }
        slot.1 = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let manager = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .map_err(|_| StoreError("Redis did not answer in time".into()))?
        .map_err(|e| failure(&e))?;
        slot.0 = Some(manager.clone());
        Ok(manager)
    }

    /// Runs one command within the store timeout.
    async fn run<T: redis::FromRedisValue>(&self, command: redis::Cmd) -> Result<T, StoreError> {
        let mut c = self.connection().await?;
        tokio::time::timeout(self.timeout, command.query_async(&mut c))
            .await
            .map_err(|_| StoreError("Redis did not answer in time".into()))?
            .map_err(|e| failure(&e))
    }
}

/// What went wrong, in words that hold no secret (a Redis error can quote the URL).
fn failure(e: &RedisError) -> StoreError {
    let text = match e.kind() {
        ErrorKind::AuthenticationFailed => "Redis refused the login",
        ErrorKind::Io => "Redis is not reachable",
        ErrorKind::InvalidClientConfig => "the Redis TLS set-up failed",
        _ if e.is_timeout() => "Redis did not answer in time",
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

impl Store for RedisStore {
    fn read(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        Box::pin(self.run(redis::cmd("GET").arg(&self.key).clone()))
    }

    fn write(&self, value: Vec<u8>, ttl: Duration) -> StoreFuture<'_, ()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.key).arg(value).arg("PX").arg(millis(ttl));
        Box::pin(self.run(cmd))
    }

    fn try_lock(&self, ttl: Duration) -> StoreFuture<'_, Option<Lock>> {
        Box::pin(async move {
            let mut id = [0u8; 16];
            getrandom::fill(&mut id).map_err(|_| StoreError("no randomness".into()))?;
            let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
            let mut cmd = redis::cmd("SET");
            cmd.arg(&self.lock_key)
                .arg(&id)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl));
            let set: Option<String> = self.run(cmd).await?;
            Ok(set.map(|_| Lock(LockInner::Redis(id))))
        })
    }

    fn unlock(&self, lock: Lock) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if let LockInner::Redis(id) = lock.0 {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(UNLOCK).arg(1).arg(&self.lock_key).arg(id);
                let _: i64 = self.run(cmd).await?;
            }
            Ok(())
        })
    }
}
