//! `ruledeck build` and `ruledeck disasm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::compile::{bundle, disasm};

use crate::files::{canonical_inputs, load_program, Fatal};

pub fn build(paths: &[PathBuf], output: &Path) -> Result<ExitCode, Fatal> {
    // `-o` naming one of the inputs would replace a source file with a bundle.
    if let Ok(target) = std::fs::canonicalize(output) {
        if canonical_inputs(paths).contains(&target)
            || paths.iter().any(|p| std::fs::canonicalize(p).is_ok_and(|p| p == target))
        {
            return Err(Fatal(format!(
                "`{}` is one of the inputs: refusing to overwrite it with a bundle (choose another -o, e.g. deck.rdb)",
                output.display()
            )));
        }
        if target.is_dir() {
            return Err(Fatal(format!("`{}` is a directory: give -o the bundle's file name", output.display())));
        }
    }
    let program = match load_program(paths)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let bytes = bundle::to_bytes(&program);
    // Atomic: a reader (or a crash) sees the old bundle or the new one, never half of one.
    ruledeck::files::write_atomic(output, &bytes)
        .map_err(|e| Fatal(format!("cannot write `{}`: {e}", output.display())))?;
    eprintln!(
        "wrote `{}`: {} bytes, {} instructions, {} rules, {} scenes",
        output.display(),
        bytes.len(),
        program.code.len(),
        program.rules.len(),
        program.scenes.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn disasm(paths: &[PathBuf]) -> Result<ExitCode, Fatal> {
    let program = match load_program(paths)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    print!("{}", disasm::disassemble(&program));
    Ok(ExitCode::SUCCESS)
}
