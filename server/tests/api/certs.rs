//! A certificate authority made with openssl for one test, certificates for
//! [`HOST`] signed by it, and HTTPS and WSS clients that trust it (and
//! nothing else), for the tests of TLS in front of comms and in it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use futures_util::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::helpers::WAIT;

/// The host name the certificates are for; clients resolve it to the
/// server under test.
pub const HOST: &str = "comms.example.com";

/// A free loopback port (for listeners the test configures itself).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A certificate authority in a folder of its own.
pub struct TestCa {
    dir: PathBuf,
    /// Its certificate, PEM.
    pub pem: Vec<u8>,
}

impl TestCa {
    /// Makes the authority's key and certificate in `dir`.
    pub fn new(dir: &Path) -> Self {
        let args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem"];
        openssl(&[&args[..], &["-days", "2", "-subj", "/CN=comms test CA"]].concat(), dir);
        Self { dir: dir.to_owned(), pem: std::fs::read(dir.join("ca.pem")).unwrap() }
    }

    /// A new key and a certificate for [`HOST`] signed by this authority,
    /// as `NAME.pem` and `NAME.key`.
    pub fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let (pem, key, csr) = (format!("{name}.pem"), format!("{name}.key"), format!("{name}.csr"));
        let subject = format!("/CN={HOST}");
        openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subject], &self.dir);
        std::fs::write(self.dir.join("san.ext"), format!("subjectAltName=DNS:{HOST}\n")).unwrap();
        let sign = ["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &pem];
        openssl(&[&sign[..], &["-days", "2", "-extfile", "san.ext"]].concat(), &self.dir);
        (self.dir.join(pem), self.dir.join(key))
    }

    /// An HTTPS client trusting this authority, reaching [`HOST`] at
    /// `addr`, following no redirects, telling the server's certificate.
    pub fn https_client(&self, addr: SocketAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.pem).unwrap())
            .resolve(HOST, addr)
            .redirect(reqwest::redirect::Policy::none())
            .tls_info(true)
            .timeout(WAIT)
            .build()
            .unwrap()
    }

    /// A TLS client configuration trusting this authority only.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(&self.pem).unwrap()).unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(tls)
    }

    /// Opens `wss://HOST…` `url` on `addr`, trusting this authority.
    pub async fn connect_wss(
        &self,
        addr: SocketAddr,
        url: &str,
    ) -> WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = Some(Connector::Rustls(self.client_config()));
        let connecting = tokio_tungstenite::client_async_tls_with_config(url, tcp, None, connector);
        tokio::time::timeout(WAIT, connecting).await.expect("in time").expect("a wss handshake").0
    }

    /// A TLS connection to [`HOST`] at `addr`, handshake done, trusting
    /// this authority.
    pub async fn connect_tls(&self, addr: SocketAddr) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.client_config());
        let connecting = connector.connect(rustls::pki_types::ServerName::try_from(HOST).unwrap(), tcp);
        tokio::time::timeout(WAIT, connecting).await.expect("in time").expect("a TLS handshake")
    }
}

/// The next text frame as JSON, skipping pings and pongs.
pub async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next()).await.expect("a frame").expect("open").expect("valid");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("a JSON frame");
        }
    }
}
