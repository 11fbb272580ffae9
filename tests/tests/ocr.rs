//! Text inside videos end to end: a subtitle track in an MP4 (mov_text),
//! in an MKV (SubRip) and as pictures (PGS, recognised by OCR) and Chinese
//! captions burned into the picture are searchable by phrases from them; a
//! video without text gets no OCR segments. The stack's default OCR mode is
//! off, so the burned-in video also shows that a request's `ocr` choice
//! overrides the default.

use std::path::Path;

use serde_json::{Value, json};
use vidseek_tests::bitmap_subtitles::{TWO_LINES, video_with_bitmap_subtitles};
use vidseek_tests::media::{BurnedCaption, captioned_video, video_with_subtitle_track};
use vidseek_tests::stack::EmbeddedStack;

const MP4_TRACK: &str = "1\n00:00:00,500 --> 00:00:02,500\nThe red kite circles above the quarry\n\n\
                         2\n00:00:03,000 --> 00:00:04,500\nBring the umbrella tomorrow\n";
const MKV_TRACK: &str = "1\n00:00:00,500 --> 00:00:02,000\n图书馆明天早上九点开门\n\n\
                         2\n00:00:02,500 --> 00:00:04,500\nThe violinist missed the last train\n";
const BURNED: [(f64, f64, &str); 2] = [
    (0.5, 2.5, "厨房里有一碗热腾腾的面条"),
    (3.0, 5.0, "我们明天去海边钓鱼"),
];

async fn submit(stack: &EmbeddedStack, http: &reqwest::Client, path: &Path, ocr: &str) -> String {
    let accepted: Value = http
        .post(stack.url("/api/v1/videos"))
        .json(&json!({ "path": path, "ocr": ocr }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(accepted["status"], "queued", "{accepted}");
    accepted["video_id"].as_str().unwrap().to_string()
}

async fn get(http: &reqwest::Client, url: String, query: &[(&str, &str)]) -> Value {
    let response = http.get(url).query(query).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// The top result for `query`: its kind, video and text.
async fn top(stack: &EmbeddedStack, http: &reqwest::Client, query: &str) -> Value {
    let answer = get(http, stack.url("/api/v1/search"), &[("text", query)]).await;
    answer["results"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subtitle_tracks_and_burned_in_captions_are_searchable() {
    let media = tempfile::tempdir().unwrap();
    let mp4 = media.path().join("kite.mp4");
    video_with_subtitle_track(&mp4, 5, MP4_TRACK, "eng");
    let mkv = media.path().join("library.mkv");
    video_with_subtitle_track(&mkv, 5, MKV_TRACK, "chi");
    let burned = media.path().join("kitchen.mp4");
    let captions: Vec<BurnedCaption> = BURNED
        .iter()
        .map(|&(start, end, text)| BurnedCaption { start, end, text })
        .collect();
    captioned_video(&burned, "color=c=0x3a6ea5", "640x360", 6, &captions);
    let plain = media.path().join("fractal.mp4");
    captioned_video(&plain, "mandelbrot", "640x360", 3, &[]);
    let pictures = media.path().join("bluray.mkv");
    video_with_bitmap_subtitles(&pictures, 5, &TWO_LINES, "chi");

    let stack = EmbeddedStack::start_with_env(media.path(), &[("VIDSEEK_OCR", "off".as_ref())]);
    let http = reqwest::Client::new();
    let mp4_id = submit(&stack, &http, &mp4, "off").await;
    let mkv_id = submit(&stack, &http, &mkv, "off").await;
    let burned_id = submit(&stack, &http, &burned, "captions").await;
    let plain_id = submit(&stack, &http, &plain, "all").await;
    // A picture track is read only where OCR is on.
    let pictures_id = submit(&stack, &http, &pictures, "captions").await;
    for id in [&mp4_id, &mkv_id, &burned_id, &plain_id, &pictures_id] {
        stack.wait_ready(&http, id).await;
    }

    // Embedded tracks: found by a phrase, as subtitle cues with their text.
    for (query, video, text) in [
        (
            "red kite circles above the quarry",
            &mp4_id,
            "The red kite circles above the quarry",
        ),
        ("图书馆明天早上开门", &mkv_id, "图书馆明天早上九点开门"),
        (
            "violinist missed the last train",
            &mkv_id,
            "The violinist missed the last train",
        ),
        ("公园骑自行车", &pictures_id, "晚上我们去公园骑自行车"),
        (
            "lighthouse keeper waved goodbye",
            &pictures_id,
            "The lighthouse keeper waved goodbye",
        ),
    ] {
        let hit = top(&stack, &http, query).await;
        assert_eq!(hit["kind"], "subtitle", "{query}: {hit}");
        assert_eq!(hit["video_id"], video.as_str(), "{query}: {hit}");
        assert_eq!(hit["text"], text, "{query}: {hit}");
    }

    // Burned-in captions: found by a Chinese phrase, showing what was read.
    for (query, (start, end, text)) in [("热腾腾的面条", BURNED[0]), ("去海边钓鱼", BURNED[1])]
    {
        let hit = top(&stack, &http, query).await;
        assert_eq!(hit["kind"], "ocr", "{query}: {hit}");
        assert_eq!(hit["video_id"], burned_id.as_str(), "{query}: {hit}");
        assert_eq!(hit["text"], text, "{query}: {hit}");
        let (s, e) = (hit["start"].as_f64().unwrap(), hit["end"].as_f64().unwrap());
        assert!(
            (s - start).abs() <= 0.5 && (e - end).abs() <= 0.5,
            "{query}: {s}..{e} should be {start}..{end} within 0.5 s"
        );
    }

    // Text segments by kind, per video: a video with no text has no OCR
    // segments even with OCR on; OCR off leaves tracks as the only text.
    let kinds = |segments: &Value, kind: &str| {
        segments["segments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == kind)
            .count()
    };
    for (id, subtitles, ocr) in [
        (&mp4_id, 2, 0),
        (&mkv_id, 2, 0),
        (&burned_id, 0, 2),
        (&plain_id, 0, 0),
        (&pictures_id, 2, 0),
    ] {
        let segments = get(
            &http,
            stack.url(&format!("/api/v1/videos/{id}/segments")),
            &[],
        )
        .await;
        assert_eq!(kinds(&segments, "subtitle"), subtitles, "{id}: {segments}");
        assert_eq!(kinds(&segments, "ocr"), ocr, "{id}: {segments}");
        assert!(kinds(&segments, "shot") >= 1, "{id}: {segments}");
    }
}
