//! The decision log: one JSON line per decision, written by a background thread to a file
//! that rotates by size.
//!
//! Owns: the bounded queue between request threads and the writer, the writer thread, and
//! rotation (`PATH` → `PATH.1` → … → `PATH.N`, the oldest dropped). Must not: block a
//! request — a full queue drops the line (`ruledeck_decision_log_dropped_total`), and a
//! failing sink (full disk, unwritable path) drops the lines it could not write
//! (`ruledeck_decision_log_write_errors_total`); decisions never wait for, or fail because
//! of, the log.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::metrics::Metrics;
use crate::limits::{DECISION_LOG_FILES, DECISION_LOG_QUEUE, DECISION_LOG_ROTATE_BYTES};

enum Message {
    Line(String),
    /// Flush and stop (sent once, at shutdown).
    Stop,
}

/// A running decision log. Cheap to share: [`DecisionLog::record`] is a `try_send`.
pub struct DecisionLog {
    tx: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl DecisionLog {
    /// Starts the writer for `path`, rotating past `rotate_bytes` (default
    /// [`DECISION_LOG_ROTATE_BYTES`]) with a queue of `queue` lines (default
    /// [`DECISION_LOG_QUEUE`]). The file is opened (and created) by the writer; if that
    /// fails, lines are dropped and counted, and opening is tried again for later lines.
    pub fn start(path: &Path, rotate_bytes: Option<u64>, queue: Option<usize>, metrics: Arc<Metrics>) -> DecisionLog {
        let (tx, rx) = sync_channel(queue.unwrap_or(DECISION_LOG_QUEUE));
        let sink = Sink {
            path: path.to_path_buf(),
            rotate_bytes: rotate_bytes.unwrap_or(DECISION_LOG_ROTATE_BYTES).max(1),
            file: None,
            size: 0,
            metrics: metrics.clone(),
            failing: false,
        };
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || sink.run(rx))
            .expect("the decision log's thread starts");
        DecisionLog { tx, writer: Mutex::new(Some(writer)), metrics }
    }

    /// Queues one line (a JSON object, no newline); drops it, counted, if the writer is behind.
    pub fn record(&self, line: String) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(Message::Line(line)) {
            self.metrics.log_dropped_full.inc();
        }
    }

    /// Writes what is queued, flushes and stops the writer (at shutdown).
    pub fn close(&self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
    }
}

struct Sink {
    path: PathBuf,
    rotate_bytes: u64,
    file: Option<BufWriter<File>>,
    /// Bytes in the current file, as far as this writer knows (it appends to what is there).
    size: u64,
    metrics: Arc<Metrics>,
    /// Whether the last write failed (its error was logged once).
    failing: bool,
}

impl Sink {
    fn run(mut self, rx: Receiver<Message>) {
        // Lines written to the buffer since the last flush: counted written or failed then.
        let mut pending: u64 = 0;
        while let Ok(message) = rx.recv() {
            let mut stop = false;
            let mut next = Some(message);
            // Everything already queued goes out in one flush.
            while let Some(message) = next.take() {
                match message {
                    Message::Line(line) => self.write(&line, &mut pending),
                    Message::Stop => stop = true,
                }
                if !stop {
                    next = rx.try_recv().ok();
                }
            }
            self.flush(&mut pending);
            if stop {
                return;
            }
        }
        self.flush(&mut pending);
    }

    /// Writes one line to the buffer, counting it in `pending` (written or failed at the
    /// next flush), or counting it failed at once.
    fn write(&mut self, line: &str, pending: &mut u64) {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.rotate_bytes {
            self.flush(pending);
            self.rotate();
        }
        if self.file.is_none() {
            match OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(f) => {
                    self.size = f.metadata().map_or(0, |m| m.len());
                    self.file = Some(BufWriter::with_capacity(64 * 1024, f));
                }
                Err(e) => {
                    self.failed(format!("cannot open `{}`: {e}", self.path.display()), 1);
                    return;
                }
            }
        }
        let file = self.file.as_mut().expect("opened above");
        match file.write_all(line.as_bytes()).and_then(|()| file.write_all(b"\n")) {
            Ok(()) => {
                self.size += len;
                *pending += 1;
            }
            Err(e) => {
                // The buffer held earlier lines and maybe part of this one: all are lost;
                // start over with a fresh handle.
                self.file = None;
                self.failed(format!("cannot write `{}`: {e}", self.path.display()), *pending + 1);
                *pending = 0;
            }
        }
    }

    fn flush(&mut self, pending: &mut u64) {
        if *pending == 0 {
            return;
        }
        let result = match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        };
        match result {
            Ok(()) => {
                self.metrics.log_written.inc_by(*pending);
                if self.failing {
                    tracing::info!("decision log `{}` is written again", self.path.display());
                    self.failing = false;
                }
            }
            Err(e) => {
                // What the failed flush held is lost; the next line reopens the file.
                self.file = None;
                self.failed(format!("cannot write `{}`: {e}", self.path.display()), *pending);
            }
        }
        *pending = 0;
    }

    fn failed(&mut self, message: String, lines: u64) {
        self.metrics.log_write_errors.inc_by(lines);
        if !self.failing {
            tracing::error!("decision log: {message}; dropping lines until it can be written");
            self.failing = true;
        }
    }

    /// `PATH.(N-1)` → `PATH.N`, …, `PATH` → `PATH.1`; the next write opens a new `PATH`.
    fn rotate(&mut self) {
        self.file = None;
        let numbered = |n: usize| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        for n in (1..DECISION_LOG_FILES).rev() {
            let from = numbered(n);
            if from.exists() {
                let _ = std::fs::rename(&from, numbered(n + 1));
            }
        }
        if let Err(e) = std::fs::rename(&self.path, numbered(1)) {
            tracing::error!("decision log: cannot rotate `{}`: {e}", self.path.display());
        }
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer stuck opening its file (a FIFO nobody reads) cannot take lines: with a
    /// queue of one, the second line is dropped and counted, and `record` never blocks.
    #[test]
    fn a_full_queue_drops_lines_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("log");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let metrics = Arc::new(Metrics::new());
        let log = DecisionLog::start(&fifo, None, Some(1), metrics.clone());
        // The writer takes the first line and blocks opening the FIFO; the queue then holds
        // one more; everything after that is dropped.
        for i in 0..10 {
            log.record(format!("{{\"n\": {i}}}"));
        }
        let dropped = metrics.log_dropped_full.get();
        assert!((8..=9).contains(&dropped), "dropped {dropped}");
        // A reader unblocks the writer, which writes what it holds and stops.
        let reader = std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap());
        log.close();
        let text = reader.join().unwrap();
        assert_eq!(text.lines().count() as u64, 10 - dropped, "{text}");
        assert_eq!(metrics.log_written.get(), 10 - dropped);
    }

    #[test]
    fn files_rotate_by_size_keeping_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.jsonl");
        let metrics = Arc::new(Metrics::new());
        let log = DecisionLog::start(&path, Some(100), None, metrics.clone());
        let line = format!("{{\"pad\": \"{}\"}}", "x".repeat(30)); // 42 bytes with its newline
        for _ in 0..20 {
            log.record(line.clone());
        }
        log.close();
        assert_eq!(metrics.log_written.get(), 20);
        // Two lines a file: PATH plus PATH.1 … PATH.N, each within the size.
        let mut files = vec![path.clone()];
        for n in 1..=DECISION_LOG_FILES {
            files.push(PathBuf::from(format!("{}.{n}", path.display())));
        }
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(text.len() as u64 <= 100 && text.lines().count() == 2, "{}: {text}", f.display());
        }
        assert!(!PathBuf::from(format!("{}.{}", path.display(), DECISION_LOG_FILES + 1)).exists());
    }
}
