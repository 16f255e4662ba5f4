//! Bounded and atomic file access, for every layer that reads or writes files (the CLI, and
//! the layers built on the library).
//!
//! Owns: reading a file with a size limit (stopping one byte past it, so `/dev/zero` or a
//! sparse 1 GB file costs no more than the limit), refusing what is not a regular file (a
//! FIFO would block forever), reading lines with a length limit, and replacing a file
//! atomically (temporary file, sync, rename, sync the directory), so a crash leaves the old
//! file or the new one, never a torn one. Must not: know what the bytes mean.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The operating system refused.
    #[allow(missing_docs)]
    Io { path: PathBuf, error: io::Error },
    /// A directory, FIFO, socket or device: only regular files are read.
    #[allow(missing_docs)]
    NotAFile { path: PathBuf, kind: &'static str },
    /// Larger than the limit (`size` is what the file reported, or `limit + 1` if it grew).
    #[allow(missing_docs)]
    TooLarge { path: PathBuf, size: u64, limit: usize },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, error } => write!(f, "cannot read `{}`: {error}", path.display()),
            ReadError::NotAFile { path, kind } => {
                write!(f, "`{}` is a {kind}, not a regular file: give the path of a file", path.display())
            }
            ReadError::TooLarge { path, size, limit } => write!(
                f,
                "`{}` is {} bytes; the limit is {limit} bytes ({}): split it or reduce it",
                path.display(),
                if *size > *limit as u64 { size.to_string() } else { format!("more than {limit}") },
                human(*limit)
            ),
        }
    }
}

impl std::error::Error for ReadError {}

fn human(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if meta.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

/// Reads a whole regular file of at most `limit` bytes. Refuses anything else before reading
/// it, and never reads more than `limit + 1` bytes even if the file grows meanwhile.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    let io = |error| ReadError::Io { path: path.to_path_buf(), error };
    // Metadata of what the path points to; opening a FIFO to inspect it would block.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile { path: path.to_path_buf(), kind: kind_of(&meta) });
    }
    if meta.len() > limit as u64 {
        return Err(ReadError::TooLarge { path: path.to_path_buf(), size: meta.len(), limit });
    }
    let file = File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit as u64 + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { path: path.to_path_buf(), size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

/// What [`read_line_bounded`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line is in the buffer (without its `\n` or `\r\n`).
    Read,
    /// The line is longer than the limit; the rest of it was skipped.
    TooLong,
    /// End of input.
    End,
}

/// Reads one line into `buf` (cleared first), holding at most `limit` bytes of it in memory:
/// a longer line is skipped to its end and reported, so one bad line costs no more than the
/// limit and the next line is read normally.
pub fn read_line_bounded(reader: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > limit {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            break;
        }
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => Line::Read,
    })
}

/// Replaces `path` with `bytes` atomically and durably: the bytes go to a new temporary file
/// beside it, are synced, renamed over `path`, and the directory is synced. A crash at any
/// point leaves either the old file or the new one. The temporary file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(".{}.tmp-{}-{attempt}", name.to_string_lossy(), std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir)
}

/// Syncs a directory so a rename inside it survives a crash (a no-op where directories
/// cannot be opened, e.g. on Windows).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_longer_than_the_limit_are_skipped_whole() {
        let mut input = io::BufReader::with_capacity(4, &b"ab\r\nabcdefgh\nxy\n\nlast"[..]);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_line_bounded(&mut input, &mut buf, 5).unwrap() {
                Line::End => break,
                Line::TooLong => seen.push("<too long>".to_string()),
                Line::Read => seen.push(String::from_utf8(buf.clone()).unwrap()),
            }
        }
        assert_eq!(seen, ["ab", "<too long>", "xy", "", "last"]);
    }

    #[test]
    fn reads_stop_at_the_limit_and_refuse_non_files() {
        let dir = std::env::temp_dir().join(format!("ruledeck-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.rule");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_bounded(&file, 5).unwrap(), b"12345");
        assert!(matches!(read_bounded(&file, 4), Err(ReadError::TooLarge { size: 5, limit: 4, .. })));
        assert!(matches!(read_bounded(&dir, 4), Err(ReadError::NotAFile { kind: "directory", .. })));
        #[cfg(unix)]
        assert!(matches!(read_bounded(Path::new("/dev/zero"), 4), Err(ReadError::NotAFile { kind: "device", .. })));
        write_atomic(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
