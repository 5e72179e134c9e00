//! Where an HTTP-invoked function's call may go: the URL read once, its host resolved for
//! every call, and each address checked before it is connected to (so a name cannot resolve
//! to a checked address and then to another), refusing loopback, private, link-local and
//! other non-public addresses unless the engine allows them.

use std::net::{IpAddr, SocketAddr};

use hyper::Uri;
use iii_protocol::ErrorBody;
use iii_protocol::codes::URL_VALIDATION_FAILED;

/// A parsed call URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) https: bool,
    /// The host as given (brackets of an IPv6 literal removed).
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `host[:port]`, for the `Host` header.
    pub(crate) authority: String,
    /// Path and query (`/` when empty), the request target.
    pub(crate) path: String,
    /// The URL without its query, to name it in errors and logs (a query may hold a key).
    pub(crate) shown: String,
}

fn refused(message: String) -> ErrorBody {
    ErrorBody::new(URL_VALIDATION_FAILED, message)
}

impl Target {
    /// Reads `url` (`http://` or `https://`, with a host, without user name or password).
    pub(crate) fn parse(url: &str) -> Result<Self, ErrorBody> {
        let uri: Uri = url
            .parse()
            .map_err(|_| refused("the function's URL is not a valid URL".into()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(refused(
                    "the function's URL is not http:// or https://".into(),
                ));
            }
        };
        let authority = uri
            .authority()
            .filter(|authority| !authority.host().is_empty())
            .ok_or_else(|| refused("the function's URL has no host".into()))?;
        if authority.as_str().contains('@') {
            return Err(refused(
                "the function's URL may not carry a user name or password".into(),
            ));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let shown = format!(
            "{}://{}{}",
            if https { "https" } else { "http" },
            authority.as_str(),
            uri.path()
        );
        Ok(Self {
            https,
            port,
            authority: authority.as_str().to_string(),
            host,
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |path| path.as_str().to_string()),
            shown,
        })
    }

    /// The addresses to connect to, in resolver order; without `allow_private`, a host that
    /// resolves to any non-public address is refused (naming the flag that allows it).
    pub(crate) async fn resolve(&self, allow_private: bool) -> Result<Vec<SocketAddr>, ErrorBody> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|error| refused(format!("cannot resolve {}: {error}", self.host)))?
            .collect();
        if addresses.is_empty() {
            return Err(refused(format!("{} resolves to no address", self.host)));
        }
        if !allow_private && let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
            return Err(refused(format!(
                "{} resolves to {}, which is not a public address; start the engine with \
                 --http-functions-allow-private to call it",
                self.host,
                private.ip()
            )));
        }
        Ok(addresses)
    }
}

/// Whether `ip` is an ordinary public address: not loopback, private, link-local, shared
/// (100.64/10), benchmarking, reserved, documentation, multicast, broadcast or unspecified;
/// IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by it,
/// and Teredo, site-local and documentation IPv6 ranges are refused.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && c == 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            match s {
                // IPv4-compatible (deprecated) and NAT64 well-known prefix: the IPv4 address.
                [0, 0, 0, 0, 0, 0, high, low] if high != 0 => embedded(high, low),
                [0x64, 0xff9b, 0, 0, 0, 0, high, low] => embedded(high, low),
                // 6to4: the IPv4 address follows the prefix.
                [0x2002, high, low, ..] => embedded(high, low),
                _ => {
                    let first = s[0];
                    !(v6.is_loopback()
                        || v6.is_unspecified()
                        || v6.is_multicast()
                        || (first & 0xfe00) == 0xfc00 // unique local
                        || (first & 0xffc0) == 0xfe80 // link-local
                        || (first & 0xffc0) == 0xfec0 // site-local
                        || (first == 0x2001 && s[1] == 0x0db8) // documentation
                        || (first == 0x2001 && s[1] == 0) // Teredo
                        || (first == 0x64 && s[1] == 0xff9b && s[2] == 1)) // local-use NAT64
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_urls() {
        let target = Target::parse("https://fn.example:8443/run?x=1").expect("valid");
        assert!(target.https);
        assert_eq!((target.host.as_str(), target.port), ("fn.example", 8443));
        assert_eq!(target.path, "/run?x=1");
        let plain = Target::parse("http://[::1]").expect("valid");
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.path.as_str()),
            ("::1", 80, "/")
        );
        for bad in ["ftp://h/", "http:///x", "not a url"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }

    #[tokio::test]
    async fn private_addresses_need_the_flag() {
        let target = Target::parse("http://127.0.0.1:9/").expect("valid");
        let error = target.resolve(false).await.expect_err("refused");
        assert!(
            error.message.contains("--http-functions-allow-private"),
            "{}",
            error.message
        );
        assert_eq!(target.resolve(true).await.expect("allowed").len(), 1);
    }
}
