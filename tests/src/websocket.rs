//! Searching over the gateway's WebSocket the way the web UI does.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket to a gateway at `http_base` (`http://host:port`).
pub async fn connect(http_base: &str) -> Socket {
    let url = format!("{}/api/v1/ws", http_base.trim_end_matches('/')).replacen("http", "ws", 1);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake")
        .0
}

/// Sends one search `message` and collects its events: the partials, then
/// the final one (`done` or `error`). Each event must come within `timeout`.
pub async fn search(socket: &mut Socket, message: Value, timeout: Duration) -> (Vec<Value>, Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("send the search");
    let mut partials = vec![];
    loop {
        let frame = tokio::time::timeout(timeout, socket.next())
            .await
            .unwrap_or_else(|_| panic!("no event within {timeout:?} for {message}"))
            .expect("socket open")
            .expect("valid frame");
        let Message::Text(text) = frame else { continue };
        let event: Value = serde_json::from_str(text.as_str()).expect("a JSON event");
        if event["type"] == "partial" {
            partials.push(event);
        } else {
            return (partials, event);
        }
    }
}
