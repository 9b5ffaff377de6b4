//! The Cairn domain: repositories and packages, the ports the domain talks through
//! (blob store, catalog, queue, signer), and the services built on them: ingesting
//! an uploaded package, publishing signed APT, YUM and Helm repositories, authenticating
//! callers.
//!
//! Nothing in this crate knows about AWS; `cairn-aws` implements the ports, and
//! [`memory`] has in-memory fakes for unit tests.

pub mod access;
pub mod auth;
pub mod authorizer;
pub mod builds;
pub mod config;
pub mod error;
pub mod events;
pub mod fsck;
pub mod html;
pub mod ingest;
pub mod labels;
pub mod memory;
pub mod metrics;
pub mod package;
pub mod ports;
pub mod problem;
pub mod publish;
pub mod repo;
pub mod repositories;
pub mod tokens;
pub mod upload;
pub mod verify;
pub mod versions;
pub mod webhooks;

pub use config::Config;
pub use package::{PackageRecord, PackageStatus};
pub use ports::StoreError;
pub use repo::{RepoPath, SupportedRepos};
