//! `ruledeck serve`: the decision service over files or a release store.
//!
//! Exit codes: 0 after a clean drain on SIGTERM or SIGINT; 1 the deck does not compile;
//! 2 usage or I/O errors (cannot listen, not a store, an unreadable `--tags` or
//! `--providers`, a tag whose provider nothing serves).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ruledeck::serve::{Deck, Metrics, Options, SharedTags, TagSources};

use crate::eval::tags_provider;
use crate::files::{load_program, read_json_file, Fatal};

pub struct Args<'a> {
    pub paths: &'a [PathBuf],
    pub store: Option<&'a Path>,
    pub tags: Option<&'a Path>,
    pub providers: Option<&'a Path>,
    pub options: Options,
}

pub fn run(args: Args<'_>) -> Result<ExitCode, Fatal> {
    let metrics = Arc::new(Metrics::new());
    let providers = match args.providers {
        Some(path) => Some(Arc::new(ruledeck::serve::providers::load(path).map_err(Fatal)?)),
        None => None,
    };
    let mut sources = TagSources { tags: None, providers, metrics: metrics.clone() };
    let deck = match args.store {
        Some(dir) => {
            let store = ruledeck::release::Store::open(dir).map_err(|e| Fatal(e.to_string()))?;
            // Warnings about the file's names come when the first release loads.
            if let Some(path) = args.tags {
                let file = ruledeck::TagsFile::from_json(read_json_file(path)?)
                    .map_err(|e| Fatal(format!("`{}`: {e}", path.display())))?;
                sources.tags = Some(SharedTags(Arc::new(file)));
            }
            Deck::store(store, sources.clone())
        }
        None => {
            let program = match load_program(args.paths)? {
                Ok(p) => p,
                Err(code) => return Ok(code),
            };
            if let Some(path) = args.tags {
                sources.tags = Some(SharedTags(Arc::new(tags_provider(Some(path), &program)?)));
            }
            Deck::files(program, &sources).map_err(Fatal)?
        }
    };
    let mut options = args.options;
    // Event scenes load their tags and channel zones as decisions do.
    options.outreach_sources = Some(sources);
    ruledeck::serve::serve(deck, metrics, options).map_err(Fatal)?;
    Ok(ExitCode::SUCCESS)
}
