//! `ruledeck refs TAG FILES…`: what a tag feeds, before anyone changes or disables it.

use std::path::PathBuf;
use std::process::ExitCode;

use ruledeck::diagnostics::did_you_mean;
use ruledeck::release::refs;

use crate::files::{read_sources, report, Fatal};
use crate::Format;

pub fn run(tag: &str, paths: &[PathBuf], format: Format) -> Result<ExitCode, Fatal> {
    let (sources, read_errors) = read_sources(paths)?;
    if !read_errors.is_empty() {
        return Ok(report(&sources, &read_errors).unwrap_or(ExitCode::from(1)));
    }
    let checked = match ruledeck::check_sources(sources) {
        Ok(c) => c,
        Err(errors) => return Ok(report(&errors.sources, &errors.diagnostics).unwrap_or(ExitCode::from(1))),
    };
    let Some(found) = refs::refs(&checked, tag) else {
        let names = checked.deck.tags.iter().map(|t| t.name.as_str());
        let hint = did_you_mean(tag, names).map_or(String::new(), |s| format!("; did you mean `{s}`?"));
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
