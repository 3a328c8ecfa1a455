//! Makes a room with a writer and a reader endpoint and prints their
//! WebSocket URLs.
//!
//! ```sh
//! COMMS_URL=http://127.0.0.1:3000 COMMS_KEY=ck_… cargo run -p comms-sdk --example setup_room -- lobby
//! ```

use comms_sdk::{Client, CreateEndpointRequest, CreateRoomRequest, ErrorCode, Permission};

#[tokio::main]
async fn main() -> Result<(), comms_sdk::Error> {
    let url = std::env::var("COMMS_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    let key = std::env::var("COMMS_KEY").expect("set COMMS_KEY to your app's API key");
    let room = std::env::args().nth(1).unwrap_or_else(|| "lobby".into());
    let client = Client::new(&url, &key)?;

    match client.create_room(&CreateRoomRequest::new(room.clone())).await {
        Ok(_) => println!("created room {room}"),
        Err(err) if err.code() == Some(ErrorCode::Conflict) => println!("room {room} exists already"),
        Err(err) => return Err(err),
    }
    let meta = serde_json::json!({"name": "Ann"}).as_object().cloned();
    let writer = CreateEndpointRequest { meta, ..CreateEndpointRequest::new(Permission::ReadAndWrite) };
    let writer = client.create_endpoint(&room, &writer).await?;
    let reader = client.create_endpoint(&room, &CreateEndpointRequest::new(Permission::Read)).await?;
    println!("writer: {}\nreader: {}", writer.ws_url, reader.ws_url);
    Ok(())
}
