//! Name resolution for fetches. Redirects of a public feed go through a client whose
//! resolver refuses internal addresses: the check is made on the very addresses the
//! connection will use, so a name that resolves to a public address when checked and to
//! `127.0.0.1` when connected (DNS rebinding) cannot reach local services.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::http::is_internal_ip;

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let addrs: Addrs = Box::new(found.collect::<Vec<SocketAddr>>().into_iter());
            Ok(addrs)
        })
    }
}

/// `inner`, refusing names that resolve to an internal address (loopback, private,
/// link-local, unique-local).
pub struct PublicOnly(pub Arc<dyn Resolve>);

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let inner = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = inner.resolve(name).await?.collect();
            if let Some(internal) = addrs.iter().find(|a| is_internal_ip(a.ip())) {
                return Err(Box::new(Refused {
                    host,
                    address: internal.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// A redirect target that resolved to an internal address.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to the internal address {address}")]
pub struct Refused {
    pub host: String,
    pub address: std::net::IpAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `localhost` resolves through the hosts file, so this needs no network.
    #[tokio::test]
    async fn the_redirect_resolver_refuses_names_of_internal_addresses() {
        let resolver = PublicOnly(Arc::new(SystemResolver));
        let name = "localhost".parse().expect("a name");
        let refused = resolver.resolve(name).await.err().expect("refused");
        assert!(
            refused
                .to_string()
                .starts_with("localhost resolves to the internal address")
        );
    }
}
