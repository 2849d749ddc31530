//! TLS server configuration from a PEM certificate chain and private key: SIPS, and the
//! voicemail HTTP API.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, no client certificates).
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = {
        let f = std::fs::File::open(cert)
            .with_context(|| format!("opening the TLS certificate {}", cert.display()))?;
        rustls_pemfile::certs(&mut std::io::BufReader::new(f))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("reading PEM certificates from {}", cert.display()))?
    };
    if certs.is_empty() {
        anyhow::bail!("no certificate in {}", cert.display());
    }
    let key = {
        let f = std::fs::File::open(key)
            .with_context(|| format!("opening the TLS key {}", key.display()))?;
        rustls_pemfile::private_key(&mut std::io::BufReader::new(f))
            .with_context(|| format!("reading the PEM private key {}", key.display()))?
            .with_context(|| format!("no private key in {}", key.display()))?
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not fit together")?;
    Ok(Arc::new(config))
}
