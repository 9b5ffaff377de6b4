//! AWS adapters for the Cairn ports (S3, DynamoDB, SQS) and the start-up code every
//! Lambda shares: tracing, configuration, SDK clients, the signing key.

pub mod archives;
pub mod artifacts;
pub mod builds;
pub mod dynamo;
pub mod events;
pub mod external;
pub mod keys;
pub mod repositories;
pub mod s3;
pub mod sqs;
pub mod startup;
pub mod tokens;

pub use archives::{
    DynamoArchives, OperationMessage, SqsOperationQueues, SqsRetryLater, archive_services,
};
pub use dynamo::DynamoCatalog;
pub use external::{ExternalServices, HttpIndexSource, IndexMessage, SecretsVault, SqsIndexQueue};
pub use s3::S3Store;
pub use sqs::SqsSyncQueue;
pub use startup::{Clients, KeyError, KeySource, Keys, init_tracing};
