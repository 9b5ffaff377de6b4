//! Source archives for Cairn: Repour's job, serverless.
//!
//! A tree is fetched from an untrusted git origin with gix ([`origin`]), turned into
//! an orphan archive commit with a self-contained pack and a reproducible tarball
//! ([`tree`], [`pack`]), and stored in S3 as a bare repository that stock git clones
//! over dumb HTTP ([`layout`]). The catalog ([`model::ArchiveCatalog`]) makes every
//! tag and pack immutable with conditional writes; [`service`] holds the use cases and
//! the life of an asynchronous operation. docs/archives.md is the user's view.

// unwrap() is fine in tests (a panic is the failure report); never in library code.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
mod error;
pub mod import;
pub mod layout;
pub mod memory;
pub mod model;
pub mod origin;
pub mod pack;
pub mod request;
pub mod service;
pub mod tree;

pub use config::ArchiveConfig;
pub use error::ArchiveError;
pub use request::{ArchiveRequest, CloneRequest};
pub use service::{Archiver, Destinations, Operations, RepositoryDestinations, Settings};
