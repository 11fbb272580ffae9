//! `api_token_reads` (VIDSEEK_API_TOKEN_READS): every route that reads the
//! library needs the API token, the probes and the web UI's files stay open,
//! and reads stay open by default (see library.rs).

mod common;

use common::{KNOWN_VIDEO, Options, Stack};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use vidseek_protocol::rank::segment_id;
use vidseek_tests::photos::tiny_png;

const TOKEN: &str = "s3cret";

/// Every read route, as (method, path).
fn reads() -> Vec<(&'static str, String)> {
    let segment = segment_id(KNOWN_VIDEO, 0);
    vec![
        ("GET", "/api/v1/search?text=a+bicycle".into()),
        ("POST", "/api/v1/search".into()),
        ("GET", "/api/v1/videos".into()),
        ("GET", format!("/api/v1/videos/{KNOWN_VIDEO}")),
        ("GET", format!("/api/v1/videos/{KNOWN_VIDEO}/segments")),
        ("GET", format!("/media/videos/{KNOWN_VIDEO}")),
        ("GET", format!("/media/thumbs/{KNOWN_VIDEO}/0.jpg")),
        ("GET", "/text_query?text=a+bicycle".into()),
        ("POST", "/image_query".into()),
        ("GET", format!("/video_library?id={segment}")),
        ("GET", format!("/video_player?id={segment}&timestamp=2.5")),
    ]
}

async fn send(stack: &Stack, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = match method {
        "GET" => stack.http.get(stack.url(path)),
        // Both image routes take the picture in the form field `image`.
        _ => {
            let form = Form::new().part("image", Part::bytes(tiny_png()).file_name("q.png"));
            stack.http.post(stack.url(path)).multipart(form)
        }
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn websocket(stack: &Stack, token: Option<&str>) -> Result<(), String> {
    let mut request = stack.ws_url.as_str().into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn every_read_needs_the_token_when_reads_are_guarded() {
    let stack = Stack::with(Options {
        api_token: Some(TOKEN.into()),
        api_token_reads: true,
        ..Options::default()
    })
    .await;
    stack.seed_video(KNOWN_VIDEO, b"video bytes").await;
    for (method, path) in reads() {
        for token in [None, Some("wrong")] {
            let response = send(&stack, method, &path, token).await;
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
        let response = send(&stack, method, &path, Some(TOKEN)).await;
        assert!(
            response.status().is_success(),
            "{method} {path} with the token: {}",
            response.status()
        );
    }
    let refused = websocket(&stack, None).await.unwrap_err();
    assert!(refused.contains("401"), "{refused}");
    websocket(&stack, Some(TOKEN))
        .await
        .expect("the WebSocket opens with the token");

    // Probes and the web UI's own files need no token.
    for path in [
        "/healthz",
        "/metrics",
        "/api/v1/openapi.json",
        "/",
        "/app.js",
    ] {
        let status = stack
            .http
            .get(stack.url(path))
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(status, 401, "{path}");
        assert_ne!(status, 404, "{path}");
    }
}

#[tokio::test]
async fn guarded_reads_without_a_token_configured_stay_closed() {
    let stack = Stack::with(Options {
        api_token: None,
        api_token_reads: true,
        ..Options::default()
    })
    .await;
    let (status, body) = stack.get_json("/api/v1/videos").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("VIDSEEK_API_TOKEN"),
        "{body}"
    );
    assert!(websocket(&stack, None).await.is_err());
}
