//! What is not the JSON API proper: the seed design's routes, the web UI,
//! health, metrics, the OpenAPI document and shutdown.

mod common;

use common::{KNOWN_VIDEO, Options, Stack};
use serde_json::Value;

#[tokio::test]
async fn seed_routes_answer_the_original_page() {
    // The seed page is served from another origin, allowed by configuration.
    let stack = Stack::with(Options {
        cors_origins: vec!["http://127.0.0.1:5999".into()],
        ..Options::default()
    })
    .await;
    stack.seed_video(KNOWN_VIDEO, b"video").await;

    let response = stack
        .http
        .get(stack.url("/text_query?text=a%20bicycle"))
        .header("origin", "http://127.0.0.1:5999")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5999"
    );
    let hits: Vec<Value> = response.json().await.unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["id"], format!("{KNOWN_VIDEO}-1"));
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );

    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(vidseek_tests::photos::tiny_png()).file_name("q.png"),
    );
    let response = stack
        .http
        .post(stack.url("/image_query"))
        .header("origin", "http://127.0.0.1:5999")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://127.0.0.1:5999"
    );
    let hits: Vec<Value> = response.json().await.unwrap();
    assert_eq!(hits[0]["id"], "vimage01-1");

    // A CORS preflight is answered too.
    let response = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.url("/image_query"))
        .header("origin", "http://127.0.0.1:5999")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let (status, info) = stack
        .get_json(&format!("/video_library?id={KNOWN_VIDEO}-1"))
        .await;
    assert_eq!(status, 200, "{info}");
    // Absolute, on the host asked: the seed page lives on another origin.
    let cover = info["cover"].as_str().unwrap();
    assert!(cover.starts_with("http://127.0.0.1:"), "{info}");
    assert!(
        cover.ends_with(&format!("/media/thumbs/{KNOWN_VIDEO}/1.jpg")),
        "{info}"
    );
    assert_eq!(info["timestamp"], "12.50");
    assert_eq!(info["video_id"], KNOWN_VIDEO);
    let play = info["play_url"].as_str().unwrap();
    assert!(
        play.starts_with("http://") && play.ends_with(&format!("/media/videos/{KNOWN_VIDEO}")),
        "{info}"
    );
    for bad in ["vnope-1", &format!("{KNOWN_VIDEO}-9"), "garbage", "..%2F-1"] {
        assert_eq!(
            stack.get_json(&format!("/video_library?id={bad}")).await.0,
            404,
            "{bad}"
        );
    }

    let response = stack
        .http
        .get(stack.url(&format!("/video_player?id={KNOWN_VIDEO}-1&timestamp=12.50")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("<video"));
    assert!(page.contains(&format!("src=\"/media/videos/{KNOWN_VIDEO}#t=12.500\"")));
    let response = stack
        .http
        .get(stack.url(&format!(
            "/video_player?id={KNOWN_VIDEO}-1&timestamp=%3Cscript%3E"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn serves_the_web_ui() {
    let stack = Stack::start().await;
    let response = stack.http.get(stack.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let etag = response.headers()["etag"].clone();
    assert!(response.text().await.unwrap().contains("<html"));

    let response = stack.http.get(stack.url("/api.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    let response = stack
        .http
        .get(stack.url("/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 304);

    assert_eq!(stack.get_json("/nope.js").await.0, 404);
}

#[tokio::test]
async fn health_reports_the_query_stage() {
    let stack = Stack::start().await;
    let (status, body) = stack.get_json("/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["shards_ready"], 2);
}

#[tokio::test]
async fn metrics_count_requests_searches_and_sockets() {
    let stack = Stack::start().await;
    assert_eq!(stack.get_json("/api/v1/search?text=cat").await.0, 200);
    assert_eq!(stack.get_json("/api/v1/videos/vnope").await.0, 404);
    let (_socket, _) = tokio_tungstenite::connect_async(&stack.ws_url)
        .await
        .unwrap();
    let text = stack
        .http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "vidseek_gateway_http_requests_total{route=\"/api/v1/search\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "vidseek_gateway_http_requests_total{route=\"/api/v1/videos/{id}\",status=\"404\"} 1"
    ));
    assert!(text.contains("vidseek_gateway_search_duration_seconds_count{outcome=\"done\"} 1"));
    assert!(text.contains("vidseek_gateway_websocket_connections_open 1"));
}

#[tokio::test]
async fn openapi_lists_the_routes() {
    let stack = Stack::start().await;
    let (status, spec) = stack.get_json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/metrics",
        "/api/v1/search",
        "/api/v1/ws",
        "/api/v1/videos",
        "/api/v1/videos/{id}",
        "/api/v1/videos/{id}/segments",
        "/media/videos/{id}",
        "/media/thumbs/{id}/{file}",
        "/text_query",
        "/image_query",
        "/video_library",
        "/video_player",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the spec");
    }
    assert!(paths["/api/v1/search"]["post"].is_object());
    assert!(paths["/api/v1/videos/{id}"]["delete"].is_object());
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for schema in ["SearchResponse", "SearchHit", "VideoRecord", "ErrorBody"] {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
}

#[tokio::test]
async fn shuts_down_gracefully_with_a_socket_open() {
    let stack = Stack::start().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&stack.ws_url)
        .await
        .unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), stack.shutdown())
        .await
        .expect("serve returns after the shutdown signal");
    assert!(result.is_ok(), "{result:?}");
    // The socket was told to close rather than left hanging.
    use futures::StreamExt;
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok());
}
