//! Writing outputs so that they cannot hurt: whole or not at all, never through a link,
//! never two runs at once, and nothing left behind by a failure or a signal.
//!
//! - An output folder ([`Output`]) is checked and locked before anything is simulated
//!   ([`Output::prepare`]): its name must fit the file system with the temporary names
//!   derived from it, an existing folder must hold only files restake-mc writes (it is
//!   replaced whole), and a lock file `.<name>.lock` beside it, held with `flock`, makes a
//!   second run on the same folder fail at once. [`Output::publish`] writes every file
//!   into a fresh sibling folder `.<name>.restake-XXXXXX` (created exclusively, files
//!   created with `O_EXCL`, so a planted link is never followed), then swaps it into
//!   place with one `renameat2(RENAME_EXCHANGE)`: a reader sees the whole old folder or
//!   the whole new one, never a mix. The old folder is then removed.
//! - A single file ([`write_files`]: an imported scenario, exported tables, a shard's
//!   partial file) is written to a fresh temporary file beside it and renamed over it;
//!   a target that exists and is not a regular file (a device, a folder, a link) is
//!   refused.
//! - Everything temporary is registered while it exists. [`interrupt`], called from a
//!   signal handler before the process ends, removes it: a write in progress is stopped
//!   between two files (or, once the swap has begun, finished), so a stopped run leaves
//!   the old output as it was and no temporary file. A `SIGKILL` cannot be handled: it
//!   may leave a lock file and a temporary folder, which the next run on that folder
//!   removes once it holds the lock.
//!
//! Unix only (`flock`, `O_NOFOLLOW`, `renameat2` through rustix; macOS swaps with
//! `renamex_np`).

use std::ffi::OsStr;
use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use restake_report::{OutputFile, is_output_file_name};
use rustix::fs::{Mode, OFlags, RenameFlags};

use crate::RunError;

/// Longest file name (bytes) of an output folder or file: the file system's 255 less the
/// temporary names' additions (`.`, `.restake-XXXXXX`, `.lock`).
pub const MAX_OUTPUT_NAME_BYTES: usize = 200;

/// Something temporary that a stopped process must remove.
#[derive(Debug, Clone, PartialEq)]
enum Pending {
    /// A temporary file, or a lock file.
    File(PathBuf),
    /// A temporary folder and everything in it.
    Tree(PathBuf),
    /// A folder this process created for an output, removed if it is still empty.
    EmptyDir(PathBuf),
}

impl Pending {
    fn remove(&self) {
        let _ = match self {
            Pending::File(p) => fs::remove_file(p),
            Pending::Tree(p) => fs::remove_dir_all(p),
            Pending::EmptyDir(p) => fs::remove_dir(p),
        };
    }
}

/// What exists now and must go if the process is stopped, oldest first. Held for the
/// whole of every write, so that [`interrupt`] waits for a write between two steps.
static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// Set by [`interrupt`]: a write in progress stops at its next step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn pending() -> MutexGuard<'static, Vec<Pending>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget(list: &mut Vec<Pending>, item: &Pending) {
    if let Some(i) = list.iter().rposition(|p| p == item) {
        list.remove(i);
    }
}

/// Removes everything temporary this process has made (lock files, temporary files and
/// folders, output folders it created that are still empty) and blocks every later
/// write: for a signal handler, which then ends the process. A write in progress stops
/// at its next file; a folder already being swapped into place is finished first, so the
/// output is the whole old one or the whole new one.
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let mut list = pending();
    for p in list.iter().rev() {
        p.remove();
    }
    list.clear();
    // Held until the process ends: no write starts after this.
    std::mem::forget(list);
}

/// `Err(RunError::Interrupted)` once [`interrupt`] has been called: for a long write
/// ([`write_files`]'s writer) to stop between two of its parts.
///
/// # Errors
/// [`RunError::Interrupted`] after [`interrupt`].
pub fn check_interrupted() -> Result<(), RunError> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        Err(RunError::Interrupted)
    } else {
        Ok(())
    }
}

fn io_error(context: String) -> impl FnOnce(io::Error) -> RunError {
    move |source| RunError::Io { context, source }
}

/// The final part of `path` as text for a temporary name, checked for length.
fn output_name<'a>(path: &'a Path, what: &str) -> Result<(&'a OsStr, &'a Path), RunError> {
    let name = path.file_name().ok_or_else(|| {
        RunError::BadInput(format!(
            "{what} {}: names no file or folder",
            path.display()
        ))
    })?;
    if name.len() > MAX_OUTPUT_NAME_BYTES {
        return Err(RunError::BadInput(format!(
            "{what} {}: its name is {} bytes long, at most {MAX_OUTPUT_NAME_BYTES} are allowed",
            path.display(),
            name.len()
        )));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    Ok((name, parent))
}

/// Creates the missing folders of `dir`, outermost first, registering each; returns
/// them.
fn create_folders(dir: &Path, list: &mut Vec<Pending>) -> Result<Vec<PathBuf>, RunError> {
    let mut missing = Vec::new();
    let mut at = dir;
    // A relative path ends in "" (the current folder), which exists.
    while !at.as_os_str().is_empty() {
        match fs::symlink_metadata(at) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(at.to_path_buf());
                match at.parent() {
                    Some(p) => at = p,
                    None => break,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(RunError::BadInput(format!(
                    "{} is not below a folder",
                    at.display()
                )));
            }
            Err(e) => return Err(io_error(format!("cannot reach {}", at.display()))(e)),
        }
    }
    let mut created = Vec::new();
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => {
                list.push(Pending::EmptyDir(d.clone()));
                created.push(d);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                remove_created(&created, list);
                return Err(io_error(format!(
                    "cannot create the folder {}",
                    d.display()
                ))(e));
            }
        }
    }
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(created),
        Ok(_) => {
            remove_created(&created, list);
            Err(RunError::BadInput(format!(
                "{} is not a folder",
                dir.display()
            )))
        }
        Err(e) => {
            remove_created(&created, list);
            Err(io_error(format!("cannot reach {}", dir.display()))(e))
        }
    }
}

/// Removes the folders of `created` that are still empty, innermost first.
fn remove_created(created: &[PathBuf], list: &mut Vec<Pending>) {
    for d in created.iter().rev() {
        let item = Pending::EmptyDir(d.clone());
        item.remove();
        forget(list, &item);
    }
}

/// A lock file held with `flock` for the life of the value, removed when dropped.
#[derive(Debug)]
struct Lock {
    path: PathBuf,
    _file: File,
}

impl Lock {
    /// Takes the lock file `path` (created if needed, never through a link).
    ///
    /// # Errors
    /// [`RunError::BadInput`] when another process holds it (naming `target`, what it
    /// guards) or when `path` is not a regular file; [`RunError::Io`] otherwise.
    fn acquire(path: PathBuf, target: &Path, list: &mut Vec<Pending>) -> Result<Self, RunError> {
        // A lock file removed by its holder between our open and our lock is a stale
        // inode: lock again until the file we hold is the one at the path.
        for _ in 0..16 {
            let fd = rustix::fs::open(
                &path,
                OFlags::CREATE
                    | OFlags::RDWR
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .map_err(|e| {
                if e == rustix::io::Errno::LOOP {
                    RunError::BadInput(format!(
                        "the lock file {} is a symbolic link: remove it",
                        path.display()
                    ))
                } else {
                    io_error(format!("cannot open the lock file {}", path.display()))(e.into())
                }
            })?;
            let file = File::from(fd);
            let held = file
                .metadata()
                .map_err(io_error(format!("cannot read {}", path.display())))?;
            if !held.is_file() {
                return Err(RunError::BadInput(format!(
                    "the lock file {} is not a regular file: remove it",
                    path.display()
                )));
            }
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(RunError::BadInput(format!(
                        "another restake-mc run is writing {} (it holds {}): wait for it to end or choose another output",
                        target.display(),
                        path.display()
                    )));
                }
                Err(fs::TryLockError::Error(e)) => {
                    return Err(io_error(format!("cannot lock {}", path.display()))(e));
                }
            }
            match fs::symlink_metadata(&path) {
                Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => {
                    list.push(Pending::File(path.clone()));
                    return Ok(Self { path, _file: file });
                }
                _ => continue,
            }
        }
        Err(RunError::BadInput(format!(
            "cannot take the lock file {}: other runs keep replacing it",
            path.display()
        )))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held (the file closes after this body), so that a run
        // waiting on this inode sees that it is stale.
        let item = Pending::File(self.path.clone());
        item.remove();
        forget(&mut pending(), &item);
    }
}

/// The entries of `dir` restake-mc did not write: anything but output files and (when
/// `nested`) folders of output files, by name.
fn foreign_entries(dir: &Path, nested: bool) -> io::Result<Vec<String>> {
    let mut foreign = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        let ours = match name.to_str() {
            Some(n) if kind.is_file() => is_output_file_name(n),
            Some(_) if kind.is_dir() && nested => foreign_entries(&entry.path(), false)?.is_empty(),
            _ => false,
        };
        if !ours {
            foreign.push(name.to_string_lossy().into_owned());
        }
    }
    foreign.sort();
    Ok(foreign)
}

/// Checks that `target` is absent, or a folder that holds only restake-mc's files.
fn check_replaceable(target: &Path) -> Result<(), RunError> {
    let shown = target.display();
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(format!("cannot reach {shown}"))(e)),
        Ok(m) if m.file_type().is_symlink() => Err(RunError::BadInput(format!(
            "the output folder {shown} is a symbolic link: give the folder it points to"
        ))),
        Ok(m) if !m.is_dir() => Err(RunError::BadInput(format!(
            "the output folder {shown} is not a folder"
        ))),
        Ok(_) => {
            let foreign = foreign_entries(target, true)
                .map_err(io_error(format!("cannot read the folder {shown}")))?;
            if foreign.is_empty() {
                return Ok(());
            }
            let listed: Vec<String> = foreign.iter().take(5).map(|n| format!("{n:?}")).collect();
            Err(RunError::BadInput(format!(
                "the output folder {shown} holds {} entr{} restake-mc did not write ({}{}): a run replaces the whole folder, so give a new or empty folder",
                foreign.len(),
                if foreign.len() == 1 { "y" } else { "ies" },
                listed.join(", "),
                if foreign.len() > 5 { ", ..." } else { "" }
            )))
        }
    }
}

/// Removes what killed runs left beside `name` in `parent`: temporary folders and files
/// whose names start with `.<name>.restake-`. Called with the lock held, so none of them
/// belongs to a live run.
fn remove_stale(parent: &Path, name: &OsStr) {
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.extend_from_slice(b".restake-");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().as_bytes().starts_with(&prefix) {
            match entry.file_type() {
                Ok(t) if t.is_dir() => Pending::Tree(entry.path()).remove(),
                Ok(_) => Pending::File(entry.path()).remove(),
                Err(_) => {}
            }
        }
    }
}

/// `.<name><suffix>` beside `name`.
fn sibling(parent: &Path, name: &OsStr, suffix: &str) -> PathBuf {
    let mut s = std::ffi::OsString::from(".");
    s.push(name);
    s.push(suffix);
    parent.join(s)
}

/// An output folder checked and locked for one run, written by [`Output::publish`].
/// Dropped unpublished, it releases its lock and removes the folders it created.
#[derive(Debug)]
pub struct Output {
    /// The folder as given, for messages and the paths returned.
    given: PathBuf,
    /// The folder as an absolute path.
    target: PathBuf,
    parent: PathBuf,
    created: Vec<PathBuf>,
    lock: Option<Lock>,
}

impl Output {
    /// Checks `target` and locks it, before anything is simulated: its name (at most
    /// [`MAX_OUTPUT_NAME_BYTES`] bytes), its parent (created if missing, removed again if
    /// the run fails), no other run on it, and, if it exists, a folder holding only files
    /// restake-mc writes. Removes what killed runs on it left behind.
    ///
    /// # Errors
    /// [`RunError::BadInput`] for a name that is too long or names no folder, a target
    /// that is a file, a link or a folder of other files, a parent that is a file or not
    /// writable, or a folder another run holds; [`RunError::Io`] when a folder cannot be
    /// created or read.
    pub fn prepare(target: &Path) -> Result<Self, RunError> {
        check_interrupted()?;
        let given = target.to_path_buf();
        let target = std::path::absolute(target).map_err(io_error(format!(
            "cannot resolve the output folder {}",
            target.display()
        )))?;
        let (name, parent) = output_name(&target, "the output folder")?;
        let (name, parent) = (name.to_owned(), parent.to_path_buf());
        check_writable(&parent)?;
        let mut list = pending();
        let created = create_folders(&parent, &mut list)?;
        let lock = Lock::acquire(sibling(&parent, &name, ".lock"), &target, &mut list);
        drop(list);
        let output = Self {
            lock: Some(lock.inspect_err(|_| remove_created(&created, &mut pending()))?),
            given,
            target,
            parent,
            created,
        };
        remove_stale(&output.parent, &name);
        check_replaceable(&output.target)?;
        Ok(output)
    }

    /// The folder, as given to [`Output::prepare`].
    pub fn path(&self) -> &Path {
        &self.given
    }

    /// Writes `files` (paths relative to the folder, `/` between parts) as a fresh
    /// folder and swaps it into place, then removes the old one. Returns the paths
    /// written, below the folder as given.
    ///
    /// # Errors
    /// [`RunError::Io`] naming the file that could not be written (nothing is then
    /// changed: the temporary folder is removed and an old folder stays as it was);
    /// [`RunError::Interrupted`] after [`interrupt`].
    pub fn publish(mut self, files: &[OutputFile]) -> Result<Vec<PathBuf>, RunError> {
        let mut list = pending();
        check_interrupted()?;
        let (name, _) = output_name(&self.target, "the output folder")?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".restake-");
        let fresh = tempfile::Builder::new()
            .prefix(&prefix)
            .permissions(Permissions::from_mode(0o777))
            .tempdir_in(&self.parent)
            .map_err(io_error(format!(
                "cannot create a temporary folder in {}",
                self.parent.display()
            )))?
            .keep();
        let item = Pending::Tree(fresh.clone());
        list.push(item.clone());
        let result = write_tree(&fresh, files).and_then(|()| {
            check_interrupted()?;
            swap_into_place(&fresh, &self.target)
        });
        item.remove();
        forget(&mut list, &item);
        result?;
        // Published: the folders created for it stay.
        for d in self.created.drain(..) {
            forget(&mut list, &Pending::EmptyDir(d));
        }
        drop(list);
        Ok(files.iter().map(|(n, _)| self.given.join(n)).collect())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.lock = None;
        remove_created(&self.created, &mut pending());
    }
}

/// Writes `files` into the fresh folder `dir`, each created exclusively and synced.
fn write_tree(dir: &Path, files: &[OutputFile]) -> Result<(), RunError> {
    for (name, bytes) in files {
        check_interrupted()?;
        let path = dir.join(name);
        if let Some(sub) = path.parent().filter(|p| *p != dir) {
            fs::create_dir_all(sub).map_err(io_error(format!(
                "cannot create the folder {}",
                sub.display()
            )))?;
        }
        let context = || format!("cannot write {}", path.display());
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_error(context()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(io_error(context()))?;
    }
    Ok(())
}

/// Puts the folder `fresh` at `target`: a rename if `target` is absent, else an atomic
/// exchange (`fresh` then holds the old folder, removed by the caller). Where the file
/// system cannot exchange, the old folder is moved aside first (a reader may then find
/// no folder for a moment, never a mix).
fn swap_into_place(fresh: &Path, target: &Path) -> Result<(), RunError> {
    let context = || format!("cannot put the output folder {} in place", target.display());
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::rename(fresh, target).map_err(io_error(context()))
        }
        Err(e) => Err(io_error(context())(e)),
        Ok(_) => match rustix::fs::renameat_with(
            rustix::fs::CWD,
            fresh,
            rustix::fs::CWD,
            target,
            RenameFlags::EXCHANGE,
        ) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                let aside = fresh.with_extension("old");
                fs::rename(target, &aside).map_err(io_error(context()))?;
                let placed = fs::rename(fresh, target).map_err(io_error(context()));
                if placed.is_err() {
                    let _ = fs::rename(&aside, target);
                } else {
                    Pending::Tree(aside).remove();
                }
                placed
            }
            Err(e) => Err(io_error(context())(e.into())),
        },
    }
}

/// Checks that `path` can be written by [`write_files`]: it names a file, its name is at
/// most [`MAX_OUTPUT_NAME_BYTES`] bytes, and it is a regular file or absent below a
/// folder this process may write in. Returns its name and parent. For checking a target
/// before a run, and by [`write_files`].
///
/// # Errors
/// [`RunError::BadInput`] for a path that names no file, is too long, exists and is a
/// folder, a link, a device or anything but a regular file, or is absent below a folder
/// that cannot be written; [`RunError::Io`] when it cannot be looked at.
pub fn check_file(path: &Path) -> Result<(&OsStr, &Path), RunError> {
    let (name, parent) = output_name(path, "the file")?;
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            check_writable(parent)?;
            Ok((name, parent))
        }
        Ok(m) if m.file_type().is_file() => Ok((name, parent)),
        Ok(m) => {
            let kind = if m.is_dir() {
                "a folder"
            } else if m.file_type().is_symlink() {
                "a symbolic link"
            } else {
                "not a regular file"
            };
            Err(RunError::BadInput(format!(
                "{} is {kind}: give a new path or a regular file to replace",
                path.display()
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(RunError::BadInput(format!(
            "{} is not a folder",
            parent.display()
        ))),
        Err(e) => Err(io_error(format!("cannot reach {}", path.display()))(e)),
    }
}

/// Checks that files can be created below `dir`: its nearest existing ancestor is a
/// folder this process may write in (`access(2)`; a read-only file system included).
fn check_writable(dir: &Path) -> Result<(), RunError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // A relative path's last ancestor is "", the current folder.
    let existing = dir
        .ancestors()
        .map(|a| {
            if a.as_os_str().is_empty() {
                Path::new(".")
            } else {
                a
            }
        })
        .find(|a| fs::symlink_metadata(a).is_ok())
        .unwrap_or(Path::new("/"));
    match fs::metadata(existing) {
        Ok(m) if m.is_dir() => rustix::fs::access(
            existing,
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        )
        .map_err(|e| {
            RunError::BadInput(format!(
                "cannot write in {}: {}",
                existing.display(),
                io::Error::from(e)
            ))
        }),
        _ => Err(RunError::BadInput(format!(
            "{} is not a folder",
            existing.display()
        ))),
    }
}

/// How one file of [`write_files`] is written: a function of the open temporary file.
pub type Writer<'a> = Box<dyn FnOnce(&mut (dyn Write + Send)) -> io::Result<()> + 'a>;

/// Writes each `(path, writer)` to a fresh temporary file beside `path` (created
/// exclusively, mode 0644 less the umask), then renames them all into place once every
/// one is written: a failure leaves the old files as they were and no temporary file.
/// A missing parent folder is created.
///
/// # Errors
/// [`RunError::BadInput`] for a path that names no file, whose name is longer than
/// [`MAX_OUTPUT_NAME_BYTES`], or that exists and is not a regular file (a device, a
/// folder, a link); [`RunError::Io`] naming the file that could not be written;
/// [`RunError::Interrupted`] after [`interrupt`].
pub fn write_files(files: Vec<(&Path, Writer)>) -> Result<(), RunError> {
    let mut list = pending();
    check_interrupted()?;
    let mut created = Vec::new();
    let mut registered = Vec::new();
    let result = (|| {
        let mut temps = Vec::new();
        for (path, write) in files {
            let (name, parent) = check_file(path)?;
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            created.extend(create_folders(parent, &mut list)?);
            let mut prefix = std::ffi::OsString::from(".");
            prefix.push(name);
            prefix.push(".restake-");
            let mut tmp = tempfile::Builder::new()
                .prefix(&prefix)
                .permissions(Permissions::from_mode(0o644))
                .tempfile_in(parent)
                .map_err(io_error(format!(
                    "cannot create a temporary file in {}",
                    parent.display()
                )))?;
            registered.push(Pending::File(tmp.path().to_path_buf()));
            list.push(registered[registered.len() - 1].clone());
            let context = format!("cannot write {}", path.display());
            let mut buffered = io::BufWriter::new(tmp.as_file_mut());
            write(&mut buffered)
                .and_then(|()| buffered.flush())
                .map_err(io_error(context.clone()))?;
            drop(buffered);
            tmp.as_file().sync_all().map_err(io_error(context))?;
            temps.push((tmp, path));
        }
        check_interrupted()?;
        for (tmp, path) in temps {
            tmp.persist(path)
                .map_err(|e| io_error(format!("cannot write {}", path.display()))(e.error))?;
        }
        Ok(())
    })();
    for item in &registered {
        forget(&mut list, item);
    }
    if result.is_err() {
        remove_created(&created, &mut list);
    } else {
        for d in created {
            forget(&mut list, &Pending::EmptyDir(d));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> OutputFile {
        (name.to_string(), text.as_bytes().to_vec())
    }

    #[test]
    fn a_folder_is_swapped_whole_and_nothing_temporary_stays() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/out");
        let written = Output::prepare(&target)
            .unwrap()
            .publish(&[file("summary.csv", "old\n"), file("run.json", "{}\n")])
            .unwrap();
        assert_eq!(written.len(), 2);
        Output::prepare(&target)
            .unwrap()
            .publish(&[file("summary.csv", "new\n")])
            .unwrap();
        assert_eq!(
            fs::read_to_string(target.join("summary.csv")).unwrap(),
            "new\n"
        );
        assert!(
            !target.join("run.json").exists(),
            "the old folder is replaced whole"
        );
        let beside: Vec<_> = fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, ["out"]);
    }

    #[test]
    fn a_second_run_on_a_locked_folder_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let first = Output::prepare(&target).unwrap();
        let err = Output::prepare(&target).unwrap_err();
        assert!(
            matches!(&err, RunError::BadInput(m) if m.contains("another restake-mc run")),
            "{err}"
        );
        drop(first);
        assert!(Output::prepare(&target).is_ok(), "the lock is released");
    }

    #[test]
    fn foreign_folders_files_and_links_are_refused_and_created_folders_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine");
        fs::create_dir(&mine).unwrap();
        fs::write(mine.join("notes.txt"), "keep").unwrap();
        let err = Output::prepare(&mine).unwrap_err().to_string();
        assert!(err.contains("\"notes.txt\""), "{err}");
        fs::write(dir.path().join("f"), "").unwrap();
        assert!(Output::prepare(&dir.path().join("f")).is_err());
        assert!(Output::prepare(&dir.path().join("f/x/out")).is_err());
        std::os::unix::fs::symlink(&mine, dir.path().join("link")).unwrap();
        assert!(Output::prepare(&dir.path().join("link")).is_err());
        let long = "x".repeat(MAX_OUTPUT_NAME_BYTES + 1);
        assert!(Output::prepare(&dir.path().join("new/deeper").join(long)).is_err());
        assert!(
            !dir.path().join("new").exists(),
            "created folders are removed"
        );
        // Unpublished: the folders created for it go with the lock.
        drop(Output::prepare(&dir.path().join("p/q/out")).unwrap());
        assert!(!dir.path().join("p").exists());
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["f", "link", "mine"]);
    }

    #[test]
    fn files_replace_regular_files_only_and_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("out.toml");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let write = |p: &Path| {
            write_files(vec![(
                p,
                Box::new(|w: &mut (dyn Write + Send)| w.write_all(b"new")) as Writer,
            )])
        };
        assert!(matches!(write(&link), Err(RunError::BadInput(_))));
        assert!(matches!(write(dir.path()), Err(RunError::BadInput(_))));
        assert!(matches!(
            write(Path::new("/dev/null")),
            Err(RunError::BadInput(_))
        ));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        write(&victim).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "new");
        let mode = fs::metadata(&victim).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o644,
            0o644,
            "readable like any file the user writes"
        );
        let nested = dir.path().join("made/here.toml");
        write(&nested).unwrap();
        assert_eq!(fs::read_to_string(&nested).unwrap(), "new");
        let failing = dir.path().join("gone/x.toml");
        let err = write_files(vec![(
            failing.as_path(),
            Box::new(|_: &mut (dyn Write + Send)| Err(io::Error::other("disk full"))) as Writer,
        )]);
        assert!(matches!(err, Err(RunError::Io { .. })));
        assert!(!dir.path().join("gone").exists());
    }
}
