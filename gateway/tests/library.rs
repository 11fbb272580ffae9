//! The library routes: listing, segments, media with ranges, ingest by path
//! and by upload, deletion, and the API token.

mod common;

use common::{KNOWN_VIDEO, Options, Stack, UNSUPPORTED_SUFFIX};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

#[tokio::test]
async fn lists_videos_and_their_segments() {
    let stack = Stack::start().await;
    let (status, body) = stack.get_json("/api/v1/videos").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"videos": []}));

    stack.seed_video(KNOWN_VIDEO, b"video bytes").await;
    stack.seed_video("vapples01", b"other").await;
    let (status, body) = stack.get_json("/api/v1/videos").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["video_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["vapples01", KNOWN_VIDEO]);
    assert_eq!(stack.get_json("/api/v1/videos?sort=updated").await.0, 200);
    assert_eq!(stack.get_json("/api/v1/videos?sort=size").await.0, 400);

    let (status, body) = stack
        .get_json(&format!("/api/v1/videos/{KNOWN_VIDEO}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["segment_count"], 3);

    let (status, body) = stack
        .get_json(&format!("/api/v1/videos/{KNOWN_VIDEO}/segments"))
        .await;
    assert_eq!(status, 200, "{body}");
    let segments = body["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 3);
    assert_eq!(segments[0]["segment_id"], format!("{KNOWN_VIDEO}-0"));
    assert_eq!(segments[0]["start"], 2.5);
    assert_eq!(segments[0]["kind"], "shot");
    assert!(segments[0].get("text").is_none());
    assert_eq!(
        segments[1]["thumbnail_url"],
        format!("/media/thumbs/{KNOWN_VIDEO}/1.jpg")
    );
    assert_eq!(segments[2]["kind"], "subtitle");
    assert_eq!(segments[2]["text"], "a bicycle by the wall");
}

#[tokio::test]
async fn unknown_ids_and_traversal_are_not_found() {
    let stack = Stack::start().await;
    stack.seed_video(KNOWN_VIDEO, b"video").await;
    for path in [
        "/api/v1/videos/vnope".to_string(),
        "/api/v1/videos/vnope/segments".to_string(),
        "/api/v1/videos/..%2F..%2Fetc%2Fpasswd".to_string(),
        "/api/v1/videos/a.b/segments".to_string(),
        "/media/videos/vnope".to_string(),
        "/media/videos/..%2F..%2Fetc%2Fpasswd".to_string(),
        format!("/media/thumbs/{KNOWN_VIDEO}/9.jpg"),
        format!("/media/thumbs/{KNOWN_VIDEO}/..%2F..%2F..%2Fetc%2Fpasswd"),
        format!("/media/thumbs/{KNOWN_VIDEO}/-1.jpg"),
        format!("/media/thumbs/{KNOWN_VIDEO}/1.png"),
        "/media/thumbs/..%2F..%2Fetc/1.jpg".to_string(),
        "/media/thumbs/../../etc/1.jpg".to_string(),
        "/../../etc/passwd".to_string(),
        "/..%2F..%2Fetc%2Fpasswd".to_string(),
    ] {
        let response = stack.http.get(stack.url(&path)).send().await.unwrap();
        let status = response.status().as_u16();
        assert!(status == 404 || status == 400, "{path} answered {status}");
        let body: Value = response.json().await.unwrap_or_default();
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn video_files_outside_the_media_roots_are_not_served() {
    let stack = Stack::start().await;
    // A catalog record planted on NATS, pointing at a file the server can
    // read but that no ingest would accept.
    let secret = stack.data_dir.path().join("secret.txt");
    std::fs::write(&secret, b"not for the web").unwrap();
    stack.seed_video_at("vplanted01", &secret).await;
    // A symlink inside a root that leads out of it.
    let library = stack.data_dir.path().join("library");
    std::fs::create_dir_all(&library).unwrap();
    let link = library.join("escape.mp4");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    stack.seed_video_at("vlinked001", &link).await;
    for id in ["vplanted01", "vlinked001"] {
        let (status, body) = stack.get_json(&format!("/media/videos/{id}")).await;
        assert_eq!(status, 403, "{id}");
        assert_eq!(body["error"]["code"], "forbidden_path", "{id}: {body}");
    }
    // Inside the roots it is served.
    stack.seed_video(KNOWN_VIDEO, b"video bytes").await;
    let (status, _) = stack
        .get_json(&format!("/media/videos/{KNOWN_VIDEO}"))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn media_supports_range_requests() {
    let stack = Stack::start().await;
    let content: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    stack.seed_video(KNOWN_VIDEO, &content).await;

    let response = stack
        .http
        .get(stack.url(&format!("/media/videos/{KNOWN_VIDEO}")))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.headers()["content-range"].to_str().unwrap(),
        "bytes 100-199/4096"
    );
    assert_eq!(response.headers()["content-type"], "video/mp4");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &content[100..200]);

    let response = stack
        .http
        .get(stack.url(&format!("/media/videos/{KNOWN_VIDEO}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["accept-ranges"], "bytes");
    assert_eq!(response.bytes().await.unwrap().len(), 4096);

    let response = stack
        .http
        .get(stack.url(&format!("/media/thumbs/{KNOWN_VIDEO}/1.jpg")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
}

#[tokio::test]
async fn ingest_by_path_is_forwarded_to_the_ingest_service() {
    let mut stack = Stack::start().await;
    let response = stack
        .http
        .post(stack.url("/api/v1/videos"))
        .json(&json!({"path": "/srv/media/bikes.mp4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"video_id": "vnew0001", "status": "queued"}));
    assert_eq!(
        stack.ingests.recv().await.unwrap().path,
        "/srv/media/bikes.mp4"
    );

    // The service's refusals keep their meaning.
    let response = stack
        .http
        .post(stack.url("/api/v1/videos"))
        .json(&json!({"path": format!("/srv/media/x{UNSUPPORTED_SUFFIX}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let response = stack
        .http
        .post(stack.url("/api/v1/videos"))
        .json(&json!({"nopath": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn uploads_are_saved_with_their_subtitles_then_ingested() {
    let mut stack = Stack::start().await;
    // Subtitles first: the gateway must still name them after the video.
    let form = Form::new()
        .part(
            "subtitles",
            Part::bytes(b"1\n00:00:01,000 --> 00:00:02,000\nhi\n".to_vec())
                .file_name("whatever.SRT"),
        )
        .part(
            "file",
            Part::bytes(b"not really a video".to_vec()).file_name("../My Clip (1).mp4"),
        );
    let response = stack.post_form("/api/v1/videos", form).await;
    assert_eq!(response.status(), 202);
    let request = stack.ingests.recv().await.unwrap();
    let uploads = stack
        .data_dir
        .path()
        .canonicalize()
        .unwrap()
        .join("library/uploads");
    let video = std::path::PathBuf::from(&request.path);
    assert!(
        video.starts_with(&uploads),
        "{video:?} is under {uploads:?}"
    );
    assert_eq!(video.file_name().unwrap(), "My_Clip__1_.mp4");
    assert_eq!(std::fs::read(&video).unwrap(), b"not really a video");
    assert_eq!(request.name.as_deref(), Some("../My Clip (1).mp4"));
    let subtitles = std::path::PathBuf::from(request.subtitles.unwrap());
    assert_eq!(subtitles, video.with_extension("srt"));
    assert!(std::fs::read_to_string(subtitles).unwrap().contains("hi"));
}

fn upload_dirs(stack: &Stack) -> usize {
    std::fs::read_dir(stack.data_dir.path().join("library/uploads"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

#[tokio::test]
async fn oversized_or_refused_uploads_leave_no_file() {
    let stack = Stack::with(Options {
        max_upload_bytes: 10_000,
        ..Options::default()
    })
    .await;
    // Just over the limit: caught while streaming, after the file was started.
    // Then far over it: refused from Content-Length alone.
    for size in [10_001, 5_000_000] {
        let form = Form::new().part("file", Part::bytes(vec![7u8; size]).file_name("big.mp4"));
        let response = stack.post_form("/api/v1/videos", form).await;
        assert_eq!(response.status(), 413, "{size} bytes");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_large");
        assert_eq!(upload_dirs(&stack), 0, "nothing left after {size} bytes");
    }

    // A file the ingest service refuses is removed too.
    let form = Form::new().part(
        "file",
        Part::bytes(vec![1u8; 100]).file_name(format!("x{UNSUPPORTED_SUFFIX}")),
    );
    let response = stack.post_form("/api/v1/videos", form).await;
    assert_eq!(response.status(), 415);
    assert_eq!(upload_dirs(&stack), 0);

    let form = Form::new().part("other", Part::bytes(vec![1u8; 10]));
    let response = stack.post_form("/api/v1/videos", form).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn delete_is_forwarded_and_unknown_ids_are_not_found() {
    let stack = Stack::start().await;
    let response = stack
        .http
        .delete(stack.url(&format!("/api/v1/videos/{KNOWN_VIDEO}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["segments_removed"], 3);
    for id in ["vnope", "..%2Fetc"] {
        let response = stack
            .http
            .delete(stack.url(&format!("/api/v1/videos/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{id}");
    }
}

#[tokio::test]
async fn server_paths_are_shown_only_to_an_authorised_caller_who_asks() {
    let stack = Stack::with(Options {
        api_token: Some("s3cret".into()),
        ..Options::default()
    })
    .await;
    let record = stack.seed_video(KNOWN_VIDEO, b"video bytes").await;
    let full = record.path.clone();
    assert!(full.starts_with('/'), "{full}");
    let one = format!("/api/v1/videos/{KNOWN_VIDEO}");
    // By default: the file name only, in the list and in the record.
    let (_, list) = stack.get_json("/api/v1/videos").await;
    assert_eq!(
        list["videos"][0]["path"],
        format!("{KNOWN_VIDEO}.mp4"),
        "{list}"
    );
    let (_, body) = stack.get_json(&one).await;
    assert_eq!(body["path"], format!("{KNOWN_VIDEO}.mp4"), "{body}");
    // Asking without the token is refused; with it, the full path.
    for path in [
        "/api/v1/videos?paths=true".to_string(),
        format!("{one}?paths=true"),
    ] {
        assert_eq!(stack.get_json(&path).await.0, 401, "{path}");
        let response = stack
            .http
            .get(stack.url(&path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        let shown = body.get("videos").map_or(&body, |v| &v[0]);
        assert_eq!(shown["path"], full.as_str(), "{path}: {body}");
    }
}

#[tokio::test]
async fn the_api_token_guards_ingest_and_delete_only() {
    let stack = Stack::with(Options {
        api_token: Some("s3cret".into()),
        ..Options::default()
    })
    .await;
    let ingest = || {
        stack
            .http
            .post(stack.url("/api/v1/videos"))
            .json(&json!({"path": "/srv/a.mp4"}))
    };
    let delete = || {
        stack
            .http
            .delete(stack.url(&format!("/api/v1/videos/{KNOWN_VIDEO}")))
    };
    for (request, name) in [(ingest(), "ingest"), (delete(), "delete")] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{name} without token");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    for (request, name) in [(ingest(), "ingest"), (delete(), "delete")] {
        let response = request.bearer_auth("wrong").send().await.unwrap();
        assert_eq!(response.status(), 401, "{name} with the wrong token");
    }
    assert_eq!(
        ingest()
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        delete()
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Reading needs no token.
    assert_eq!(stack.get_json("/api/v1/videos").await.0, 200);
    // A guarded upload is refused before a byte is written.
    let form = Form::new().part("file", Part::bytes(vec![1u8; 100]).file_name("a.mp4"));
    let response = stack.post_form("/api/v1/videos", form).await;
    assert_eq!(response.status(), 401);
    assert_eq!(upload_dirs(&stack), 0);
}
