//! Releases: the online side of a deck. Source files are the draft; a release is what runs.
//!
//! Owns: the release store ([`store`]: write-once bundles, one manifest per release, the
//! `CURRENT` pointer, the journal, the lock), per-instance versions ([`manifest`]), what a
//! tag feeds ([`refs`]), what publishing would change ([`diff`]) and the hot-swapping holder
//! hosts decide through ([`live`]). Must not: reach into the checker, compiler or VM beyond
//! their public API (compiled content comes from `compile::content`, tag status baselines go
//! to the checker as `check::status::Baseline`).

pub mod diff;
pub mod live;
pub mod manifest;
pub mod refs;
pub mod store;

pub use live::{Live, LiveRelease};
pub use manifest::{InstanceEntry, Manifest, TagEntry};
pub use store::{Loaded, Publish, Store, StoreError};
