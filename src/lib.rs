//! ruledeck: a compiler (and, later, a bytecode VM) for the rule and strategy language of an
//! e-commerce decision engine.
//!
//! The pipeline flows one way: text → AST ([`syntax`]) → typed deck ([`check`]) → bytecode
//! → VM. No stage reaches back into an earlier one.
#![forbid(unsafe_code)]

pub mod check;
pub mod diagnostics;
pub mod source;
pub mod syntax;
