//! The release store: a directory.
//!
//! ```text
//! DIR/bundles/HASH.rdb        write-once bundles, named by the SHA-256 of their bytes
//! DIR/releases/NNNNNNNNNN.json one manifest per release, write-once
//! DIR/CURRENT                 the current release's number; replaced atomically
//! DIR/journal.jsonl           one line per release or rollback, append-only
//! DIR/lock                    held (flock) by whoever publishes
//! DIR/tmp/                    temporary files; never read
//! ```
//!
//! Owns: every byte under DIR. Each file is written to a temporary file in `tmp/`, synced,
//! renamed into place, and the directory synced. A publish writes the bundle, then the
//! manifest, then moves `CURRENT` (the commit point), then appends to the journal; a crash
//! before `CURRENT` moves leaves the previous release current (the new manifest is an
//! orphan whose number is never reused), a crash after it leaves the new one current, and
//! a journal that lacks the current release's line is completed from its manifest.
//! Nothing is ever deleted. Must not: compile or check decks (callers hand it the result).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::manifest::{changed_against, content_digest, plan, sha256_hex, Manifest, MANIFEST_FORMAT};
use crate::compile::bundle;
use crate::compile::program::Program;
use crate::limits::{MAX_BUNDLE_BYTES, MAX_DATA_FILE_BYTES};
use crate::Checked;

/// Why the store refused or failed. Always names the file concerned and what to do.
#[derive(Debug)]
pub struct StoreError {
    /// The file at fault, when one is.
    pub path: Option<PathBuf>,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "`{}`: {}", p.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for StoreError {}

fn err(path: &Path, message: impl Into<String>) -> StoreError {
    StoreError { path: Some(path.to_path_buf()), message: message.into() }
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    err(path, e.to_string())
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The release number.
    pub release: u64,
    /// `release` or `rollback`.
    pub kind: String,
    /// For a rollback: the release whose content it brings back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
    /// The release that was current before.
    pub parent: Option<u64>,
    /// When it was published (RFC 3339, UTC).
    pub time: String,
    /// The note given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// SHA-256 of its bundle.
    pub hash: String,
    /// Instances added, changed or removed.
    pub changed: Vec<String>,
}

impl JournalEntry {
    fn of(m: &Manifest) -> JournalEntry {
        JournalEntry {
            release: m.release,
            kind: m.kind.clone(),
            rollback_of: m.rollback_of,
            parent: m.parent,
            time: m.time.clone(),
            note: m.note.clone(),
            hash: m.hash.clone(),
            changed: m.changed.clone(),
        }
    }
}

/// A release loaded and verified: its manifest and its program.
pub struct Loaded {
    /// The release's manifest.
    pub manifest: Manifest,
    /// Its verified program.
    pub program: Arc<Program>,
}

/// What a publish did.
#[derive(Debug)]
pub enum Publish {
    /// A new release, now current.
    Published(Manifest),
    /// The content equals the current release's: nothing was written.
    Unchanged(Manifest),
    /// The current release moved (to `current`) after the deck was checked: nothing was
    /// written; check the deck again against it.
    Moved {
        /// The release that is current now.
        current: Option<u64>,
    },
}

/// The names of the write steps a publish goes through, in order. A test crashes a
/// publish after each one (see [`Store::crash_after`]).
pub const WRITE_STEPS: &[&str] = &[
    "bundle written to a temporary file and synced",
    "bundle renamed into place",
    "bundles/ synced",
    "manifest written to a temporary file and synced",
    "manifest renamed into place",
    "releases/ synced",
    "CURRENT written to a temporary file and synced",
    "CURRENT renamed into place",
    "store directory synced",
    "half a journal line appended",
    "journal line appended and synced",
];

/// A release store at a directory.
pub struct Store {
    dir: PathBuf,
    /// Test hook: the write step after which a publish stops as if the process died.
    crash_after: Option<usize>,
    steps: AtomicUsize,
}

impl Store {
    /// Opens an existing store.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let dir = dir.into();
        if !dir.join("releases").is_dir() {
            return Err(err(
                &dir,
                "not a release store (no `releases/` inside); publish a first release with `ruledeck release FILES… --store DIR`",
            ));
        }
        Ok(Store { dir, crash_after: None, steps: AtomicUsize::new(0) })
    }

    /// Opens a store, creating an empty one if `dir` does not exist or is empty.
    ///
    /// Concurrent first publishes race here before any of them holds the store's lock: a
    /// directory holding nothing but some of the store's own folders is one another process
    /// is creating, so this one creates the rest too (creating a folder that exists is a
    /// no-op) rather than calling it "not a store".
    pub fn create(dir: impl Into<PathBuf>) -> Result<Store, StoreError> {
        const FOLDERS: [&str; 3] = ["bundles", "releases", "tmp"];
        let dir = dir.into();
        let being_created = match fs::read_dir(&dir) {
            Ok(entries) => entries.filter_map(Result::ok).all(|e| FOLDERS.iter().any(|f| e.file_name() == *f)),
            Err(_) => true,
        };
        if being_created {
            for sub in FOLDERS {
                fs::create_dir_all(dir.join(sub)).map_err(|e| io(&dir.join(sub), e))?;
            }
            sync_dir(&dir)?;
        }
        Store::open(dir)
    }

    /// Test hook: make the next publish stop after write step `step` (an index into
    /// [`WRITE_STEPS`]), returning an error and leaving the files as a crash would.
    #[doc(hidden)]
    pub fn crash_after(mut self, step: usize) -> Store {
        self.crash_after = Some(step);
        self
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn step(&self, name: &str) -> Result<(), StoreError> {
        let n = self.steps.fetch_add(1, Ordering::SeqCst);
        if self.crash_after == Some(n) {
            return Err(StoreError { path: None, message: format!("injected crash after: {name}") });
        }
        Ok(())
    }

    fn manifest_path(&self, n: u64) -> PathBuf {
        self.dir.join("releases").join(format!("{n:010}.json"))
    }

    fn bundle_path(&self, hash: &str) -> PathBuf {
        self.dir.join("bundles").join(format!("{hash}.rdb"))
    }

    /// The current release's number, or `None` for a store with no release yet.
    pub fn current_number(&self) -> Result<Option<u64>, StoreError> {
        let path = self.dir.join("CURRENT");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, e)),
        };
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| err(&path, format!("does not hold a release number (found {:?})", text.trim())))
    }

    /// The manifest of release `n`, checked for format and number.
    pub fn manifest(&self, n: u64) -> Result<Manifest, StoreError> {
        let path = self.manifest_path(n);
        if !path.exists() {
            return Err(err(&path, format!("release {n} does not exist; `ruledeck releases --store DIR` lists them")));
        }
        let bytes = read(&path, MAX_DATA_FILE_BYTES)?;
        parse_manifest(&bytes, n).map_err(|message| err(&path, message))
    }

    /// The current release's manifest, if any.
    pub fn current_manifest(&self) -> Result<Option<Manifest>, StoreError> {
        self.current_number()?.map(|n| self.manifest(n)).transpose()
    }

    /// Loads release `n` (or the current one): manifest, bundle, hash check, verification.
    /// A bundle whose bytes do not hash to the manifest's hash is refused, never run.
    pub fn load(&self, n: Option<u64>) -> Result<Loaded, StoreError> {
        let n = match n {
            Some(n) => n,
            None => self.current_number()?.ok_or_else(|| {
                err(&self.dir, "the store has no release yet; publish one with `ruledeck release FILES… --store DIR`")
            })?,
        };
        let manifest = self.manifest(n)?;
        let path = self.bundle_path(&manifest.hash);
        let bytes = read(&path, MAX_BUNDLE_BYTES)?;
        let found = sha256_hex(&bytes);
        if found != manifest.hash {
            return Err(err(
                &path,
                format!(
                    "bundle is corrupt: its SHA-256 is {found}, release {n} expects {}; it was not run",
                    manifest.hash
                ),
            ));
        }
        let program = bundle::from_bytes(&bytes).map_err(|e| err(&path, e.to_string()))?;
        Ok(Loaded { manifest, program: Arc::new(program) })
    }

    /// Every release number with a manifest, including orphans of interrupted publishes.
    fn highest_number(&self) -> Result<u64, StoreError> {
        let dir = self.dir.join("releases");
        let mut max = self.current_number()?.unwrap_or(0);
        for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
            if let Ok(n) = stem.parse::<u64>() {
                max = max.max(n);
            }
        }
        Ok(max)
    }

    /// The release history, newest first: the journal, completed with the current release
    /// if a crash cut its line.
    pub fn history(&self) -> Result<Vec<JournalEntry>, StoreError> {
        let path = self.dir.join("journal.jsonl");
        let bytes = match fs::metadata(&path) {
            Ok(_) => read(&path, MAX_DATA_FILE_BYTES)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&path, e)),
        };
        let mut entries = parse_journal(&bytes).map_err(|message| err(&path, message))?;
        if let Some(current) = self.current_number()? {
            if !entries.iter().any(|e| e.release == current) {
                entries.push(JournalEntry::of(&self.manifest(current)?));
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.release));
        Ok(entries)
    }

    fn lock(&self) -> Result<File, StoreError> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io(&path, e))?;
        fs4::FileExt::lock(&file).map_err(|e| io(&path, e))?;
        Ok(file)
    }

    /// Publishes a checked and compiled deck as a new release, unless its content equals
    /// the current release's. `items` are the deck's item fingerprints (from
    /// [`crate::check_sources_against`]); `checked_against` is the release whose baseline
    /// the deck was checked with (`None`: an empty store); `time` is RFC 3339.
    ///
    /// If another publish moved the current release since the deck was checked, nothing is
    /// written and [`Publish::Moved`] says so: check again against the new release.
    pub fn publish(
        &self,
        checked: &Checked,
        program: &Program,
        items: &[String],
        checked_against: Option<u64>,
        time: &str,
        note: Option<&str>,
    ) -> Result<Publish, StoreError> {
        let _lock = self.lock()?;
        let current = self.current_manifest()?;
        if current.as_ref().map(|c| c.release) != checked_against {
            return Ok(Publish::Moved { current: current.map(|c| c.release) });
        }
        let bytes = bundle::to_bytes(program);
        let hash = sha256_hex(&bytes);
        let mut m = plan(checked, program, items, &hash, current.as_ref());
        if let Some(cur) = &current {
            if cur.content == m.content {
                return Ok(Publish::Unchanged(cur.clone()));
            }
        }
        m.time = time.to_string();
        m.note = note.map(str::to_owned);
        self.commit(m, &bytes, current.as_ref()).map(Publish::Published)
    }

    /// Publishes a new release whose content is release `n`'s (a rollback rolls forward).
    pub fn rollback(&self, n: u64, time: &str, note: Option<&str>) -> Result<Publish, StoreError> {
        let _lock = self.lock()?;
        if !self.history()?.iter().any(|e| e.release == n) {
            let path = self.manifest_path(n);
            if path.exists() {
                return Err(err(&path, format!("release {n} was never current (a publish was interrupted before it committed); roll back to a release `ruledeck releases` lists")));
            }
        }
        let target = self.load(Some(n))?;
        let current = self.current_manifest()?;
        if let Some(cur) = &current {
            if cur.content == target.manifest.content {
                return Ok(Publish::Unchanged(cur.clone()));
            }
        }
        let mut m = target.manifest.clone();
        m.kind = "rollback".into();
        m.rollback_of = Some(n);
        m.parent = current.as_ref().map(|c| c.release);
        m.time = time.to_string();
        m.note = note.map(str::to_owned);
        // Versions seen since release n stay known, so later content keeps its numbers.
        if let Some(cur) = &current {
            for (inst, table) in &cur.known_versions {
                let mine = m.known_versions.entry(inst.clone()).or_default();
                for (hash, v) in table {
                    mine.entry(hash.clone()).or_insert(*v);
                }
            }
        }
        m.changed = changed_against(&m, current.as_ref());
        let bytes = bundle::to_bytes(&target.program);
        // The bundle exists already (it was just verified); `commit` keeps it.
        self.commit(m, &bytes, current.as_ref()).map(Publish::Published)
    }

    /// Writes bundle, manifest, `CURRENT`, journal, in that order, under the lock.
    fn commit(&self, mut m: Manifest, bytes: &[u8], current: Option<&Manifest>) -> Result<Manifest, StoreError> {
        self.complete_journal(current)?;
        m.release = self.highest_number()? + 1;
        m.content = content_digest(&m);
        m.checksum = checksum(&m);
        let bundle_path = self.bundle_path(&m.hash);
        let intact = fs::read(&bundle_path).is_ok_and(|b| sha256_hex(&b) == m.hash);
        if intact {
            for _ in 0..3 {
                self.step("bundle already stored")?;
            }
        } else {
            self.write_atomically(&bundle_path, bytes, 0)?;
        }
        let json = serde_json::to_vec_pretty(&m).expect("manifests serialize");
        self.write_atomically(&self.manifest_path(m.release), &json, 3)?;
        self.write_atomically(&self.dir.join("CURRENT"), format!("{}\n", m.release).as_bytes(), 6)?;
        self.append_journal(&JournalEntry::of(&m))?;
        Ok(m)
    }

    /// Temp file in `tmp/`, synced; renamed over `path`; the directory synced. Three steps.
    fn write_atomically(&self, path: &Path, bytes: &[u8], first_step: usize) -> Result<(), StoreError> {
        let tmp_dir = self.dir.join("tmp");
        fs::create_dir_all(&tmp_dir).map_err(|e| io(&tmp_dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| io(&tmp_dir, e))?;
        // Temporary files are private (0600); store files are read by serving processes.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::Permissions::from_mode(0o644);
            tmp.as_file().set_permissions(mode).map_err(|e| io(tmp.path(), e))?;
        }
        tmp.write_all(bytes).map_err(|e| io(tmp.path(), e))?;
        tmp.as_file().sync_all().map_err(|e| io(tmp.path(), e))?;
        // A crash here leaves a temporary file that nothing reads; keep it as a crash would.
        let tmp = tmp.into_temp_path().keep().map_err(|e| err(&tmp_dir, e.to_string()))?;
        self.step(WRITE_STEPS[first_step])?;
        fs::rename(&tmp, path).map_err(|e| io(path, e))?;
        self.step(WRITE_STEPS[first_step + 1])?;
        sync_dir(path.parent().unwrap_or(&self.dir))?;
        self.step(WRITE_STEPS[first_step + 2])
    }

    fn append_journal(&self, entry: &JournalEntry) -> Result<(), StoreError> {
        let path = self.dir.join("journal.jsonl");
        let mut file = OpenOptions::new().create(true).append(true).read(true).open(&path).map_err(|e| io(&path, e))?;
        let existing = fs::read(&path).map_err(|e| io(&path, e))?;
        let mut line = Vec::new();
        // A torn line left by a crash is ended first, so this entry starts a line of its own.
        if existing.last().is_some_and(|&b| b != b'\n') {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(entry).expect("journal entries serialize"));
        line.push(b'\n');
        if self.crash_after == Some(self.steps.load(Ordering::SeqCst)) {
            let half = &line[..line.len() / 2];
            file.write_all(half).and_then(|()| file.sync_all()).map_err(|e| io(&path, e))?;
        }
        self.step(WRITE_STEPS[9])?;
        file.write_all(&line).and_then(|()| file.sync_all()).map_err(|e| io(&path, e))?;
        sync_dir(&self.dir)?;
        self.step(WRITE_STEPS[10])
    }

    /// Appends the current release's journal line if a crash cut it (under the lock).
    fn complete_journal(&self, current: Option<&Manifest>) -> Result<(), StoreError> {
        let Some(cur) = current else { return Ok(()) };
        let path = self.dir.join("journal.jsonl");
        let text = fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        let logged =
            text.lines().any(|l| serde_json::from_str::<JournalEntry>(l).is_ok_and(|e| e.release == cur.release));
        if logged {
            return Ok(());
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io(&path, e))?;
        let mut line = Vec::new();
        if !text.is_empty() && !text.ends_with('\n') {
            line.push(b'\n');
        }
        line.extend(serde_json::to_vec(&JournalEntry::of(cur)).expect("journal entries serialize"));
        line.push(b'\n');
        file.write_all(&line).and_then(|()| file.sync_all()).map_err(|e| io(&path, e))
    }
}

/// Parses and checks the manifest of release `n`: format, number, content digest and
/// checksum. The message says what is wrong (the caller names the file).
pub fn parse_manifest(bytes: &[u8], n: u64) -> Result<Manifest, String> {
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| format!("manifest is corrupt or truncated: {e}"))?;
    if m.format != MANIFEST_FORMAT {
        return Err(format!("manifest format {} is not supported; this ruledeck reads {MANIFEST_FORMAT}", m.format));
    }
    if m.release != n {
        return Err(format!("manifest says release {} but is stored as release {n}", m.release));
    }
    if m.content != content_digest(&m) || m.checksum != checksum(&m) {
        return Err("manifest is corrupt: its checksum does not match its entries".into());
    }
    Ok(m)
}

/// Parses the journal, in file order. A torn line (a crash during an append) is skipped
/// when it is the last line, or when the next line is the same entry written whole (see
/// `complete_journal`); any other line that does not parse is an error naming its number.
pub fn parse_journal(bytes: &[u8]) -> Result<Vec<JournalEntry>, String> {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut entries = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<JournalEntry>(line) {
            Ok(e) => entries.push(e),
            Err(_) if lines.get(i + 1).is_none_or(|next| next.starts_with(line)) => {}
            Err(e) => return Err(format!("line {} is corrupt: {e}", i + 1)),
        }
    }
    Ok(entries)
}

/// Reads a store file with a size limit (a store is data: it may be damaged or hostile).
fn read(path: &Path, limit: usize) -> Result<Vec<u8>, StoreError> {
    crate::files::read_bounded(path, limit).map_err(|e| StoreError { path: None, message: e.to_string() })
}

/// SHA-256 of the manifest's compact JSON with an empty `checksum`: any edit shows.
fn checksum(m: &Manifest) -> String {
    let mut copy = m.clone();
    copy.checksum = String::new();
    sha256_hex(&serde_json::to_vec(&copy).expect("manifests serialize"))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    crate::files::sync_dir(dir).map_err(|e| io(dir, e))
}
