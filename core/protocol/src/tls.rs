//! The rustls crypto provider of every TLS endpoint of iii: the engine's listeners and its
//! outgoing HTTPS calls, and the SDK's `wss://` sockets. One place, so both ends agree.
//!
//! ring, not aws-lc-rs (which needs cmake to build). ring's provider lists P-384 first among
//! its key exchange groups, and ring computes P-384 with generic big-number code: a handshake
//! then costs milliseconds of CPU on both ends (BENCHMARKS.md, "TLS"). X25519 comes first
//! here, then P-256, then P-384 for peers that offer nothing else; AES-128-GCM is preferred
//! over AES-256-GCM, as safe for these connections and cheaper per byte relayed.

use tokio_rustls::rustls::CipherSuite;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::crypto::ring::{self, kx_group};

/// ring's provider with the fast key exchange groups and cipher suite first.
pub fn provider() -> CryptoProvider {
    // Deprecated only for lacking post-quantum key exchange, which these links do not need.
    #[allow(deprecated)]
    let mut provider = ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    provider
        .cipher_suites
        .sort_by_key(|suite| suite.suite() != CipherSuite::TLS13_AES_128_GCM_SHA256);
    provider
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x25519_and_aes_128_come_first() {
        let provider = provider();
        let first_group = provider.kx_groups.first().map(|group| group.name());
        assert_eq!(first_group, Some(kx_group::X25519.name()));
        let first_suite = provider.cipher_suites.first().map(|suite| suite.suite());
        assert_eq!(first_suite, Some(CipherSuite::TLS13_AES_128_GCM_SHA256));
        assert_eq!(provider.kx_groups.len(), 3);
    }
}
