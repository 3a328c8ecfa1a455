//! The load generator's WebSocket client and the few bytes it reads of each
//! frame: the seq and the send time carried in the payload. No JSON parse,
//! no allocation per message.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::Instant;

use memchr::memmem::Finder;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Payload size of every message the benchmark sends, in bytes.
pub const PAYLOAD_BYTES: usize = 64;

/// Opens a WebSocket to `url` (a `ws://127.0.0.1:port/…` URL) from `source`
/// (any 127.x.y.z address; spreading clients over several avoids running
/// out of ephemeral ports).
///
/// # Errors
///
/// The TCP connect or the handshake fails.
pub async fn connect(url: &str, server: SocketAddr, source: Option<IpAddr>) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024).write_buffer_size(16 * 1024);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

/// A client frame whose payload is a JSON string of [`PAYLOAD_BYTES`] bytes
/// (quotes included) starting with the send time in microseconds since
/// `epoch`.
pub fn timed_frame(epoch: Instant) -> String {
    let micros = epoch.elapsed().as_micros();
    let stamp = format!("{micros:020}");
    format!("{{\"message\":\"{stamp}{}\"}}", "x".repeat(PAYLOAD_BYTES - 2 - stamp.len()))
}

/// Finds `"seq":` in a frame; built once (a SIMD substring search).
static SEQ_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"seq\":"));

/// The seq of a server `message` frame, if it is one (the welcome has
/// `last_seq` and `first_seq`, never `"seq":`).
pub fn seq_of(frame: &str) -> Option<u64> {
    let bytes = frame.as_bytes();
    let start = SEQ_KEY.find(bytes)? + SEQ_KEY.needle().len();
    digits(&bytes[start..])
}

/// The `last_seq` of a welcome frame.
pub fn last_seq_of(frame: &str) -> Option<u64> {
    const KEY: &str = "\"last_seq\":";
    let start = frame.find(KEY)? + KEY.len();
    digits(&frame.as_bytes()[start..])
}

/// The send time (µs since the epoch) carried in a timed frame's payload.
/// The server writes the payload last, so it sits at a fixed distance from
/// the end: `…"message":"<20 digits><padding>"}`.
pub fn sent_micros(frame: &str) -> Option<u64> {
    let bytes = frame.as_bytes();
    let quote = bytes.len().checked_sub(PAYLOAD_BYTES + 1)?;
    if bytes[quote] != b'"' || !bytes.ends_with(b"\"}") {
        return None;
    }
    digits(&bytes[quote + 1..])
}

fn digits(bytes: &[u8]) -> Option<u64> {
    let count = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 || count > 20 {
        return None;
    }
    bytes[..count].iter().try_fold(0u64, |n, b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seq_and_send_time_from_a_server_frame() {
        let epoch = Instant::now();
        let sent = timed_frame(epoch);
        let payload = &sent["{\"message\":".len()..sent.len() - 1];
        assert_eq!(payload.len(), PAYLOAD_BYTES);
        let frame = format!(
            "{{\"type\":\"message\",\"id\":\"x\",\"seq\":42,\"room\":\"r\",\"timestamp\":\"t\",\
             \"sender\":{{\"id\":\"ep\",\"meta\":{{}}}},\"message\":{payload}}}"
        );
        assert_eq!(seq_of(&frame), Some(42));
        assert!(sent_micros(&frame).is_some());
        assert_eq!(seq_of("{\"type\":\"welcome\"}"), None);
    }
}
