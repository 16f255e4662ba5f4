//! Source files and spans: the coordinates every later stage reports errors in.
//!
//! Owns file names, texts and line tables. Knows nothing about syntax; the parser and
//! checker only store [`Span`]s and ask [`Sources`] to turn them into lines and columns
//! when a diagnostic is rendered.

use std::fmt;

/// Index of a file in a [`Sources`] set.
pub type FileId = u32;

// Stored on every AST node and beside every instruction.
const _: () = assert!(std::mem::size_of::<Span>() == 12);

/// A byte range in one source file. 12 bytes, `Copy`, cheap to store on every node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Span {
    /// The file, an index into the [`Sources`].
    pub file: FileId,
    /// Byte offset where the span starts.
    pub start: u32,
    /// Byte offset just past its end.
    pub end: u32,
}

impl Span {
    /// A span of `file` from byte `start` to `end`.
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        // Files are bounded by the source-size limit (far below 4 GiB), so offsets fit u32.
        Span { file, start: start as u32, end: end as u32 }
    }

    /// The smallest span covering both (same file assumed).
    pub fn to(self, other: Span) -> Span {
        Span { file: self.file, start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

impl fmt::Debug for Span {
    // Compact form keeps AST snapshots readable: `3:10..24` is file 3, bytes 10 to 24.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.file == 0 {
            write!(f, "{}..{}", self.start, self.end)
        } else {
            write!(f, "{}:{}..{}", self.file, self.start, self.end)
        }
    }
}

/// One source file: its name as the user gave it, its text and where its lines start.
#[derive(Debug)]
pub struct SourceFile {
    /// The name the user gave it (its path, for files read from disk).
    pub name: String,
    /// Its text.
    pub text: String,
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// A file with its line table.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        SourceFile { name: name.into(), text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line] as usize;
        let end = (offset as usize).min(self.text.len());
        // Offsets from our own spans always sit on char boundaries; be lenient anyway.
        let col = self.text.get(start..end).map_or(end - start, |s| s.chars().count()) + 1;
        (line + 1, col)
    }
}

/// All files of one compilation.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    /// No files yet.
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Adds a file. A leading UTF-8 byte order mark (which some Windows editors write) is
    /// dropped: it is not part of the text, and spans count from after it.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let mut text = text.into();
        if text.starts_with('\u{FEFF}') {
            text.drain(..'\u{FEFF}'.len_utf8());
        }
        self.files.push(SourceFile::new(name, text));
        (self.files.len() - 1) as FileId
    }

    /// File `id` (as given by [`Sources::add`]).
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id as usize]
    }

    /// Every file with its id, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files.iter().enumerate().map(|(i, f)| (i as FileId, f))
    }

    /// How many files there are.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
