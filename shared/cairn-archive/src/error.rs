use cairn_core::StoreError;

/// Why an archive or clone request failed. [`ArchiveError::http_status`] maps each to
/// the status the API (or the callback) reports.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The request body is not what the endpoint takes.
    #[error("{0}")]
    Invalid(String),
    /// The origin URL is not acceptable (scheme, credentials, syntax).
    #[error("origin URL refused: {0}")]
    BadUrl(String),
    /// The origin resolves to an address the policy refuses.
    #[error("origin URL refused: {0}")]
    Refused(#[from] cairn_callback::CallbackError),
    /// The ref does not exist at the origin.
    #[error("ref '{reference}' does not exist in {url}")]
    RefNotFound {
        /// The ref as requested.
        reference: String,
        /// The origin.
        url: String,
    },
    /// The origin sent more than the size limit.
    #[error("the origin exceeds the archive size limit of {0} bytes")]
    TooLarge(u64),
    /// The tree has more objects than allowed.
    #[error("the origin exceeds the archive limit of {0} objects")]
    TooManyObjects(u64),
    /// The fetch took longer than allowed.
    #[error("fetching from the origin took longer than {0} seconds")]
    Timeout(u64),
    /// The origin could not be reached or spoke bad protocol.
    #[error("fetch from {url} failed: {reason}")]
    Fetch {
        /// The origin.
        url: String,
        /// What went wrong, from the git client.
        reason: String,
    },
    /// A fetched object is malformed or lies about its id.
    #[error("the origin sent a bad object: {0}")]
    BadObject(String),
    /// A tree entry name that a checkout or extraction could misuse.
    #[error("the origin tree contains an unsafe path: {0}")]
    UnsafePath(String),
    /// A published ref would have to move.
    #[error("{0}")]
    Conflict(String),
    /// Nothing with that name or id.
    #[error("{0}")]
    NotFound(String),
    /// The name is an archive repository the requester may not write or read.
    #[error("{0}")]
    Forbidden(String),
    /// The operation was cancelled before it ran.
    #[error("operation cancelled")]
    Cancelled,
    /// Storage failure (never the caller's fault).
    #[error(transparent)]
    Store(StoreError),
    /// A bug or an environment failure; the detail is logged, not returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ArchiveError {
    fn from(e: StoreError) -> Self {
        // A claim that changed under a writer is a conflict to report, not a failure
        // to retry: the place the request was accepted for is gone.
        if e.operation == crate::model::CLAIM_CHANGED {
            return ArchiveError::Conflict(e.message);
        }
        ArchiveError::Store(e)
    }
}

impl From<cairn_core::repositories::RepositoryError> for ArchiveError {
    fn from(e: cairn_core::repositories::RepositoryError) -> Self {
        use cairn_core::repositories::RepositoryError as R;
        match e {
            R::Invalid(m) => ArchiveError::Invalid(m),
            R::NotFound(m) => ArchiveError::NotFound(m),
            R::Conflict(m) => ArchiveError::Conflict(m),
            R::Forbidden(m) => ArchiveError::Forbidden(m),
            R::Denied(d) => ArchiveError::Forbidden(d.to_string()),
            R::Store(e) => ArchiveError::Store(e),
        }
    }
}

impl ArchiveError {
    /// The HTTP status reported for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ArchiveError::Invalid(_)
            | ArchiveError::BadUrl(_)
            | ArchiveError::Refused(_)
            | ArchiveError::TooLarge(_)
            | ArchiveError::TooManyObjects(_)
            | ArchiveError::Timeout(_)
            | ArchiveError::Fetch { .. }
            | ArchiveError::BadObject(_)
            | ArchiveError::UnsafePath(_) => 400,
            ArchiveError::Forbidden(_) => 403,
            ArchiveError::RefNotFound { .. } | ArchiveError::NotFound(_) => 404,
            ArchiveError::Conflict(_) | ArchiveError::Cancelled => 409,
            ArchiveError::Store(_) | ArchiveError::Internal(_) => 500,
        }
    }

    /// The problem body reported for this error (RFC 9457, the same shape every
    /// Cairn API answers with). A 5xx says nothing of its cause.
    pub fn problem(&self) -> serde_json::Value {
        cairn_core::problem::Problem::new(self.http_status(), self.to_string()).to_json()
    }
}
