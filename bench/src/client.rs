//! The load generator's WebSocket client and the few bytes it reads of each
//! frame: the seq and the send time carried in the payload. No JSON parse,
//! no allocation per message.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

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

/// The seq of a server `message` frame, if it is one.
pub fn seq_of(frame: &str) -> Option<u64> {
    const KEY: &str = "\"seq\":";
    let start = frame.find(KEY)? + KEY.len();
    digits(&frame[start..])
}

/// The send time (µs since the epoch) carried in a timed frame's payload.
pub fn sent_micros(frame: &str) -> Option<u64> {
    const KEY: &str = "\"message\":\"";
    let start = frame.rfind(KEY)? + KEY.len();
    digits(&frame[start..])
}

fn digits(text: &str) -> Option<u64> {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text[..end].parse().ok()
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
