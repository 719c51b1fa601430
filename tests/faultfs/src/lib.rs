//! Test support for hotconf, never a dependency of the library: a FUSE filesystem that passes
//! through to a backing directory and misbehaves on purpose, the way an NFS mount or a failing disk
//! does. Faults are set at run time, per operation and per path pattern:
//!
//! - return an errno (`EIO`, `ESTALE`, `EACCES`, `ENOSPC`, `EDQUOT`, `EROFS`, `ENOENT`, …);
//! - delay an operation, or hang it until the test calls [`FaultFs::release`] (an NFS hard mount
//!   whose server went away);
//! - serve stale attributes: size and mtime frozen while the content changes (an attribute cache);
//! - short reads;
//! - power loss, as LazyFS does: file data is durable only once the file is fsynced, a directory
//!   entry only once its directory is fsynced; [`FaultFs::crash`] drops everything else and mounts
//!   the durable state afresh. [`FaultFs::cut_power_after`] makes every operation after the Nth
//!   mutating one fail, so a test can crash a writer after each of its steps.
//!
//! ```no_run
//! use faultfs::{Fault, FaultFs, Op};
//! let backing = tempfile::tempdir().unwrap();
//! let fs = FaultFs::mount(backing.path()).unwrap();
//! let id = fs.inject(Fault::on(Op::Read, "*.yaml").errno(libc::EIO).times(1));
//! assert!(std::fs::read(fs.path().join("a.yaml")).is_err());
//! fs.remove(id);
//! ```
//!
//! Every request is answered with zero entry and attribute TTLs and direct I/O, so the kernel caches
//! nothing and each `stat`, `read` and `write` reaches the fault rules. Requests are served by
//! [`THREADS`] threads: a hung operation holds one of them, the others keep serving. Dropping the
//! [`FaultFs`] releases every hang, detaches the mount (`MNT_DETACH`) and aborts its FUSE
//! connection, so a test that panics, or a process still holding files open, never leaves a mount
//! that hangs the next test.
//!
//! The state shared with the request threads sits behind mutexes: this is test scaffolding serving a
//! kernel protocol with a fixed thread pool, not an actor of the service.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags,
    RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};

/// How many threads serve requests: up to `THREADS - 1` operations may hang at once.
pub const THREADS: usize = 8;

/// A hang ends by itself after this long, so a test that fails before releasing it cannot wedge
/// the test run (a process blocked in a FUSE request ignores even SIGKILL until it is answered).
pub const HANG_LIMIT: Duration = Duration::from_secs(60);

/// No kernel caching of entries or attributes: every lookup and stat reaches the rules.
const TTL: Duration = Duration::ZERO;

/// A filesystem operation, as the kernel sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Resolving a name in a directory (`open`, `stat` by path).
    Lookup,
    /// Reading attributes (`fstat`, `statx`).
    Getattr,
    /// Changing attributes (`truncate`, `chmod`, `utimes`).
    Setattr,
    /// Opening an existing file.
    Open,
    /// Creating and opening a file.
    Create,
    /// Reading file data.
    Read,
    /// Writing file data.
    Write,
    /// `close` of a descriptor.
    Flush,
    /// Last close of a file.
    Release,
    /// `fsync`/`fdatasync` of a file.
    Fsync,
    /// `fsync` of a directory.
    Fsyncdir,
    /// Opening a directory.
    Opendir,
    /// Listing a directory.
    Readdir,
    /// Creating a directory.
    Mkdir,
    /// Removing a file or symlink.
    Unlink,
    /// Removing a directory.
    Rmdir,
    /// Renaming (the pattern is matched against the source and the target).
    Rename,
    /// Creating a symlink.
    Symlink,
    /// Reading a symlink.
    Readlink,
}

impl Op {
    /// Operations that change the filesystem: the ones [`FaultFs::cut_power_after`] counts.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Op::Setattr
                | Op::Create
                | Op::Write
                | Op::Fsync
                | Op::Fsyncdir
                | Op::Mkdir
                | Op::Unlink
                | Op::Rmdir
                | Op::Rename
                | Op::Symlink
        )
    }
}

/// What a matching operation does instead of (or before) passing through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Fail with this errno; the backing directory is not touched.
    Errno(i32),
    /// Wait, then pass through.
    Delay(Duration),
    /// Block until [`FaultFs::release`] (or drop), then pass through.
    Hang,
    /// A read returns at most this many bytes (at least 1 when data is available).
    ShortRead(usize),
    /// Attributes are frozen (size, mtime, ctime) at their value when first served after the fault
    /// was set, while the content goes on changing. Applies to lookup and getattr.
    StaleAttrs,
}

/// One fault rule: an operation, a path pattern and an action, optionally limited in count.
///
/// The pattern is matched against the path relative to the mount root, without a leading `/`
/// (`"config/a.yaml"`); `*` matches any run of characters including `/`, `?` one character.
#[derive(Debug, Clone)]
#[must_use]
pub struct Fault {
    op: Op,
    pattern: String,
    action: Action,
    skip: u32,
    times: Option<u32>,
}

impl Fault {
    /// A rule for `op` on paths matching `pattern`; passes through until an action is set.
    pub fn on(op: Op, pattern: &str) -> Self {
        Self { op, pattern: pattern.to_owned(), action: Action::Delay(Duration::ZERO), skip: 0, times: None }
    }

    /// Fail with `errno` (a `libc::E…` constant).
    pub fn errno(mut self, errno: i32) -> Self {
        self.action = Action::Errno(errno);
        self
    }

    /// Delay by `d`, then pass through.
    pub fn delay(mut self, d: Duration) -> Self {
        self.action = Action::Delay(d);
        self
    }

    /// Hang until released.
    pub fn hang(mut self) -> Self {
        self.action = Action::Hang;
        self
    }

    /// Return at most `max` bytes per read.
    pub fn short_read(mut self, max: usize) -> Self {
        self.action = Action::ShortRead(max);
        self
    }

    /// Serve frozen attributes (the op is taken as [`Op::Getattr`], which covers lookups too).
    pub fn stale_attrs(mut self) -> Self {
        self.op = Op::Getattr;
        self.action = Action::StaleAttrs;
        self
    }

    /// Let the first `n` matching operations pass untouched.
    pub fn after(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Fire `n` times, then pass through.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }
}

/// Identifies an injected fault, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FaultId(u64);

/// `*` any run (including `/`), `?` one character, anything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[derive(Debug)]
struct Rule {
    id: u64,
    fault: Fault,
    seen: u32,
    fired: u32,
}

/// Inode numbers ↔ paths relative to the backing directory (root: empty path, inode 1).
#[derive(Debug)]
struct Nodes {
    paths: HashMap<u64, PathBuf>,
    inos: HashMap<PathBuf, u64>,
    next: u64,
}

impl Nodes {
    fn new() -> Self {
        let mut nodes = Self { paths: HashMap::new(), inos: HashMap::new(), next: 2 };
        nodes.paths.insert(1, PathBuf::new());
        nodes.inos.insert(PathBuf::new(), 1);
        nodes
    }

    fn ino(&mut self, rel: &Path) -> u64 {
        if let Some(&ino) = self.inos.get(rel) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.paths.insert(ino, rel.to_owned());
        self.inos.insert(rel.to_owned(), ino);
        ino
    }

    fn forget_path(&mut self, rel: &Path) {
        let gone: Vec<PathBuf> = self.inos.keys().filter(|p| p.starts_with(rel)).cloned().collect();
        for p in gone {
            if let Some(ino) = self.inos.remove(&p) {
                self.paths.remove(&ino);
            }
        }
    }

    fn rename(&mut self, from: &Path, to: &Path) {
        self.forget_path(to);
        let moved: Vec<(PathBuf, u64)> =
            self.inos.iter().filter(|(p, _)| p.starts_with(from)).map(|(p, i)| (p.clone(), *i)).collect();
        for (old, ino) in moved {
            self.inos.remove(&old);
            let new = to.join(old.strip_prefix(from).expect("prefix"));
            let new = if old == from { to.to_owned() } else { new };
            self.paths.insert(ino, new.clone());
            self.inos.insert(new, ino);
        }
    }
}

/// What survives a crash, LazyFS style, keyed by inode.
#[derive(Debug, Default, Clone)]
struct Durable {
    /// Directory inode → its durable entries.
    dirs: HashMap<u64, BTreeMap<OsString, DurableEntry>>,
    /// File inode → its durable content.
    files: HashMap<u64, Vec<u8>>,
    /// Files whose last fsync failed: their unsynced data is lost, and a later fsync without a new
    /// write reports success without making anything durable (Linux after a writeback error).
    poisoned: HashSet<u64>,
}

#[derive(Debug, Clone)]
enum DurableEntry {
    Dir { ino: u64, mode: u32 },
    File { ino: u64, mode: u32 },
    Symlink { target: PathBuf },
}

struct Handle {
    file: Option<File>,
}

struct Shared {
    backing: PathBuf,
    nodes: Mutex<Nodes>,
    rules: Mutex<Vec<Rule>>,
    next_rule: AtomicU64,
    /// Bumped by every release; hung operations wait for it to change.
    released: Mutex<u64>,
    release_cv: Condvar,
    /// Number of operations currently hung.
    hung: Mutex<usize>,
    hung_cv: Condvar,
    frozen: Mutex<HashMap<u64, FileAttr>>,
    durable: Mutex<Durable>,
    handles: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    counts: Mutex<HashMap<Op, u64>>,
    mutations: AtomicU64,
    power_cut_after: Mutex<Option<u64>>,
    /// Power is off: every operation fails with `EIO`.
    dead: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Verdict {
    Pass { short: Option<usize> },
    Fail(Errno),
}

impl Shared {
    fn new(backing: &Path) -> io::Result<Self> {
        let shared = Self {
            backing: backing.to_owned(),
            nodes: Mutex::new(Nodes::new()),
            rules: Mutex::new(Vec::new()),
            next_rule: AtomicU64::new(1),
            released: Mutex::new(0),
            release_cv: Condvar::new(),
            hung: Mutex::new(0),
            hung_cv: Condvar::new(),
            frozen: Mutex::new(HashMap::new()),
            durable: Mutex::new(Durable::default()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            counts: Mutex::new(HashMap::new()),
            mutations: AtomicU64::new(0),
            power_cut_after: Mutex::new(None),
            dead: AtomicBool::new(false),
        };
        // Everything present at mount time is durable.
        let mut durable = Durable::default();
        shared.record_tree(Path::new(""), &mut durable)?;
        *lock(&shared.durable) = durable;
        Ok(shared)
    }

    fn record_tree(&self, rel: &Path, durable: &mut Durable) -> io::Result<()> {
        let ino = lock(&self.nodes).ino(rel);
        let entries = self.snapshot_dir(rel)?;
        for (name, entry) in &entries {
            match entry {
                DurableEntry::Dir { .. } => self.record_tree(&rel.join(name), durable)?,
                DurableEntry::File { ino, .. } => {
                    durable.files.insert(*ino, fs::read(self.real(&rel.join(name)))?);
                }
                DurableEntry::Symlink { .. } => {}
            }
        }
        durable.dirs.insert(ino, entries);
        Ok(())
    }

    /// The current entries of directory `rel`, as durable entries (inodes assigned as needed).
    fn snapshot_dir(&self, rel: &Path) -> io::Result<BTreeMap<OsString, DurableEntry>> {
        let mut entries = BTreeMap::new();
        for entry in fs::read_dir(self.real(rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let meta = fs::symlink_metadata(entry.path())?;
            let mode = meta.permissions().mode() & 0o7777;
            let ft = meta.file_type();
            let durable = if ft.is_symlink() {
                DurableEntry::Symlink { target: fs::read_link(entry.path())? }
            } else if ft.is_dir() {
                DurableEntry::Dir { ino: lock(&self.nodes).ino(&child), mode }
            } else {
                DurableEntry::File { ino: lock(&self.nodes).ino(&child), mode }
            };
            entries.insert(entry.file_name(), durable);
        }
        Ok(entries)
    }

    fn real(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    fn path(&self, ino: INodeNo) -> Result<PathBuf, Errno> {
        lock(&self.nodes).paths.get(&ino.0).cloned().ok_or(Errno::ESTALE)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<PathBuf, Errno> {
        Ok(self.path(parent)?.join(name))
    }

    /// Applies power state and rules to one operation on `paths`.
    fn check(&self, op: Op, paths: &[&Path]) -> Verdict {
        *lock(&self.counts).entry(op).or_default() += 1;
        if self.dead.load(Ordering::SeqCst) {
            return Verdict::Fail(Errno::EIO);
        }
        if op.is_mutation() {
            let n = self.mutations.fetch_add(1, Ordering::SeqCst) + 1;
            if lock(&self.power_cut_after).is_some_and(|limit| n > limit) {
                self.dead.store(true, Ordering::SeqCst);
                return Verdict::Fail(Errno::EIO);
            }
        }
        let mut actions = Vec::new();
        {
            let mut rules = lock(&self.rules);
            for rule in rules.iter_mut() {
                let f = &rule.fault;
                if f.op != op || f.action == Action::StaleAttrs {
                    continue;
                }
                if !paths.iter().any(|p| glob_match(&f.pattern, &p.to_string_lossy())) {
                    continue;
                }
                rule.seen += 1;
                if rule.seen <= f.skip || f.times.is_some_and(|t| rule.fired >= t) {
                    continue;
                }
                rule.fired += 1;
                actions.push(f.action);
            }
        }
        let mut short = None;
        for action in actions {
            match action {
                Action::Errno(e) => return Verdict::Fail(Errno::from_i32(e)),
                Action::Delay(d) => std::thread::sleep(d),
                Action::Hang => self.hang(),
                Action::ShortRead(n) => short = Some(n.max(1)),
                Action::StaleAttrs => {}
            }
            if self.dead.load(Ordering::SeqCst) {
                return Verdict::Fail(Errno::EIO);
            }
        }
        Verdict::Pass { short }
    }

    fn hang(&self) {
        let mut released = lock(&self.released);
        let start = *released;
        *lock(&self.hung) += 1;
        self.hung_cv.notify_all();
        let limit = std::time::Instant::now() + HANG_LIMIT;
        while *released == start {
            let left = limit.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            released = self.release_cv.wait_timeout(released, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        drop(released);
        *lock(&self.hung) -= 1;
        self.hung_cv.notify_all();
    }

    fn release_all(&self) {
        *lock(&self.released) += 1;
        self.release_cv.notify_all();
    }

    fn stale_rule_matches(&self, rel: &Path) -> bool {
        let text = rel.to_string_lossy();
        lock(&self.rules).iter().any(|r| r.fault.action == Action::StaleAttrs && glob_match(&r.fault.pattern, &text))
    }

    fn attr(&self, ino: u64, rel: &Path) -> Result<FileAttr, Errno> {
        let meta = fs::symlink_metadata(self.real(rel)).map_err(Errno::from)?;
        let mut attr = to_attr(ino, &meta);
        if self.stale_rule_matches(rel) {
            let mut frozen = lock(&self.frozen);
            let old = frozen.entry(ino).or_insert(attr);
            attr.size = old.size;
            attr.blocks = old.blocks;
            attr.mtime = old.mtime;
            attr.ctime = old.ctime;
        }
        Ok(attr)
    }

    fn entry(&self, rel: &Path) -> Result<FileAttr, Errno> {
        let ino = lock(&self.nodes).ino(rel);
        self.attr(ino, rel)
    }

    fn file(&self, fh: FileHandle) -> Result<File, Errno> {
        let handles = lock(&self.handles);
        let handle = handles.get(&fh.0).ok_or(Errno::EBADF)?;
        handle.file.as_ref().ok_or(Errno::EBADF)?.try_clone().map_err(Errno::from)
    }

    /// Makes the content of file `ino` durable (file fsync).
    fn sync_file(&self, ino: u64, file: &File) -> Result<(), Errno> {
        if lock(&self.durable).poisoned.contains(&ino) {
            return Ok(());
        }
        let len = file.metadata().map_err(Errno::from)?.len();
        let mut bytes = vec![0; len as usize];
        file.read_exact_at(&mut bytes, 0).map_err(Errno::from)?;
        lock(&self.durable).files.insert(ino, bytes);
        Ok(())
    }

    /// Makes the entries of directory `rel` durable (directory fsync).
    fn sync_dir(&self, rel: &Path) -> Result<(), Errno> {
        let ino = lock(&self.nodes).ino(rel);
        let entries = self.snapshot_dir(rel).map_err(Errno::from)?;
        lock(&self.durable).dirs.insert(ino, entries);
        Ok(())
    }

    /// Rewrites the backing directory to the durable state.
    fn restore_durable(&self) -> io::Result<()> {
        let durable = lock(&self.durable).clone();
        for entry in fs::read_dir(&self.backing)? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() {
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        write_durable(&durable, 1, &self.backing)
    }
}

fn write_durable(durable: &Durable, ino: u64, dir: &Path) -> io::Result<()> {
    let Some(entries) = durable.dirs.get(&ino) else { return Ok(()) };
    for (name, entry) in entries {
        let path = dir.join(name);
        match entry {
            DurableEntry::Dir { ino, mode } => {
                fs::create_dir(&path)?;
                write_durable(durable, *ino, &path)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
            }
            DurableEntry::File { ino, mode } => {
                fs::write(&path, durable.files.get(ino).map(Vec::as_slice).unwrap_or_default())?;
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))?;
            }
            DurableEntry::Symlink { target } => std::os::unix::fs::symlink(target, &path)?,
        }
    }
    Ok(())
}

fn to_attr(ino: u64, meta: &fs::Metadata) -> FileAttr {
    let time = |secs: i64, nanos: i64| {
        if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs as u64, nanos as u32)
        } else {
            UNIX_EPOCH
        }
    };
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_file() {
        FileType::RegularFile
    } else {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            FileType::NamedPipe
        } else if ft.is_socket() {
            FileType::Socket
        } else if ft.is_char_device() {
            FileType::CharDevice
        } else {
            FileType::BlockDevice
        }
    };
    FileAttr {
        ino: INodeNo(ino),
        size: meta.size(),
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: time(meta.ctime(), meta.ctime_nsec()),
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}

fn kind_of(ft: fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else {
        FileType::RegularFile
    }
}

/// The FUSE side: every method checks the rules, then passes through to the backing directory.
struct Server(Arc<Shared>);

macro_rules! check {
    ($s:expr, $op:expr, $reply:expr, $($path:expr),+) => {
        match $s.check($op, &[$($path),+]) {
            Verdict::Pass { short } => short,
            Verdict::Fail(e) => return $reply.error(e),
        }
    };
}

macro_rules! tri {
    ($e:expr, $reply:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $reply.error(e.into()),
        }
    };
}

fn system_time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl Filesystem for Server {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let s = &self.0;
        let rel = tri!(s.child(parent, name), reply);
        check!(s, Op::Lookup, reply, &rel);
        let attr = tri!(s.entry(&rel), reply);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Getattr, reply, &rel);
        let attr = tri!(s.attr(ino.0, &rel), reply);
        reply.attr(&TTL, &attr);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Setattr, reply, &rel);
        let real = s.real(&rel);
        if let Some(mode) = mode {
            tri!(fs::set_permissions(&real, fs::Permissions::from_mode(mode & 0o7777)), reply);
        }
        if let Some(size) = size {
            let file = match fh.map(|fh| s.file(fh)) {
                Some(Ok(f)) => f,
                _ => tri!(OpenOptions::new().write(true).open(&real), reply),
            };
            tri!(file.set_len(size), reply);
        }
        if atime.is_some() || mtime.is_some() {
            let file = tri!(File::open(&real), reply);
            let mut times = fs::FileTimes::new();
            if let Some(t) = atime {
                times = times.set_accessed(system_time(t));
            }
            if let Some(t) = mtime {
                times = times.set_modified(system_time(t));
            }
            tri!(file.set_times(times), reply);
        }
        let attr = tri!(s.attr(ino.0, &rel), reply);
        reply.attr(&TTL, &attr);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Readlink, reply, &rel);
        let target = tri!(fs::read_link(s.real(&rel)), reply);
        reply.data(target.as_os_str().as_bytes());
    }

    fn mkdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        let s = &self.0;
        let rel = tri!(s.child(parent, name), reply);
        check!(s, Op::Mkdir, reply, &rel);
        let real = s.real(&rel);
        tri!(fs::create_dir(&real), reply);
        tri!(fs::set_permissions(&real, fs::Permissions::from_mode(mode & !umask & 0o7777)), reply);
        let attr = tri!(s.entry(&rel), reply);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let s = &self.0;
        let rel = tri!(s.child(parent, name), reply);
        check!(s, Op::Unlink, reply, &rel);
        tri!(fs::remove_file(s.real(&rel)), reply);
        lock(&s.nodes).forget_path(&rel);
        reply.ok();
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let s = &self.0;
        let rel = tri!(s.child(parent, name), reply);
        check!(s, Op::Rmdir, reply, &rel);
        tri!(fs::remove_dir(s.real(&rel)), reply);
        lock(&s.nodes).forget_path(&rel);
        reply.ok();
    }

    fn symlink(&self, _req: &Request, parent: INodeNo, link_name: &OsStr, target: &Path, reply: ReplyEntry) {
        let s = &self.0;
        let rel = tri!(s.child(parent, link_name), reply);
        check!(s, Op::Symlink, reply, &rel);
        tri!(std::os::unix::fs::symlink(target, s.real(&rel)), reply);
        let attr = tri!(s.entry(&rel), reply);
        reply.entry(&TTL, &attr, Generation(0));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let s = &self.0;
        let from = tri!(s.child(parent, name), reply);
        let to = tri!(s.child(newparent, newname), reply);
        check!(s, Op::Rename, reply, &from, &to);
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL);
        }
        tri!(fs::rename(s.real(&from), s.real(&to)), reply);
        lock(&s.nodes).rename(&from, &to);
        reply.ok();
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Open, reply, &rel);
        let file = tri!(open_backing(&s.real(&rel), flags.0, None), reply);
        let fh = s.next_fh.fetch_add(1, Ordering::SeqCst);
        lock(&s.handles).insert(fh, Handle { file: Some(file) });
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let s = &self.0;
        let rel = tri!(s.child(parent, name), reply);
        check!(s, Op::Create, reply, &rel);
        let file = tri!(open_backing(&s.real(&rel), flags, Some(mode & !umask & 0o7777)), reply);
        let attr = tri!(s.entry(&rel), reply);
        let fh = s.next_fh.fetch_add(1, Ordering::SeqCst);
        lock(&s.handles).insert(fh, Handle { file: Some(file) });
        reply.created(&TTL, &attr, Generation(0), FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        let short = check!(s, Op::Read, reply, &rel);
        let file = tri!(s.file(fh), reply);
        let want = short.map_or(size as usize, |n| n.min(size as usize));
        let mut buf = vec![0; want];
        let mut filled = 0;
        while filled < want {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return reply.error(e.into()),
            }
        }
        reply.data(&buf[..filled]);
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Write, reply, &rel);
        let file = tri!(s.file(fh), reply);
        tri!(file.write_all_at(data, offset), reply);
        lock(&s.durable).poisoned.remove(&ino.0);
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        let s = &self.0;
        let rel = s.path(ino).unwrap_or_default();
        check!(s, Op::Flush, reply, &rel);
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let s = &self.0;
        lock(&s.handles).remove(&fh.0);
        let rel = s.path(ino).unwrap_or_default();
        check!(s, Op::Release, reply, &rel);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let s = &self.0;
        let rel = s.path(ino).unwrap_or_default();
        if let Verdict::Fail(e) = s.check(Op::Fsync, &[&rel]) {
            // The fsyncgate lesson: the dirty data is dropped, and the next fsync reports success.
            lock(&s.durable).poisoned.insert(ino.0);
            return reply.error(e);
        }
        let file = tri!(s.file(fh), reply);
        tri!(s.sync_file(ino.0, &file), reply);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Opendir, reply, &rel);
        if !s.real(&rel).is_dir() {
            return reply.error(Errno::ENOTDIR);
        }
        let fh = s.next_fh.fetch_add(1, Ordering::SeqCst);
        lock(&s.handles).insert(fh, Handle { file: None });
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Readdir, reply, &rel);
        let mut entries =
            vec![(ino.0, FileType::Directory, OsString::from(".")), (1, FileType::Directory, "..".into())];
        for entry in tri!(fs::read_dir(s.real(&rel)), reply) {
            let entry = tri!(entry, reply);
            let ft = tri!(entry.file_type(), reply);
            let child = lock(&s.nodes).ino(&rel.join(entry.file_name()));
            entries.push((child, kind_of(ft), entry.file_name()));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        lock(&self.0.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        let s = &self.0;
        let rel = tri!(s.path(ino), reply);
        check!(s, Op::Fsyncdir, reply, &rel);
        tri!(s.sync_dir(&rel), reply);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        reply.statfs(1 << 20, 1 << 19, 1 << 19, 1 << 20, 1 << 19, 4096, 255, 4096);
    }
}

fn open_backing(path: &Path, flags: i32, create_mode: Option<u32>) -> io::Result<File> {
    let mut options = OpenOptions::new();
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => options.read(true),
        libc::O_WRONLY => options.read(true).write(true),
        _ => options.read(true).write(true),
    };
    if let Some(mode) = create_mode {
        options.mode(mode);
        if flags & libc::O_EXCL != 0 {
            options.create_new(true);
        } else {
            options.create(true);
        }
    }
    // O_APPEND is honoured by the backing file (pwrite appends); O_TRUNC empties it.
    options.custom_flags(flags & (libc::O_APPEND | libc::O_TRUNC));
    options.open(path)
}

/// A mounted fault filesystem over a backing directory. Unmounted on drop (even while a test
/// unwinds), after every hung operation is released.
pub struct FaultFs {
    shared: Arc<Shared>,
    session: Option<fuser::BackgroundSession>,
    /// The FUSE connection number (`/sys/fs/fuse/connections/N`), to abort it on unmount.
    conn: Option<u32>,
    mountpoint: tempfile::TempDir,
}

impl std::fmt::Debug for FaultFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultFs").field("backing", &self.shared.backing).field("mount", &self.path()).finish()
    }
}

/// Why the filesystem cannot be mounted here: `/dev/fuse` is missing.
pub fn unavailable() -> Option<String> {
    (!Path::new("/dev/fuse").exists()).then(|| {
        "/dev/fuse is missing: the FUSE fault tests need the fuse kernel module and the fuse3 package \
         (apt-get install fuse3; in a container, --device /dev/fuse --cap-add SYS_ADMIN)"
            .to_owned()
    })
}

impl FaultFs {
    /// Mounts a fault filesystem over `backing` at a fresh temporary directory. Everything in
    /// `backing` at this moment counts as durable.
    pub fn mount(backing: &Path) -> io::Result<Self> {
        if let Some(why) = unavailable() {
            return Err(io::Error::new(io::ErrorKind::NotFound, why));
        }
        mount_fusectl()?;
        let mountpoint = tempfile::Builder::new().prefix("faultfs-mnt").tempdir()?;
        let shared = Arc::new(Shared::new(&fs::canonicalize(backing)?)?);
        let session = Self::spawn(&shared, mountpoint.path())?;
        let conn = connection(mountpoint.path());
        Ok(Self { shared, session: Some(session), conn, mountpoint })
    }

    fn spawn(shared: &Arc<Shared>, at: &Path) -> io::Result<fuser::BackgroundSession> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![fuser::MountOption::FSName("faultfs".into())];
        config.n_threads = Some(THREADS);
        config.clone_fd = true;
        fuser::spawn_mount(Server(Arc::clone(shared)), at, &config)
    }

    /// The mount point: the backing directory's tree, with faults.
    pub fn path(&self) -> &Path {
        self.mountpoint.path()
    }

    /// The backing directory (its current, not necessarily durable, state).
    pub fn backing(&self) -> &Path {
        &self.shared.backing
    }

    /// Adds a fault rule; it applies to the next matching operation.
    pub fn inject(&self, fault: Fault) -> FaultId {
        let id = self.shared.next_rule.fetch_add(1, Ordering::SeqCst);
        lock(&self.shared.rules).push(Rule { id, fault, seen: 0, fired: 0 });
        FaultId(id)
    }

    /// Removes a rule (a stale-attribute rule unfreezes the attributes).
    pub fn remove(&self, id: FaultId) {
        let mut rules = lock(&self.shared.rules);
        rules.retain(|r| r.id != id.0);
        if !rules.iter().any(|r| r.fault.action == Action::StaleAttrs) {
            lock(&self.shared.frozen).clear();
        }
    }

    /// How many times the rule has fired so far.
    pub fn fired(&self, id: FaultId) -> u32 {
        lock(&self.shared.rules).iter().find(|r| r.id == id.0).map_or(0, |r| r.fired)
    }

    /// Removes every rule and releases every hang.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
        lock(&self.shared.frozen).clear();
        self.release();
    }

    /// Releases every operation hung so far (they then pass through, or fail if power is cut).
    pub fn release(&self) {
        self.shared.release_all();
    }

    /// A guard that removes every rule and releases every hang when dropped: declare it after a
    /// process using the mount, so that it drops first, even when the test panics (a process
    /// blocked in a hung request cannot be killed until the request is answered).
    pub fn clear_on_drop(&self) -> ClearOnDrop<'_> {
        ClearOnDrop(self)
    }

    /// Waits until at least `n` operations are hung, up to `timeout`; returns whether they are.
    pub fn wait_hung(&self, n: usize, timeout: Duration) -> bool {
        let guard = lock(&self.shared.hung);
        let (guard, _) =
            self.shared.hung_cv.wait_timeout_while(guard, timeout, |hung| *hung < n).unwrap_or_else(|e| e.into_inner());
        *guard >= n
    }

    /// How many operations of kind `op` were received (including failed ones).
    pub fn count(&self, op: Op) -> u64 {
        lock(&self.shared.counts).get(&op).copied().unwrap_or(0)
    }

    /// How many mutating operations were received since mount (see [`Op::is_mutation`]).
    pub fn mutations(&self) -> u64 {
        self.shared.mutations.load(Ordering::SeqCst)
    }

    /// After `n` more mutating operations, the power goes off: that operation and every later one
    /// fails with `EIO` and changes nothing. Follow with [`FaultFs::crash`].
    pub fn cut_power_after(&self, n: u64) {
        *lock(&self.shared.power_cut_after) = Some(self.mutations() + n);
    }

    /// Whether the power is off (after [`FaultFs::cut_power_after`] tripped).
    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    /// Power loss: stops serving, unmounts, rewrites the backing directory to what was durable
    /// (fsynced files' content, fsynced directories' entries), and mounts it again at the same
    /// path with no faults. Processes using the old mount must be stopped first.
    pub fn crash(&mut self) -> io::Result<()> {
        self.unmount();
        self.shared.restore_durable()?;
        let shared = Arc::new(Shared::new(&self.shared.backing)?);
        self.session = Some(Self::spawn(&shared, self.mountpoint.path())?);
        self.conn = connection(self.mountpoint.path());
        self.shared = shared;
        Ok(())
    }

    fn unmount(&mut self) {
        self.shared.dead.store(true, Ordering::SeqCst);
        self.shared.release_all();
        let Some(session) = self.session.take() else { return };
        let c = std::ffi::CString::new(self.path().as_os_str().as_bytes()).expect("no NUL in a temp path");
        // SAFETY: a valid NUL-terminated path; MNT_DETACH never blocks on busy users.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        // Ends the connection even if a process still holds files open, so the session threads
        // see ENODEV and the join below returns, and no close() waits on a server that is gone.
        let aborted =
            self.conn.take().is_some_and(|conn| fs::write(format!("{CONNECTIONS}/{conn}/abort"), "1").is_ok());
        if aborted {
            let _ = session.join();
        }
        // Otherwise the session threads are left to end with the connection: joining could hang.
    }
}

/// Where the kernel lists FUSE connections (the `fusectl` filesystem).
const CONNECTIONS: &str = "/sys/fs/fuse/connections";

/// Mounts `fusectl` at [`CONNECTIONS`] unless it is there: aborting a connection needs it.
fn mount_fusectl() -> io::Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    if mounts.lines().any(|l| l.split(' ').nth(1) == Some(CONNECTIONS)) {
        return Ok(());
    }
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (src, target, fstype) = (c("fusectl"), c(CONNECTIONS), c("fusectl"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot mount fusectl at {CONNECTIONS} (needed to abort a hung mount): {e}"),
            ));
        }
    }
    Ok(())
}

/// See [`FaultFs::clear_on_drop`].
#[derive(Debug)]
#[must_use]
pub struct ClearOnDrop<'a>(&'a FaultFs);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// The connection number of the FUSE mount at `path` (the minor of its device number).
fn connection(path: &Path) -> Option<u32> {
    fs::metadata(path).ok().map(|m| libc::minor(m.dev()))
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        self.unmount();
    }
}
