//! `ruledeck serve`: the decision service over files or a release store.
//!
//! Exit codes: 0 after a clean drain on SIGTERM or SIGINT; 1 the deck does not compile;
//! 2 usage or I/O errors (cannot listen, not a store, an unreadable `--tags`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ruledeck::serve::{Deck, SharedTags};

use crate::eval::tags_provider;
use crate::files::{load_program, read_json_file, Fatal};

pub fn run(paths: &[PathBuf], store: Option<&Path>, tags: Option<&Path>, listen: &str) -> Result<ExitCode, Fatal> {
    let deck = match store {
        Some(dir) => {
            let store = ruledeck::release::Store::open(dir).map_err(|e| Fatal(e.to_string()))?;
            // Warnings about the file's names come when the first release loads.
            let file = match tags {
                Some(path) => ruledeck::TagsFile::from_json(read_json_file(path)?)
                    .map_err(|e| Fatal(format!("`{}`: {e}", path.display())))?,
                None => ruledeck::TagsFile::from_json(serde_json::json!({})).expect("an empty tags file is valid"),
            };
            Deck::store(store, SharedTags(Arc::new(file)))
        }
        None => {
            let program = match load_program(paths)? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            let file = tags_provider(tags, &program)?;
            Deck::files(program, SharedTags(Arc::new(file)))
        }
    };
    ruledeck::serve::serve(deck, listen).map_err(Fatal)?;
    Ok(ExitCode::SUCCESS)
}
