//! Built-in HTTPS, for a machine without nginx in front (`[server.tls]`).
//!
//! rustls does the TLS; [`crate::http_server`] runs each handshake in its
//! connection's task, under the same deadline and connection bound as plain
//! HTTP, so limits, shutdown and draining are the same either way. The certificate
//! files are read again whenever they change (time, size or inode), so a
//! certbot renewal applies to the next handshake without a restart. Also
//! here: the optional plain-HTTP listener that redirects to https.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use comms_core::config::ServerConfig;
use parking_lot::Mutex;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The handshakes of HTTPS with the configured certificate.
///
/// # Errors
///
/// The certificate or key cannot be read, is not PEM, or they do not match.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = CertificateFiles::load(cert, key, Arc::clone(&provider))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(files));
    // HTTP/1.1 only: WebSockets over HTTP/2 use CONNECT, which the
    // WebSocket route does not take. nginx in front gives HTTP/2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate and key files, and the pair last read from them.
struct CertificateFiles {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    /// The pair handshakes use, and the files' stamps when it was read.
    /// Locked for a `stat` of each file per handshake.
    current: Mutex<(Arc<CertifiedKey>, Stamps)>,
}

/// What tells that the files changed: each one's modification time, size
/// and inode. Times alone are coarse (a jiffy): a read caught in the middle
/// of a rewrite could share its time with the finished file.
type Stamps = (Option<FileStamp>, Option<FileStamp>);
type FileStamp = (SystemTime, u64, u64);

impl CertificateFiles {
    fn load(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> anyhow::Result<Self> {
        let (cert, key) = (cert.to_owned(), key.to_owned());
        let stamps = (stamp(&cert), stamp(&key));
        let pair = read_pair(&cert, &key, &provider)?;
        Ok(Self { cert, key, provider, current: Mutex::new((Arc::new(pair), stamps)) })
    }
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let stamps = (stamp(&self.cert), stamp(&self.key));
        let mut current = self.current.lock();
        if current.1 != stamps {
            // Remembered even when reading fails: a renewal caught halfway
            // (new certificate, old key) is read again when the other file
            // changes, not at every handshake.
            current.1 = stamps;
            match read_pair(&self.cert, &self.key, &self.provider) {
                Ok(pair) => {
                    tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                    current.0 = Arc::new(pair);
                }
                Err(err) => tracing::warn!(error = format!("{err:#}"), "keeping the TLS certificate in use"),
            }
        }
        Some(Arc::clone(&current.0))
    }
}

impl fmt::Debug for CertificateFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateFiles").field("cert", &self.cert).field("key", &self.key).finish_non_exhaustive()
    }
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> anyhow::Result<CertifiedKey> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the TLS certificate chain in {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no PEM certificate", cert.display());
    let private = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS private key in {}", key.display()))?;
    CertifiedKey::from_der(chain, private, provider)
        .with_context(|| format!("the key in {} does not fit the certificate in {}", key.display(), cert.display()))
}

/// The plain-HTTP side of `server.tls.redirect_from`: every request is
/// answered with `308` to the same path and query over https, on
/// `https_port`.
pub fn redirect_router(server: &ServerConfig, https_port: u16) -> Router {
    Router::new().fallback(redirect_to_https).with_state(HttpsTarget::of(server, https_port))
}

/// Where redirected requests go: the public URL's host, else the host the
/// request named, with the HTTPS listener's port unless it is 443.
#[derive(Clone)]
struct HttpsTarget {
    public_host: Option<String>,
    port: u16,
}

impl HttpsTarget {
    fn of(server: &ServerConfig, port: u16) -> Self {
        let public_host = server.public_url.strip_prefix("https://").map(|rest| rest.trim_end_matches('/').to_owned());
        Self { public_host, port }
    }

    fn url(&self, host_header: Option<&str>, path_and_query: &str) -> Option<String> {
        if let Some(host) = &self.public_host {
            return Some(format!("https://{host}{path_and_query}"));
        }
        let host = host_header?.parse::<axum::http::uri::Authority>().ok()?;
        match self.port {
            443 => Some(format!("https://{}{path_and_query}", host.host())),
            port => Some(format!("https://{}:{port}{path_and_query}", host.host())),
        }
    }
}

async fn redirect_to_https(State(target): State<HttpsTarget>, request: Request) -> Response {
    let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok());
    let path = request.uri().path_and_query().map_or("/", |path| path.as_str());
    match target.url(host, path) {
        Some(url) => Redirect::permanent(&url).into_response(),
        None => (StatusCode::BAD_REQUEST, "use https").into_response(),
    }
}

/// Binds the redirect listener.
///
/// # Errors
///
/// The address cannot be bound.
pub async fn bind_redirect(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("binding the HTTP-to-HTTPS redirect on {addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_path_and_name_the_https_port() {
        let mut server = ServerConfig::default();
        let target = HttpsTarget::of(&server, 8443);
        assert_eq!(target.url(Some("example.com:8080"), "/a?b=1").as_deref(), Some("https://example.com:8443/a?b=1"));
        assert_eq!(target.url(Some("bad host/"), "/"), None);
        assert_eq!(target.url(None, "/"), None);
        assert_eq!(
            HttpsTarget::of(&server, 443).url(Some("example.com"), "/").as_deref(),
            Some("https://example.com/")
        );
        server.public_url = "https://comms.example.com/".into();
        let public = HttpsTarget::of(&server, 8443);
        assert_eq!(public.url(Some("evil.example"), "/x").as_deref(), Some("https://comms.example.com/x"));
    }
}
