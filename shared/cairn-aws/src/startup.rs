//! What every function does once at cold start.

use cairn_sign::PgpSigner;

/// Structured JSON logs to stdout (CloudWatch), level from `RUST_LOG` (default info).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
}

/// SDK clients, built once and cloned into adapters.
#[derive(Clone, Debug)]
pub struct Clients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

impl Clients {
    /// Loads the standard AWS configuration (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn load() -> Self {
        let shared = aws_config::load_from_env().await;
        // A custom endpoint (LocalStack) is addressed by host name, where
        // virtual-host-style bucket names cannot resolve.
        let path_style = std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            dynamodb: aws_sdk_dynamodb::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
        }
    }
}

/// Why the signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key configured.
    #[error("no signing key: set CAIRN_SIGNING_KEY (or RWS's GPG_SIGN_KEY_ARMORED)")]
    Missing,
    /// The key does not parse.
    #[error(transparent)]
    Invalid(#[from] cairn_core::ports::SignError),
}

/// Loads the metadata signing key(s) from the environment: `CAIRN_SIGNING_KEY`, or
/// RWS's `GPG_SIGN_KEY_ARMORED`. Several armoured keys may be concatenated (rotation).
pub fn load_signer() -> Result<PgpSigner, KeyError> {
    let armored = ["CAIRN_SIGNING_KEY", "GPG_SIGN_KEY_ARMORED"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .ok_or(KeyError::Missing)?;
    Ok(PgpSigner::from_armored(&armored)?)
}
