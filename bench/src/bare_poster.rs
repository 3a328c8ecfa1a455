//! The reference for the webhook scenario: the least a server must do per
//! webhook delivery, with nothing of comms around it.
//!
//! `comms-bench --bare-poster URL` runs this loop in a process of its own,
//! which the scenario pins to the server's core: it signs a
//! `message.created`-sized body the Standard Webhooks way and POSTs it with
//! the same HTTP client comms uses (reqwest on hyper, keep-alive), reading
//! each answer, [`RATE`] times a second. No storage, no lease, no outcome.
//! The fan-out beside it, compared with the fan-out beside nothing, is what
//! one core can keep while making that many deliveries at best.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Semaphore;

/// Deliveries a second, as many as the scenario's second app publishes.
pub const RATE: u32 = 10_000;
/// Requests in flight at most (comms' default concurrency in all).
const IN_FLIGHT: usize = 64;
/// A body the size of a comms `message.created` event with a short message.
const BODY: &str = r#"{"type":"message.created","timestamp":"2026-12-05T21:00:00.000Z","data":{"message":{"id":"msg_2W8fJ3kq9XbN4mZt7RcY1a","room":"side","seq":123456,"timestamp":"2026-12-05T21:00:00.000Z","sender":{"id":"ep_7Hq2LmN9sV4xK1bZ","meta":{}},"message":"0123456789012345678901234567890123456789012345678901234567890123"}}}"#;

/// Posts to `url` at [`RATE`] until the process is killed.
///
/// # Errors
///
/// The HTTP client cannot be built.
pub fn run(url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let key: Arc<[u8]> = Arc::from(&b"a bench secret of thirty-two bytes"[..]);
    runtime.block_on(async move {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut sent = 0u64;
        loop {
            tick.tick().await;
            for _ in 0..RATE / 100 {
                sent += 1;
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { return };
                let (client, url, key) = (client.clone(), url.to_owned(), Arc::clone(&key));
                tokio::spawn(async move {
                    let _slot = slot;
                    let id = format!("msg_{sent}");
                    let _ = post(&client, &url, &key, &id).await;
                });
            }
        }
    });
    Ok(())
}

/// One signed POST, its answer read to the end.
async fn post(client: &reqwest::Client, url: &str, key: &[u8], id: &str) -> reqwest::Result<()> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.{BODY}").as_bytes());
    let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(BODY)
        .send()
        .await?;
    response.bytes().await.map(drop)
}
