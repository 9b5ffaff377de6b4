//! The error every port returns: a failure of storage or messaging, never the
//! caller's fault. Its own module so that the modules the ports name (events, auth)
//! do not depend on the ports for it.

/// A failure of the storage or messaging layer, never the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct StoreError {
    /// What was being done, e.g. `PutObject release/…/Release`.
    pub operation: String,
    /// The cause and its chain, as text (what the logs show).
    pub message: String,
    /// The original error, when there is one (an SDK error), for callers that inspect it.
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// Builds an error from a displayable cause (a message of Cairn's own).
    pub fn new(operation: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Self {
            operation: operation.into(),
            message: cause.to_string(),
            source: None,
        }
    }

    /// Builds an error that keeps `cause` as its source; the message is the cause
    /// and every error in its chain.
    pub fn caused_by(
        operation: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        let mut message = cause.to_string();
        let mut next = cause.source();
        while let Some(e) = next {
            message.push_str(": ");
            message.push_str(&e.to_string());
            next = e.source();
        }
        Self {
            operation: operation.into(),
            message,
            source: Some(Box::new(cause)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;
    use std::error::Error;

    #[derive(Debug, thiserror::Error)]
    #[error("service error")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_store_error_keeps_its_cause_and_shows_the_chain() {
        let e = StoreError::caused_by(
            "GetItem users",
            Outer(std::io::Error::other("connection reset")),
        );
        assert_eq!(
            e.to_string(),
            "GetItem users: service error: connection reset"
        );
        let source = e.source().expect("kept");
        assert!(source.downcast_ref::<Outer>().is_some());
        assert!(StoreError::new("decode", "bad").source().is_none());
    }
}
