//! The server's view of the files: open documents, the workspace's `*.rule` files on disk,
//! how they group into decks, and re-checking a deck.
//!
//! Owns: document texts, versions, their symbol indexes and their last diagnostics, and
//! reading files from disk (bounded, regular files only: a FIFO named `x.rule` would block
//! the server forever) with a notice for each file it has to leave out.
//! A deck is the `.rule` files of one directory (open or on disk), checked together as
//! `ruledeck check DIR` would. Must not: speak the protocol's message types beyond the
//! diagnostics it stores for publishing.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use bumpalo::Bump;
use lsp_types::{DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Range, Uri};

use super::index::{self, FileIndex};
use super::lines::Lines;
use crate::diagnostics::{Diagnostic, Severity};
use crate::files::{read_bounded, ReadError};
use crate::limits::MAX_SOURCE_BYTES;
use crate::source::FileId;
use crate::syntax;

/// Directories the workspace scan does not enter.
const SKIP_DIRS: &[&str] = &["target", "node_modules"];

/// A "did you mean" fix: replacing `range` with `replacement` resolves `diagnostic`.
#[derive(Clone, Debug)]
pub struct Fix {
    pub range: Range,
    pub replacement: String,
    pub diagnostic: lsp_types::Diagnostic,
}

#[derive(Debug)]
pub struct Doc {
    pub uri: Uri,
    pub text: String,
    pub lines: Lines,
    /// The editor's version while open; `None` for files read from disk.
    pub version: Option<i32>,
    pub open: bool,
    /// The index of the last text that parsed; `fresh` says whether that is the current text.
    /// A stale index still names the file's declarations (for completion) but its spans may
    /// be wrong, so navigation and rename ignore it.
    pub index: FileIndex,
    pub fresh: bool,
    pub diagnostics: Vec<lsp_types::Diagnostic>,
    pub fixes: Vec<Fix>,
}

impl Doc {
    fn new(uri: Uri, text: String, version: Option<i32>, open: bool) -> Doc {
        Doc {
            uri,
            lines: Lines::new(&text),
            text,
            version,
            open,
            index: FileIndex::default(),
            fresh: false,
            diagnostics: Vec::new(),
            fixes: Vec::new(),
        }
    }

    pub fn set_text(&mut self, text: String, version: Option<i32>) {
        self.lines = Lines::new(&text);
        self.text = text;
        self.version = version;
        self.fresh = false;
    }

    pub fn range(&self, span: crate::source::Span) -> Range {
        self.lines.range(&self.text, span)
    }

    /// The last part of the name, for messages.
    pub fn file_name(&self) -> String {
        let name = self.name();
        name.rsplit('/').next().unwrap_or(&name).to_string()
    }

    /// The index, if it describes the current text.
    pub fn fresh_index(&self) -> Option<&FileIndex> {
        self.fresh.then_some(&self.index)
    }

    /// The file name diagnostics and the formatter are given: the path for files, else the URI.
    pub fn name(&self) -> String {
        uri_to_path(&self.uri).map_or_else(|| self.uri.as_str().to_string(), |p| p.display().to_string())
    }
}

#[derive(Debug, Default)]
pub struct World {
    /// By canonical URI text, so iteration (and every list the server returns) is sorted.
    pub docs: BTreeMap<String, Doc>,
    /// Decks whose files changed since they were last checked.
    pub dirty: BTreeSet<String>,
    /// Why files on disk were left out, one sentence each, oldest first: the server passes
    /// them on to the client's log and clears the list.
    pub notices: Vec<String>,
}

/// The canonical key of a URI: file URIs re-encoded from their decoded path, so that two
/// spellings of one file meet; other schemes as given.
pub fn key(uri: &Uri) -> String {
    match uri_to_path(uri) {
        Some(p) => path_to_uri(&p).map_or_else(|| uri.as_str().to_string(), |u| u.as_str().to_string()),
        None => uri.as_str().to_string(),
    }
}

/// The deck a document belongs to: its directory, or the document alone when it is not a file.
pub fn deck_of(key: &str) -> String {
    match key.strip_prefix("file://") {
        Some(path) => path.rsplit_once('/').map_or(key.to_string(), |(dir, _)| format!("file://{dir}/")),
        None => key.to_string(),
    }
}

impl World {
    /// Reads every `*.rule` file under `root` (sorted, each once, skipping hidden, `target`
    /// and `node_modules` directories). A file that cannot be used (not a regular file, above
    /// the source-size limit, not UTF-8) is left out with a notice.
    pub fn scan(&mut self, root: &Path) {
        for path in rule_files(root) {
            let Some(uri) = path_to_uri(&path) else { continue };
            let k = key(&uri);
            if self.docs.contains_key(&k) {
                continue;
            }
            let Some(text) = self.read(&path) else { continue };
            self.dirty.insert(deck_of(&k));
            self.docs.insert(k, Doc::new(uri, text, None, false));
        }
    }

    /// The text of a file on disk: `None` when there is none (no such file is not worth a
    /// notice: it was deleted, or the document was never saved) or it cannot be used.
    fn read(&mut self, path: &Path) -> Option<String> {
        let name = path.display();
        let problem = match read_bounded(path, MAX_SOURCE_BYTES) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => return Some(text),
                Err(_) => format!("`{name}` is not UTF-8 text"),
            },
            Err(ReadError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(ReadError::Io { error, .. }) => format!("cannot read `{name}`: {error}"),
            Err(ReadError::NotAFile { kind, .. }) => format!("`{name}` is a {kind}, not a regular file"),
            Err(ReadError::TooLarge { limit, .. }) => format!("`{name}` is larger than the {limit}-byte source limit"),
        };
        self.notices.push(format!("{problem}; the language server leaves it out"));
        None
    }

    pub fn open(&mut self, uri: Uri, text: String, version: i32) {
        let k = key(&uri);
        self.dirty.insert(deck_of(&k));
        match self.docs.get_mut(&k) {
            Some(doc) => {
                doc.uri = uri;
                doc.open = true;
                doc.set_text(text, Some(version));
            }
            None => {
                self.docs.insert(k, Doc::new(uri, text, Some(version), true));
            }
        }
    }

    pub fn change(&mut self, uri: &Uri, text: String, version: i32) {
        let k = key(uri);
        if let Some(doc) = self.docs.get_mut(&k) {
            doc.set_text(text, Some(version));
            self.dirty.insert(deck_of(&k));
        }
    }

    /// A closed document falls back to the file on disk, or leaves the deck if there is none.
    /// Returns the URI to clear diagnostics for when it left.
    pub fn close(&mut self, uri: &Uri) -> Option<Uri> {
        let k = key(uri);
        self.dirty.insert(deck_of(&k));
        let on_disk = uri_to_path(uri).and_then(|p| self.read(&p));
        match on_disk {
            Some(text) => {
                if let Some(doc) = self.docs.get_mut(&k) {
                    doc.open = false;
                    doc.set_text(text, None);
                }
                None
            }
            None => self.docs.remove(&k).map(|d| d.uri),
        }
    }

    /// A file changed on disk: re-read it unless the editor has it open.
    pub fn disk_changed(&mut self, uri: &Uri) -> Option<Uri> {
        let k = key(uri);
        if self.docs.get(&k).is_some_and(|d| d.open) {
            return None;
        }
        let text = uri_to_path(uri).and_then(|p| self.read(&p));
        self.dirty.insert(deck_of(&k));
        match text {
            Some(text) => {
                match self.docs.get_mut(&k) {
                    Some(doc) => doc.set_text(text, None),
                    None => {
                        self.docs.insert(k, Doc::new(uri.clone(), text, None, false));
                    }
                }
                None
            }
            None => self.docs.remove(&k).map(|d| d.uri),
        }
    }

    /// The keys of the documents of `deck`, sorted.
    pub fn deck_keys(&self, deck: &str) -> Vec<String> {
        self.docs.keys().filter(|k| deck_of(k) == deck).cloned().collect()
    }

    /// The documents of the same deck as `key`, sorted by key.
    pub fn deck_docs<'w>(&'w self, key: &str) -> impl Iterator<Item = &'w Doc> + 'w {
        let deck = deck_of(key);
        self.docs.iter().filter(move |(k, _)| deck_of(k) == deck).map(|(_, d)| d)
    }

    /// Re-checks one deck: parses every file once, rebuilds the indexes of those that parse,
    /// and runs the checker over them when all do (as `ruledeck check` does, syntax errors
    /// first). Stores each file's diagnostics; returns the keys of the deck's files.
    pub fn recheck(&mut self, deck: &str) -> Vec<String> {
        let keys = self.deck_keys(deck);
        let bump = Bump::new();
        let mut asts = Vec::new();
        let mut diags: Vec<Diagnostic> = Vec::new();
        for (id, k) in keys.iter().enumerate() {
            let doc = self.docs.get_mut(k).expect("deck keys come from the map");
            match syntax::parse(&bump, id as FileId, &doc.text) {
                Ok(ast) => {
                    doc.index = index::build(&ast, &doc.text);
                    doc.fresh = true;
                    asts.push(ast);
                }
                Err(mut d) => {
                    doc.fresh = false;
                    diags.append(&mut d);
                }
            }
        }
        if diags.is_empty() {
            diags = match crate::check::check_parsed(&asts) {
                Ok((_, warnings)) => warnings,
                Err(d) => d,
            };
        }
        let uris: Vec<Uri> = keys.iter().map(|k| self.docs[k].uri.clone()).collect();
        let mut per_file: Vec<(Vec<lsp_types::Diagnostic>, Vec<Fix>)> = vec![Default::default(); keys.len()];
        for d in &diags {
            // A problem no source place explains shows at the start of the deck's first file.
            let span = d.span.unwrap_or_default();
            let file = span.file as usize;
            let Some(k) = keys.get(file) else { continue };
            let doc = &self.docs[k];
            let related: Vec<DiagnosticRelatedInformation> = d
                .labels
                .iter()
                .filter_map(|l| {
                    let other = &self.docs[keys.get(l.span.file as usize)?];
                    Some(DiagnosticRelatedInformation {
                        location: Location { uri: uris[l.span.file as usize].clone(), range: other.range(l.span) },
                        message: l.message.clone(),
                    })
                })
                .collect();
            // The primary label is text under the caret; the editor's squiggle is the caret.
            let mut message = d.message.clone();
            for note in &d.notes {
                message.push_str(&format!("\nnote: {note}"));
            }
            if let Some(help) = &d.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            let range = doc.range(span);
            let out = lsp_types::Diagnostic {
                range,
                severity: Some(match d.severity {
                    Severity::Error => DiagnosticSeverity::ERROR,
                    Severity::Warning => DiagnosticSeverity::WARNING,
                }),
                code: Some(NumberOrString::String(d.code.as_str().to_string())),
                source: Some("ruledeck".to_string()),
                message,
                related_information: (!related.is_empty()).then_some(related),
                data: d.suggestion.as_ref().map(|s| serde_json::json!({ "replacement": s })),
                ..Default::default()
            };
            if let (Some(replacement), Some(_)) = (&d.suggestion, d.span) {
                per_file[file].1.push(Fix { range, replacement: replacement.clone(), diagnostic: out.clone() });
            }
            per_file[file].0.push(out);
        }
        for (k, (diagnostics, fixes)) in keys.iter().zip(per_file) {
            let doc = self.docs.get_mut(k).expect("deck keys come from the map");
            doc.diagnostics = diagnostics;
            doc.fixes = fixes;
        }
        self.dirty.remove(deck);
        keys
    }

    /// Re-checks `key`'s deck if it changed since its last check; returns the keys re-checked.
    pub fn refresh(&mut self, key: &str) -> Vec<String> {
        let deck = deck_of(key);
        if self.dirty.contains(&deck) {
            self.recheck(&deck)
        } else {
            Vec::new()
        }
    }
}

/// The `*.rule` paths below `root`, sorted, each file once however it is reached. Symlinks
/// are followed, but a directory or file already reached by its canonical path is skipped,
/// so `ln -s . self` neither loops nor loads every file twice. (Not `load::rule_files`: the
/// server also skips hidden and build directories, and an unreadable entry is left out
/// rather than fatal.)
fn rule_files(root: &Path) -> Vec<PathBuf> {
    let mut walk = Walk::default();
    walk.dir(root);
    walk.files
}

#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    seen_files: HashSet<PathBuf>,
    seen_dirs: HashSet<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path) {
        let Ok(canonical) = std::fs::canonicalize(dir) else { return };
        if !self.seen_dirs.insert(canonical) {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !name.starts_with('.') && !SKIP_DIRS.contains(&name) {
                    self.dir(&path);
                }
            } else if name.ends_with(".rule") {
                // A dangling symlink (an editor's lock file `.#x.rule`) is no file: skipped.
                // Anything else is listed, and reading it says what is wrong with it.
                let Ok(canonical) = std::fs::canonicalize(&path) else { continue };
                if self.seen_files.insert(canonical) {
                    self.files.push(path);
                }
            }
        }
    }
}

/// The path of a `file:` URI, percent-decoded.
pub fn uri_to_path(uri: &Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    // `file://host/path` is not a local file; `file:///path` has an empty host.
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(path.get(i + 1..i + 3).unwrap_or(""), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok().map(PathBuf::from)
}

/// A `file:` URI for an absolute path, percent-encoding everything but unreserved characters
/// and `/`.
pub fn path_to_uri(path: &Path) -> Option<Uri> {
    let path = path.to_str()?;
    let mut s = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.parse().ok()
}
