//! Typed deck → verified bytecode program; plus the disassembler and the bundle format.
//!
//! Owns: everything between the checker and the VM. Must not: read source text (it gets a
//! checked deck) or execute anything. Its one use of the VM is deliberate: the verifier ends
//! by having `vm::plan` precompute the VM's plans from the verified program, which the
//! [`Program`] carries.

pub mod bundle;
mod codegen;
pub mod content;
pub mod disasm;
pub mod instr;
pub mod program;
pub mod verify;

use crate::Checked;
use program::Program;

/// Compiles a checked deck. The result is verified like any loaded bundle, so a compiler
/// bug surfaces as an error here rather than as wrong behaviour at run time.
pub fn compile(checked: &Checked) -> Result<Program, verify::VerifyError> {
    let mut program = codegen::generate(&checked.deck, &checked.sources);
    verify::verify(&mut program)?;
    Ok(program)
}

#[cfg(test)]
mod tests {
    /// `holds` is a mask lookup; pin it to the comparison each operator means.
    #[test]
    fn comparison_masks_mean_their_operators() {
        use crate::ops::CmpOp;
        for (a, b) in [(1, 2), (2, 2), (3, 2)] {
            let ord = i32::cmp(&a, &b);
            assert_eq!(CmpOp::Eq.holds(ord), a == b);
            assert_eq!(CmpOp::Ne.holds(ord), a != b);
            assert_eq!(CmpOp::Lt.holds(ord), a < b);
            assert_eq!(CmpOp::Le.holds(ord), a <= b);
            assert_eq!(CmpOp::Gt.holds(ord), a > b);
            assert_eq!(CmpOp::Ge.holds(ord), a >= b);
        }
    }
}
