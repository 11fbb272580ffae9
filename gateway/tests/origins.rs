//! Which web pages may use the gateway: with no configuration, no CORS
//! headers and WebSockets from the gateway's own pages only; with
//! `cors_origins`, exactly those origins (the seed page served elsewhere).

mod common;

use common::{Options, Stack};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const SEED_ORIGIN: &str = "http://seed.example:5000";
const OTHER_ORIGIN: &str = "http://evil.example";

async fn allow_origin(stack: &Stack, origin: &str) -> Option<String> {
    let response = stack
        .http
        .get(stack.url("/text_query?text=cat"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

/// The HTTP status of a WebSocket handshake sent with `origin` (101 = open).
async fn websocket_status(stack: &Stack, origin: Option<&str>) -> u16 {
    let mut request = stack
        .url("/api/v1/ws")
        .replacen("http", "ws", 1)
        .into_client_request()
        .unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn by_default_other_origins_get_no_cors_and_no_websocket() {
    let stack = Stack::start().await;
    assert_eq!(allow_origin(&stack, OTHER_ORIGIN).await, None);
    assert_eq!(allow_origin(&stack, SEED_ORIGIN).await, None);
    assert_eq!(websocket_status(&stack, Some(OTHER_ORIGIN)).await, 403);
    // The gateway's own page, and clients that are not browsers.
    let own = stack.url("").trim_end_matches('/').to_string();
    assert_eq!(websocket_status(&stack, Some(&own)).await, 101);
    assert_eq!(websocket_status(&stack, None).await, 101);
}

#[tokio::test]
async fn configured_origins_are_allowed_and_only_they() {
    let stack = Stack::with(Options {
        cors_origins: vec![SEED_ORIGIN.into()],
        ..Options::default()
    })
    .await;
    assert_eq!(
        allow_origin(&stack, SEED_ORIGIN).await.as_deref(),
        Some(SEED_ORIGIN)
    );
    assert_eq!(allow_origin(&stack, OTHER_ORIGIN).await, None);
    // A preflight for a JSON search from the seed origin.
    let preflight = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.url("/api/v1/search"))
        .header("origin", SEED_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        SEED_ORIGIN
    );
    assert_eq!(websocket_status(&stack, Some(SEED_ORIGIN)).await, 101);
    assert_eq!(websocket_status(&stack, Some(OTHER_ORIGIN)).await, 403);
}
