//! `ruledeck refs TAG FILES…`: what a tag feeds, before anyone changes or disables it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::diagnostics::did_you_mean;
use ruledeck::release::{refs, Store};

use crate::files::{check_files, store_refused, Fatal};
use crate::Format;

pub fn run(
    tag: &str,
    paths: &[PathBuf],
    store: Option<(&Path, Option<u64>)>,
    format: Format,
) -> Result<ExitCode, Fatal> {
    let (found, names) = match store {
        Some((dir, number)) => {
            // The manifest's usage index: what the release feeds, without its sources.
            let manifest = match Store::open(dir).and_then(|s| match number {
                Some(n) => s.manifest(n),
                None => s.load(None).map(|l| l.manifest),
            }) {
                Ok(m) => m,
                Err(e) => return Ok(store_refused(e)),
            };
            let names: Vec<String> = manifest.tags.keys().cloned().collect();
            (manifest.usage.get(tag).cloned(), names)
        }
        None => {
            let checked = match check_files(paths)? {
                Ok(checked) => checked,
                Err(code) => return Ok(code),
            };
            let names = checked.deck.tags.iter().map(|t| t.name.clone()).collect();
            (refs::refs(&checked, tag), names)
        }
    };
    let Some(found) = found else {
        let hint = did_you_mean(tag, names.iter().map(String::as_str))
            .map_or(String::new(), |s| format!("; did you mean `{s}`?"));
        eprintln!("error: the deck declares no tag `{tag}`{hint}");
        return Ok(ExitCode::from(1));
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&found).expect("JSON")),
        Format::Text => {
            let list = |items: &[String]| {
                if items.is_empty() {
                    "  (none)\n".to_string()
                } else {
                    items.iter().map(|i| format!("  {i}\n")).collect()
                }
            };
            let rules: Vec<String> = found
                .rules
                .iter()
                .map(|r| match found.through.get(r) {
                    Some(via) => format!("{r} (through {})", via.join(", ")),
                    None => r.clone(),
                })
                .collect();
            print!(
                "tag {}\nrules:\n{}strategies:\n{}instances:\n{}tests:\n{}",
                found.tag,
                list(&rules),
                list(&found.strategies),
                list(&found.instances),
                list(&found.tests)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
