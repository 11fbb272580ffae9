//! `vidseek up` with `VIDSEEK_MEDIA_STORE=nats`: an upload goes into the
//! JetStream object store, its thumbnails too, and the gateway serves both
//! from there (the video with ranges) while nothing of them stays in the
//! data directory; deleting the video removes them. The roles run with
//! their own NATS permissions, as in every embedded stack.

use reqwest::StatusCode;
use vidseek_bus::catalog::Catalog;
use vidseek_bus::media_store::{Bucket, MediaStore, upload_name};
use vidseek_tests::media::scene_video;
use vidseek_tests::stack::EmbeddedStack;

const SUBTITLES: &str = "1\n00:00:00,500 --> 00:00:01,500\na paper boat on a pond\n";

#[tokio::test]
async fn uploads_and_thumbnails_live_in_nats_and_go_with_their_video() {
    let media = tempfile::tempdir().expect("media dir");
    let stack =
        EmbeddedStack::start_with_env(media.path(), &[("VIDSEEK_MEDIA_STORE", "nats".as_ref())]);
    let http = reqwest::Client::new();
    let video = media.path().join("scenes.mp4");
    scene_video(&video, 2, 1, "160x120");
    let bytes = std::fs::read(&video).expect("read the video");
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name("scenes.mp4"),
        )
        .part(
            "subtitles",
            reqwest::multipart::Part::bytes(SUBTITLES.as_bytes().to_vec()).file_name("scenes.srt"),
        );
    let response = http
        .post(stack.url("/api/v1/videos"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::ACCEPTED, "{}", stack.log());
    let accepted: serde_json::Value = response.json().await.expect("JSON");
    let id = accepted["video_id"].as_str().expect("video_id").to_string();
    stack.wait_ready(&http, &id).await;
    let js = async_nats::jetstream::new(stack.nats_client().await);
    let record = Catalog::open(&js)
        .await
        .expect("catalog")
        .get(&id)
        .await
        .expect("read the catalog")
        .expect("the record");
    // The catalog names the object, not a file.
    let object = upload_name(&record.path)
        .unwrap_or_else(|| panic!("not an upload path: {}", record.path))
        .to_string();
    assert!(object.ends_with("/scenes.mp4"), "{object}");

    // Every thumbnail (the subtitle's text segment has one too) is served.
    let segments: serde_json::Value = http
        .get(stack.url(&format!("/api/v1/videos/{id}/segments")))
        .send()
        .await
        .expect("segments")
        .json()
        .await
        .expect("segments JSON");
    let segments = segments["segments"].as_array().expect("segments").clone();
    assert!(
        segments.iter().any(|s| s["kind"] == "subtitle"),
        "the subtitles were not read: {segments:?}"
    );
    let thumbs: Vec<String> = segments
        .iter()
        .map(|s| {
            s["thumbnail_url"]
                .as_str()
                .expect("thumbnail_url")
                .to_string()
        })
        .collect();
    for thumb in &thumbs {
        let response = http.get(stack.url(thumb)).send().await.expect("thumbnail");
        assert_eq!(response.status(), StatusCode::OK, "{thumb}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let etag = response.headers()["etag"].clone();
        let jpeg = response.bytes().await.expect("thumbnail bytes");
        assert!(jpeg.starts_with(&[0xff, 0xd8]), "{thumb} is not a JPEG");
        let again = http
            .get(stack.url(thumb))
            .header("if-none-match", etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{thumb}");
    }
    // Unknown and malformed names are 404, as from files.
    for bad in [
        format!("/media/thumbs/{id}/999.jpg"),
        format!("/media/thumbs/{id}/..%2f0.jpg"),
        "/media/thumbs/..%2F..%2Fetc/0.jpg".to_string(),
    ] {
        let response = http.get(stack.url(&bad)).send().await.expect("bad");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }

    // The upload plays whole and by ranges.
    let play = stack.url(&format!("/media/videos/{id}"));
    let whole = http.get(&play).send().await.expect("play");
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "video/mp4");
    assert_eq!(whole.bytes().await.expect("video"), bytes.as_slice());
    let tail = http
        .get(&play)
        .header("range", "bytes=-100")
        .send()
        .await
        .expect("range");
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    let len = bytes.len();
    assert_eq!(
        tail.headers()["content-range"],
        format!("bytes {}-{}/{len}", len - 100, len - 1).as_str()
    );
    assert_eq!(tail.bytes().await.expect("range"), &bytes[len - 100..]);
    let past = http
        .get(&play)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .expect("range past the end");
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Nothing of it in the data directory.
    let data = stack.data_dir.path();
    assert!(!data.join("thumbs").exists(), "thumbnails written to disk");
    let uploads = std::fs::read_dir(data.join("library/uploads")).map_or(0, |d| d.count());
    assert_eq!(uploads, 0, "the upload stayed in the data directory");

    // Deleting the video removes its thumbnails and its upload.
    let deleted = http
        .delete(stack.url(&format!("/api/v1/videos/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), StatusCode::OK, "{}", stack.log());
    for thumb in &thumbs {
        let response = http.get(stack.url(thumb)).send().await.expect("thumbnail");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{thumb}");
    }
    let store = MediaStore::open(&js).await.expect("media store");
    for name in [object.clone(), object.replace(".mp4", ".srt")] {
        let info = store.info(Bucket::Uploads, &name).await.expect("info");
        assert_eq!(info, None, "{name} is still stored");
    }
    let gone = http.get(&play).send().await.expect("play");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}
