//! Chats through an endpoint: prints every event, sends each line typed
//! (`/redact SEQ` redacts a message instead, with a `moderate` endpoint)
//! and prints its seq once the server acknowledged it. It reconnects by
//! itself and resumes where it stopped; lines typed meanwhile are sent
//! after the reconnect, each published once.
//!
//! ```sh
//! cargo run -p comms-sdk --example chat -- ws://127.0.0.1:3000/ws/endpoint/CODE/
//! ```

use comms_sdk::{EndpointConnection, Event};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), comms_sdk::Error> {
    let url = std::env::args().nth(1).expect("usage: chat WS_URL");
    let mut chat = EndpointConnection::connect(&url).await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut typing = true;
    loop {
        tokio::select! {
            event = chat.next_event() => match event {
                Some(Event::Message(message)) => {
                    let author = message.sender.meta.get("name").cloned().unwrap_or(message.sender.id.into());
                    println!("#{} {} {author}: {}", message.seq, message.timestamp, message.message);
                }
                Some(Event::Closed(closed)) => {
                    println!("closed: {}", closed.reason);
                    return Ok(());
                }
                Some(other) => println!("{other:?}"),
                None => return Ok(()),
            },
            line = lines.next_line(), if typing => match line {
                Ok(Some(line)) => {
                    // Sent from a task of its own: a send waits for its
                    // ack (through reconnects), and events keep coming
                    // meanwhile.
                    let sender = chat.sender();
                    tokio::spawn(async move {
                        let sent = match line.strip_prefix("/redact ").and_then(|seq| seq.trim().parse().ok()) {
                            Some(seq) => sender.redact(seq).await.map(|()| "redaction sent".to_owned()),
                            None => sender.send(&line).await.map(|receipt| format!("published as #{}", receipt.seq)),
                        };
                        match sent {
                            Ok(done) => println!("{done}"),
                            Err(err) => println!("not sent: {err}"),
                        }
                    });
                }
                _ => {
                    typing = false;
                    chat.close().await;
                }
            },
        }
    }
}
