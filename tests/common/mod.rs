//! Helpers shared by integration tests.

pub mod generator;
pub mod reference;
