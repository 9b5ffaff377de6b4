//! What every function does once at cold start.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use cairn_sign::PgpSigner;

/// Structured JSON logs to stdout (CloudWatch), level from `RUST_LOG` (default info),
/// for the function Cairn calls `function` (its package name; also the `Function`
/// dimension of its metrics). Every line logged during an invocation carries the spans
/// it runs in: the runtime's (`requestId`) and the handler's (the repository, hook or
/// operation it works on).
pub fn init_tracing(function: &'static str) {
    cairn_core::metrics::set_function(function);
    if let Ok(namespace) = std::env::var("CAIRN_METRICS_NAMESPACE") {
        cairn_core::metrics::set_namespace(&namespace);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(true)
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
    /// Secrets Manager (the signing key).
    pub secrets: aws_sdk_secretsmanager::Client,
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
            secrets: aws_sdk_secretsmanager::Client::new(&shared),
        }
    }
}

/// Why the signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// No key configured.
    #[error(
        "no signing key: set CAIRN_SIGNING_KEY_SECRET (a Secrets Manager secret), or \
         CAIRN_SIGNING_KEY / RWS's GPG_SIGN_KEY_ARMORED"
    )]
    Missing,
    /// The secret could not be read.
    #[error("reading signing key secret {secret}: {message}")]
    Secret {
        /// The secret's id.
        secret: String,
        /// What failed.
        message: String,
    },
    /// The key does not parse.
    #[error(transparent)]
    Invalid(#[from] cairn_core::ports::SignError),
    /// A signing setting does not parse.
    #[error("{0}")]
    Config(String),
}

/// Where the metadata signing key(s) come from. Lambda caps all environment variables
/// at 4 KB together, less than one armoured RSA secret key, so deployments keep the
/// key in Secrets Manager; the environment is for small local keys and RWS's variable.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A Secrets Manager secret (id or ARN) whose string is the armoured key(s).
    Secret(String),
    /// Armoured key(s) in the environment.
    Env(String),
}

impl KeySource {
    /// `CAIRN_SIGNING_KEY_SECRET`, else `CAIRN_SIGNING_KEY`, else `GPG_SIGN_KEY_ARMORED`.
    pub fn from_env() -> Result<Self, KeyError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(secret) = var("CAIRN_SIGNING_KEY_SECRET") {
            return Ok(KeySource::Secret(secret));
        }
        ["CAIRN_SIGNING_KEY", "GPG_SIGN_KEY_ARMORED"]
            .iter()
            .find_map(|k| var(k))
            .map(KeySource::Env)
            .ok_or(KeyError::Missing)
    }

    /// Loads the signer; several concatenated armoured keys sign together (rotation).
    pub async fn load(&self, clients: &Clients) -> Result<PgpSigner, KeyError> {
        let armored = match self {
            KeySource::Env(armored) => armored.clone(),
            KeySource::Secret(id) => {
                let secret_err = |message: String| KeyError::Secret {
                    secret: id.clone(),
                    message,
                };
                clients
                    .secrets
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| secret_err(DisplayErrorContext(e).to_string()))?
                    .secret_string
                    .ok_or_else(|| secret_err("the secret has no string value".into()))?
            }
        };
        Ok(PgpSigner::from_armored(&armored)?)
    }
}

/// The signing key(s), reloaded from their secret every `refresh` so that a rotation
/// (a new secret value) reaches warm workers without a redeploy.
pub struct Keys {
    source: KeySource,
    clients: Clients,
    refresh: std::time::Duration,
    current: tokio::sync::RwLock<(std::sync::Arc<PgpSigner>, std::time::Instant)>,
}

impl Keys {
    /// Loads the keys once; `refresh` comes from `CAIRN_SIGNING_KEY_REFRESH_SECS`
    /// (default 300 s).
    pub async fn load(source: KeySource, clients: Clients) -> Result<Self, KeyError> {
        let signer = source.load(&clients).await?;
        // Unset means the default; set but unreadable is a start-up error, not 300.
        let refresh = cairn_core::config::number_or(
            &|k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty()),
            "CAIRN_SIGNING_KEY_REFRESH_SECS",
            300,
        )
        .map_err(|e| KeyError::Config(e.to_string()))?;
        Ok(Self {
            source,
            clients,
            refresh: std::time::Duration::from_secs(refresh),
            current: tokio::sync::RwLock::new((
                std::sync::Arc::new(signer),
                std::time::Instant::now(),
            )),
        })
    }

    /// The current signer, reloaded first if it is older than the refresh interval.
    /// A failed reload keeps the previous keys (and is logged): signing goes on.
    pub async fn signer(&self) -> std::sync::Arc<PgpSigner> {
        {
            let current = self.current.read().await;
            if current.1.elapsed() < self.refresh || matches!(self.source, KeySource::Env(_)) {
                return current.0.clone();
            }
        }
        let mut current = self.current.write().await;
        if current.1.elapsed() >= self.refresh {
            match self.source.load(&self.clients).await {
                Ok(signer) => {
                    if signer.fingerprints() != current.0.fingerprints() {
                        tracing::info!(keys = ?signer.fingerprints(), "signing keys changed");
                    }
                    *current = (std::sync::Arc::new(signer), std::time::Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not reload the signing keys; keeping the loaded ones");
                    current.1 = std::time::Instant::now();
                }
            }
        }
        current.0.clone()
    }

    /// Fingerprints of the keys in use.
    pub async fn fingerprints(&self) -> Vec<String> {
        self.current.read().await.0.fingerprints()
    }
}
