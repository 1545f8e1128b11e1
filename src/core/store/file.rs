//! `file:///path`: processes on one machine share a token through a file. The lock is the
//! operating system's advisory lock on `<path>.lock`, which the kernel drops when its
//! holder dies; its holder touches the lock file every third of a lease, so a holder that
//! is stopped (not dead) shows by its age. The value is written to a temporary file and
//! renamed over the old one, so a reader sees the old value or the new, never half of one.
//!
//! Both files are mode 0600 and opened without following a symbolic link; the value is
//! read only from a regular file and only up to [`MAX_VALUE`]. All file work of the
//! process runs on at most [`FILE_THREADS`] blocking threads, whatever the number of
//! managers.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;

use super::{
    Degraded, Held, Lock, LockInner, Store, StoreError, StoreFuture, Stored, Written, MAX_VALUE,
};

/// Blocking threads the file stores of one process use at most.
pub const FILE_THREADS: usize = 4;
static FILE_WORK: Semaphore = Semaphore::const_new(FILE_THREADS);

/// A temporary file older than this was left by a writer that died: removed.
const STALE_TEMP: Duration = Duration::from_secs(60);

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

/// Open flags every file here is opened with: never through a symbolic link, never
/// blocking on a FIFO's open.
fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    options
}

fn failed(what: &str, e: std::io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return StoreError(format!(
            "the store file could not be {what}: it is a symbolic link"
        ));
    }
    StoreError(format!("the store file could not be {what}: {}", e.kind()))
}

/// Runs blocking file work on one of the process's few file threads.
fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> StoreFuture<'static, T> {
    Box::pin(async move {
        let _permit = FILE_WORK
            .acquire()
            .await
            .map_err(|_| StoreError("the store file task failed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| StoreError("the store file task failed".into()))?
    })
}

fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Opens (creating) the lock file: a regular file, not a link, mode 0600 (a looser mode,
/// left by someone else, is tightened).
fn open_lock(path: &Path) -> Result<(File, (u64, u64)), StoreError> {
    let file = options()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed("opened for locking", e))?;
    let meta = file
        .metadata()
        .map_err(|e| failed("opened for locking", e))?;
    if !meta.is_file() {
        return Err(StoreError(
            "the store's lock file is not a regular file".into(),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed("made private", e))?;
    }
    Ok((file, identity(&meta)))
}

/// Whether `path` still names the file with `id` (no one removed or replaced it).
fn still_names(path: &Path, id: (u64, u64)) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| identity(&m) == id)
}

/// Removes `<name>.<n>.tmp` files older than [`STALE_TEMP`] beside `path`: left by a writer
/// killed between its write and its rename, each with a whole token response in it.
fn sweep_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(10_000) {
        let entry_name = entry.file_name();
        let entry_name = entry_name.to_string_lossy();
        let Some(middle) = entry_name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
        else {
            continue;
        };
        if middle.is_empty() || !middle.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stale = entry.metadata().is_ok_and(|m| {
            m.is_file()
                && m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP)
        });
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn read_value(path: &Path) -> Result<Stored, StoreError> {
    let file = match options().read(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Stored::Missing),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(Stored::Unusable(Degraded::NotARegularFile))
        }
        Err(e) => return Err(failed("read", e)),
    };
    let meta = file.metadata().map_err(|e| failed("read", e))?;
    if !meta.is_file() {
        return Ok(Stored::Unusable(Degraded::NotARegularFile));
    }
    if meta.len() > MAX_VALUE as u64 {
        return Ok(Stored::Unusable(Degraded::ValueTooLarge));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_VALUE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed("read", e))?;
    Ok(if bytes.len() > MAX_VALUE {
        Stored::Unusable(Degraded::ValueTooLarge)
    } else if bytes.is_empty() {
        Stored::Missing
    } else {
        Stored::Value(bytes)
    })
}

fn write_value(path: &Path, value: &[u8]) -> Result<(), StoreError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|_| StoreError("no randomness".into()))?;
    let mut temp = path.to_path_buf().into_os_string();
    temp.push(format!(".{}.tmp", u64::from_le_bytes(suffix)));
    let temp = PathBuf::from(temp);
    let mut file = options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .map_err(|e| failed("written", e))?;
    let written = file
        .write_all(value)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, path));
    drop(file);
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        failed("written", e)
    })
}

impl Store for FileStore {
    fn read(&self) -> StoreFuture<'_, Stored> {
        let path = self.path.clone();
        blocking(move || read_value(&path))
    }

    fn write<'a>(
        &'a self,
        value: Vec<u8>,
        _ttl: Duration,
        lock: Option<&'a Lock>,
    ) -> StoreFuture<'a, Written> {
        let path = self.path.clone();
        let lock_path = self.lock_path.clone();
        let lock_id = lock.and_then(|l| match &l.0 {
            LockInner::File { id, .. } => Some(*id),
            LockInner::Redis(_) => None,
        });
        blocking(move || {
            sweep_temps(&path);
            write_value(&path, &value)?;
            Ok(match lock_id {
                Some(id) if !still_names(&lock_path, id) => {
                    Written::Degraded(Degraded::LockFileReplaced)
                }
                _ => Written::Yes,
            })
        })
    }

    fn try_lock(&self, _lease: Duration) -> StoreFuture<'_, Option<Lock>> {
        let lock_path = self.lock_path.clone();
        blocking(move || {
            // A lock file unlinked between our open and our lock would lock nothing.
            for _ in 0..3 {
                let (file, id) = open_lock(&lock_path)?;
                match file.try_lock() {
                    Ok(()) => {}
                    Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => return Err(failed("locked", e)),
                }
                if still_names(&lock_path, id) {
                    let _ = file.set_modified(SystemTime::now());
                    return Ok(Some(Lock(LockInner::File { file, id })));
                }
            }
            Err(StoreError(
                "the store's lock file keeps being replaced".into(),
            ))
        })
    }

    fn renew<'a>(&'a self, lock: &'a Lock, _lease: Duration) -> StoreFuture<'a, bool> {
        let LockInner::File { file, .. } = &lock.0 else {
            return Box::pin(async { Ok(false) });
        };
        let file = file.try_clone();
        blocking(move || {
            // The kernel lock is ours until we let go; the touch tells waiters we live.
            let file = file.map_err(|e| failed("renewed", e))?;
            file.set_modified(SystemTime::now())
                .map_err(|e| failed("renewed", e))?;
            Ok(true)
        })
    }

    fn unlock(&self, lock: Lock) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            if let LockInner::File { file, .. } = lock.0 {
                let _ = file.unlock();
            }
            Ok(true)
        })
    }

    fn held(&self, lease: Duration) -> StoreFuture<'_, Held> {
        let lock_path = self.lock_path.clone();
        blocking(move || {
            let (file, _) = open_lock(&lock_path)?;
            match file.try_lock() {
                Ok(()) => {
                    let _ = file.unlock();
                    Ok(Held::Free)
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let age = file
                        .metadata()
                        .ok()
                        .and_then(|m| m.modified().ok())
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    Ok(if age > lease + Duration::from_secs(1) {
                        Held::Stuck("its holder stopped renewing it")
                    } else {
                        Held::Leased
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => Err(failed("locked", e)),
            }
        })
    }
}
