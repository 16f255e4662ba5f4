//! `ruledeck build` and `ruledeck disasm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ruledeck::compile::{bundle, disasm};

use crate::files::{load_program, Fatal};

pub fn build(paths: &[PathBuf], output: &Path) -> Result<ExitCode, Fatal> {
    let program = match load_program(paths)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let bytes = bundle::to_bytes(&program);
    std::fs::write(output, &bytes).map_err(|e| Fatal(format!("cannot write `{}`: {e}", output.display())))?;
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
