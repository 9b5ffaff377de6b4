use std::net::IpAddr;

/// Why a callback target was rejected, before or while resolving it.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// The URL is not a parseable absolute URL.
    #[error("callback url is not a valid URL: {0}")]
    InvalidUrl(#[from] url::ParseError),
    /// The URL is longer than [`crate::MAX_URL_LEN`].
    #[error("callback url is {len} bytes long; the limit is {max}")]
    UrlTooLong {
        /// Length of the URL given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Only `http` and `https` are delivered to.
    #[error("callback url scheme must be http or https, not {0:?}")]
    UnsupportedScheme(String),
    /// Credentials in the URL would end up in logs and attempt records.
    #[error("callback url must not contain a user name or password")]
    Userinfo,
    /// The URL has no host (or an empty one).
    #[error("callback url must name a host")]
    MissingHost,
    /// The host name is longer than DNS allows.
    #[error("callback url host is {len} bytes long; the limit is {max}")]
    HostTooLong {
        /// Length of the host given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Port 0 cannot be connected to.
    #[error("callback url port must not be 0")]
    ZeroPort,
    /// The host name did not resolve.
    #[error("could not resolve callback host {host}: {source}")]
    Resolve {
        /// The host that failed.
        host: String,
        /// The resolver error.
        #[source]
        source: std::io::Error,
    },
    /// The host resolved to nothing.
    #[error("callback host {0} resolved to no addresses")]
    NoAddresses(String),
    /// The host resolved to an address the policy does not allow.
    #[error("callback host {host} resolves to {addr}, a {range} address, which is not allowed")]
    Refused {
        /// The host from the URL.
        host: String,
        /// The first offending address.
        addr: IpAddr,
        /// Which special range it is in.
        range: &'static str,
    },
    /// An allow-list entry is neither an IP, a CIDR nor a host name.
    #[error(
        "invalid callback allow-list entry {0:?}: expected an IP address, a CIDR or a host name"
    )]
    InvalidAllowEntry(String),
}
