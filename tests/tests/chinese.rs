//! Chinese end to end with the default pack: a video with Chinese and
//! English subtitle cues is ingested into the embedded stack; Chinese
//! queries find Chinese cues (translation plus the lexical match), an
//! English name said in a cue is found by that name, and every entry point
//! (HTTP, WebSocket, the seed route, raw NATS) says what a Chinese query was
//! searched as.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use vidseek_tests::media::scene_video;
use vidseek_tests::stack::EmbeddedStack;
use vidseek_tests::websocket;

/// Cues of the test video: (start, end, text). Everything a query should
/// find is said in exactly one cue.
const CUES: [(f64, f64, &str); 4] = [
    (0.5, 2.5, "今天我们在海边跳舞，天气很好。"),
    (3.5, 5.5, "Doctor Zhivago arrives at the station at noon."),
    (6.5, 8.5, "厨房里有一碗热腾腾的面条。"),
    (9.5, 11.5, "The weather report says it will rain tomorrow."),
];

fn write_srt(path: &Path) {
    let clock = |s: f64| {
        let ms = (s * 1000.0).round() as u64;
        format!("00:00:{:02},{:03}", ms / 1000, ms % 1000)
    };
    let body: String = CUES
        .iter()
        .enumerate()
        .map(|(i, (start, end, text))| {
            format!(
                "{}\n{} --> {}\n{text}\n\n",
                i + 1,
                clock(*start),
                clock(*end)
            )
        })
        .collect();
    std::fs::write(path, body).unwrap();
}

async fn json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// Asserts that `answer`'s first result is the subtitle cue `cue`.
fn assert_top_cue(answer: &Value, cue: usize, query: &str) {
    let top = &answer["results"][0];
    assert_eq!(top["kind"], "subtitle", "{query}: {answer}");
    assert_eq!(top["text"], CUES[cue].2, "{query}: {answer}");
    assert!(
        (top["start"].as_f64().unwrap() - CUES[cue].0).abs() < 0.01,
        "{query}: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_queries_and_subtitles_end_to_end() {
    let media = tempfile::tempdir().unwrap();
    let video = media.path().join("talk.mp4");
    scene_video(&video, 3, 4, "160x120");
    write_srt(&media.path().join("talk.srt"));
    let stack = EmbeddedStack::start(media.path());
    let http = reqwest::Client::new();
    let video_id = stack.ingest_and_wait(&http, &video).await;

    // A Chinese cue is found by a Chinese query that shares some of its words.
    for (query, cue) in [("海边跳舞", 0), ("一碗面条", 2), ("厨房 面条", 2)] {
        let answer = json(
            http.get(stack.url("/api/v1/search"))
                .query(&[("text", query)]),
        )
        .await;
        assert_eq!(answer["query_translation"]["language"], "zh", "{answer}");
        assert_top_cue(&answer, cue, query);
        assert_eq!(answer["results"][0]["video_id"], video_id.as_str());
    }
    // An English name said in a cue is found by that name alone, lower case too.
    for query in ["Zhivago", "zhivago"] {
        let answer = json(
            http.get(stack.url("/api/v1/search"))
                .query(&[("text", query)]),
        )
        .await;
        assert!(answer.get("query_translation").is_none(), "{answer}");
        assert_top_cue(&answer, 1, query);
        assert!(
            answer["results"][0]["score"].as_f64().unwrap() > 0.9,
            "a full lexical match is a confident hit: {answer}"
        );
    }

    // WebSocket: the done event carries the translation.
    let mut socket = websocket::connect(&stack.url("")).await;
    let search = json!({"type": "search", "id": "zh1", "text": "海边跳舞"});
    let (_, done) = websocket::search(&mut socket, search, Duration::from_secs(20)).await;
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(done["query_translation"]["language"], "zh", "{done}");
    assert!(
        done["query_translation"]["text"]
            .as_str()
            .unwrap()
            .contains("dance"),
        "{done}"
    );
    assert_top_cue(&done, 0, "海边跳舞 over WebSocket");

    // The seed route answers ids only; the first is the cue.
    let seed = json(
        http.get(stack.url("/text_query"))
            .query(&[("text", "海边跳舞")]),
    )
    .await;
    let first_id = seed[0]["id"].as_str().unwrap();
    let http_answer = json(
        http.get(stack.url("/api/v1/search"))
            .query(&[("text", "海边跳舞")]),
    )
    .await;
    assert_eq!(first_id, http_answer["results"][0]["segment_id"], "{seed}");

    // Raw NATS, JSON in and out, as the nats CLI would send it.
    let nats = stack.nats_client().await;
    let reply = nats
        .request(
            "vidseek.v1.search.text",
            json!({"text": "一碗面条"}).to_string().into(),
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["query_translation"]["language"], "zh", "{answer}");
    assert!(
        answer["query_translation"]["text"]
            .as_str()
            .unwrap()
            .contains("noodle"),
        "{answer}"
    );
    assert_top_cue(&answer, 2, "一碗面条 over NATS");
}
