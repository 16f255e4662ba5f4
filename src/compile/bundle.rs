//! The bundle file format: a compiled program behind a header.
//!
//! ```text
//! offset  size  field
//! 0       8     magic  "RDECK\0\r\n"  (the \r\n catches text-mode transfers)
//! 8       4     format version, little endian (currently 4; 2 and 3 are still read)
//! 12      8     payload length in bytes, little endian
//! 20      4     CRC-32 of the payload, little endian
//! 24      …     payload: the program, serialized with postcard, then (format 3) its
//!               outreach section, then (format 4) its scenes' fan-outs, each serialized
//!               with postcard
//! ```
//!
//! Format 3 is format 4 without the fan-out section: a program of format 3 has no fan-out
//! scenes. Format 2 is format 3 without the outreach section: a program of format 2 takes
//! no events. Releases stored by an earlier ruledeck therefore keep loading (and rolling back).
//!
//! Owns: writing and reading that format. Loading checks the header, length and checksum,
//! deserializes, then runs the verifier: nothing reaches the VM unverified.

use std::fmt;

use super::program::Program;
use super::verify::{verify, VerifyError};
use crate::limits::MAX_BUNDLE_BYTES;

pub const MAGIC: &[u8; 8] = b"RDECK\0\r\n";
pub const FORMAT_VERSION: u32 = 4;
/// The oldest format still read.
pub const OLDEST_FORMAT_VERSION: u32 = 2;
const HEADER: usize = 24;

#[derive(Debug)]
pub enum BundleError {
    NotABundle,
    UnsupportedVersion(u32),
    TooLarge(usize),
    Truncated { expected: u64, found: usize },
    Checksum { expected: u32, found: u32 },
    Decode(String),
    Invalid(VerifyError),
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::NotABundle => f.write_str("not a ruledeck bundle (bad magic bytes)"),
            BundleError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "bundle format version {v} is not supported; this ruledeck reads versions \
                     {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}"
                )
            }
            BundleError::TooLarge(n) => write!(f, "bundle is {n} bytes; the limit is {MAX_BUNDLE_BYTES}"),
            BundleError::Truncated { expected, found } => {
                write!(f, "bundle is truncated or padded: header says {expected} payload bytes, file has {found}")
            }
            BundleError::Checksum { expected, found } => {
                write!(f, "bundle is corrupt: checksum {found:08x} does not match {expected:08x}")
            }
            BundleError::Decode(e) => write!(f, "bundle payload does not decode: {e}"),
            BundleError::Invalid(e) => write!(f, "bundle rejected by the verifier: {}", e.message),
        }
    }
}

impl std::error::Error for BundleError {}

/// Serializes a program into bundle bytes.
pub fn to_bytes(program: &Program) -> Vec<u8> {
    let mut payload = postcard::to_allocvec(program).expect("programs always serialize");
    payload.extend(postcard::to_allocvec(&program.outreach).expect("outreach tables always serialize"));
    payload.extend(postcard::to_allocvec(&program.outreach.scene_fanouts).expect("fan-outs always serialize"));
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Reads and verifies a bundle.
pub fn from_bytes(bytes: &[u8]) -> Result<Program, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::TooLarge(bytes.len()));
    }
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(BundleError::NotABundle);
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let version = word(8);
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(BundleError::UnsupportedVersion(version));
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[12..20]);
    let expected = u64::from_le_bytes(len);
    let payload = &bytes[HEADER..];
    if expected != payload.len() as u64 {
        return Err(BundleError::Truncated { expected, found: payload.len() });
    }
    let (want, got) = (word(20), crc32fast::hash(payload));
    if want != got {
        return Err(BundleError::Checksum { expected: want, found: got });
    }
    let decode = |e: postcard::Error| BundleError::Decode(e.to_string());
    let (mut program, rest): (Program, _) = postcard::take_from_bytes(payload).map_err(decode)?;
    let rest = if version >= 3 {
        let (outreach, rest) = postcard::take_from_bytes(rest).map_err(decode)?;
        program.outreach = outreach;
        rest
    } else {
        rest
    };
    let rest = if version >= 4 {
        let (fanouts, rest) = postcard::take_from_bytes(rest).map_err(decode)?;
        program.outreach.scene_fanouts = fanouts;
        rest
    } else {
        rest
    };
    if !rest.is_empty() {
        return Err(BundleError::Decode(format!("{} bytes after the program", rest.len())));
    }
    verify(&mut program).map_err(BundleError::Invalid)?;
    Ok(program)
}

impl Program {
    /// The program as bundle bytes (see the module docs for the format).
    pub fn to_bundle(&self) -> Vec<u8> {
        to_bytes(self)
    }

    /// Loads bundle bytes: header, length and checksum checked, then the bytecode verified;
    /// nothing reaches the VM unverified.
    pub fn from_bundle(bytes: &[u8]) -> Result<Program, BundleError> {
        from_bytes(bytes)
    }
}
