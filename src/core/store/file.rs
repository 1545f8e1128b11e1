//! `file:///path`: processes on one machine share a token through a file. The lock is the
//! operating system's advisory lock on `<path>.lock`, which the kernel drops when its
//! holder dies; the value is written to a temporary file and renamed over the old one, so
//! a reader sees the old value or the new, never half of one. Both files are mode 0600.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::{Lock, LockInner, Store, StoreError, StoreFuture};

pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl FileStore {
    pub fn new(path: PathBuf) -> FileStore {
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        FileStore {
            path,
            lock_path: lock_path.into(),
        }
    }
}

/// Opens (creating) a file readable and writable by its owner only.
fn private(path: &std::path::Path, truncate: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn failed(what: &str, e: std::io::Error) -> StoreError {
    StoreError(format!("the store file could not be {what}: {}", e.kind()))
}

/// Runs blocking file work off the runtime's worker.
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> StoreFuture<'static, T> {
    Box::pin(async move {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| StoreError("the store file task failed".into()))?
    })
}

impl Store for FileStore {
    fn lock_lapses(&self) -> bool {
        false
    }

    fn read(&self) -> StoreFuture<'_, Option<Vec<u8>>> {
        let path = self.path.clone();
        blocking(move || match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed("read", e)),
        })
    }

    fn write(&self, value: Vec<u8>, _ttl: Duration) -> StoreFuture<'_, ()> {
        let path = self.path.clone();
        blocking(move || {
            let mut suffix = [0u8; 8];
            getrandom::fill(&mut suffix).map_err(|_| StoreError("no randomness".into()))?;
            let mut temp = path.clone().into_os_string();
            temp.push(format!(".{}.tmp", u64::from_le_bytes(suffix)));
            let temp = PathBuf::from(temp);
            let written = (|| {
                let mut file = private(&temp, true)?;
                file.write_all(&value)?;
                file.sync_all()?;
                std::fs::rename(&temp, &path)
            })();
            written.map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                failed("written", e)
            })
        })
    }

    fn try_lock(&self, _ttl: Duration) -> StoreFuture<'_, Option<Lock>> {
        let lock_path = self.lock_path.clone();
        blocking(move || {
            let file = private(&lock_path, false).map_err(|e| failed("opened for locking", e))?;
            match file.try_lock() {
                Ok(()) => Ok(Some(Lock(LockInner::File(file)))),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(e)) => Err(failed("locked", e)),
            }
        })
    }

    fn unlock(&self, lock: Lock) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if let LockInner::File(file) = lock.0 {
                let _ = file.unlock();
            }
            Ok(())
        })
    }
}
