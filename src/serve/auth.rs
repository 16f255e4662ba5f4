//! Who may call: `--token-file FILE` bearer tokens.
//!
//! Owns: reading the token file (one token a line; blank lines and `# comments` skipped),
//! re-reading it when its modification time or size changes (checked at most every
//! [`TOKEN_RECHECK`]), and the constant-time comparison of a request's
//! `Authorization: Bearer TOKEN` against every token. Must not: decide which routes are
//! protected (the router does: all but `/healthz` and `/readyz`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use subtle::ConstantTimeEq;

use crate::limits::MAX_TOKEN_FILE_BYTES;

/// How often, at most, the token file's modification time and size are looked at: a
/// rotated token is accepted (and a removed one refused) within this.
pub const TOKEN_RECHECK: Duration = Duration::from_millis(500);

/// The tokens of a `--token-file`, reloaded as the file changes.
pub struct Tokens {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    tokens: Vec<Vec<u8>>,
    /// Modification time and size of the file the tokens were read from.
    stamp: Stamp,
    checked: Instant,
    /// A reload failed (logged once); the previous tokens stay in force.
    failing: bool,
}

/// What identifies a version of the token file: its modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn read(path: &Path) -> Result<(Vec<Vec<u8>>, Stamp), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("`{}`: {e}", path.display()))?;
    let stamp = meta.modified().ok().map(|m| (m, meta.len()));
    let bytes = crate::files::read_bounded(path, MAX_TOKEN_FILE_BYTES).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| format!("`{}` is not valid UTF-8", path.display()))?;
    let tokens = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    Ok((tokens, stamp))
}

impl Tokens {
    /// Reads `path`; an unreadable file is an error (the service does not start).
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let (tokens, stamp) = read(path)?;
        if tokens.is_empty() {
            tracing::warn!("`{}` has no tokens: every protected request is refused", path.display());
        }
        let state = State { tokens, stamp, checked: Instant::now(), failing: false };
        Ok(Tokens { path: path.to_path_buf(), state: Mutex::new(state) })
    }

    /// Whether the `Authorization` header value grants access. Every token is compared, in
    /// constant time for tokens of the same length, so the time taken says nothing about
    /// how much of a token was right.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(bearer) else { return false };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= TOKEN_RECHECK {
            self.recheck(&mut state);
        }
        let mut granted = subtle::Choice::from(0u8);
        for token in &state.tokens {
            granted |= token.as_slice().ct_eq(given);
        }
        bool::from(granted)
    }

    fn recheck(&self, state: &mut State) {
        state.checked = Instant::now();
        let stamp = std::fs::metadata(&self.path).ok().and_then(|m| m.modified().ok().map(|t| (t, m.len())));
        if stamp.is_some() && stamp == state.stamp {
            return;
        }
        match read(&self.path) {
            Ok((tokens, stamp)) => {
                tracing::info!("`{}` re-read: {} token(s)", self.path.display(), tokens.len());
                state.tokens = tokens;
                state.stamp = stamp;
                state.failing = false;
            }
            Err(e) => {
                if !state.failing {
                    tracing::error!("cannot re-read the token file, keeping the tokens in force: {e}");
                    state.failing = true;
                }
            }
        }
    }
}

/// The token of `Bearer TOKEN` (the scheme in any case, as HTTP allows).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = (value.get(..7)?, &value[7..]);
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| rest.trim_ascii()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_takes_the_scheme_in_any_case() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }
}
