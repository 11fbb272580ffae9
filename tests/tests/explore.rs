//! Beyond a result list, end to end with the real model pack: relevance
//! along a video's timeline, more like this, combined text-and-picture
//! queries, filters and grouping applied in the rankers, and CSV export;
//! over HTTP and over NATS.

use std::path::Path;

use serde_json::{Value, json};
use vidseek_tests::photos::coffee_picture;
use vidseek_tests::stack::{EmbeddedStack, sample};

/// The photo slideshow shows each photo for 4 s (see photos.srt).
const CAT: (f64, f64) = (4.0, 8.0);
const COFFEE: (f64, f64) = (8.0, 12.0);

async fn get(
    http: &reqwest::Client,
    stack: &EmbeddedStack,
    path: &str,
    query: &[(&str, &str)],
) -> Value {
    let response = http.get(stack.url(path)).query(query).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path} {query:?}: {body}");
    body
}

async fn post(http: &reqwest::Client, stack: &EmbeddedStack, path: &str, body: Value) -> Value {
    let response = http.post(stack.url(path)).json(&body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path} {body}: {answer}");
    answer
}

fn results(answer: &Value) -> &Vec<Value> {
    answer["results"].as_array().unwrap()
}

/// The best-scoring segment of a `VideoScores` answer: the heat strip's peak.
fn best_scored(scores: &Value) -> &Value {
    scores["segments"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["score"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["score"].as_f64().unwrap())
        })
        .unwrap()
}

fn overlaps(hit: &Value, (start, end): (f64, f64)) -> bool {
    hit["start"].as_f64().unwrap() < end && hit["end"].as_f64().unwrap() > start
}

/// `ffmpeg` with `args`, which must succeed.
fn ffmpeg(args: &[&str]) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg {args:?}");
}

/// The slideshow again, smaller and re-encoded: another file, so another
/// video, showing the same photos.
fn second_copy(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("photos-small.mp4");
    let input = sample("photos.mp4");
    ffmpeg(&[
        "-i",
        input.to_str().unwrap(),
        "-vf",
        "scale=320:-2",
        "-c:v",
        "libx264",
        "-crf",
        "30",
        "-an",
        out.to_str().unwrap(),
    ]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_scores_more_like_this_combined_filters_grouping_and_export() {
    let media = tempfile::tempdir().unwrap();
    for name in ["photos.mp4", "photos.srt", "bikes.mp4"] {
        std::fs::copy(sample(name), media.path().join(name)).unwrap();
    }
    let copy = second_copy(media.path());
    let stack = EmbeddedStack::start(media.path());
    let http = reqwest::Client::new();
    let photos = stack
        .ingest_and_wait(&http, &media.path().join("photos.mp4"))
        .await;
    let small = stack.ingest_and_wait(&http, &copy).await;
    let bikes = stack
        .ingest_and_wait(&http, &media.path().join("bikes.mp4"))
        .await;
    let picture = coffee_picture(media.path());

    timeline_scores(&http, &stack, &photos, &picture).await;
    more_like_this(&http, &stack, &photos, &small).await;
    combined_queries(&http, &stack, &picture).await;
    filters_apply_before_the_top_k(&http, &stack, &photos, &bikes).await;
    grouping_by_video(&http, &stack).await;
    csv_export(&http, &stack, &photos).await;
    over_nats(&stack, &photos, &small).await;
}

async fn timeline_scores(
    http: &reqwest::Client,
    stack: &EmbeddedStack,
    photos: &str,
    picture: &[u8],
) {
    let record = get(http, stack, &format!("/api/v1/videos/{photos}"), &[]).await;
    let path = format!("/api/v1/videos/{photos}/scores");
    let answer = get(http, stack, &path, &[("text", "a cup of coffee")]).await;
    let segments = answer["segments"].as_array().unwrap();
    assert_eq!(
        segments.len() as u64,
        record["segment_count"].as_u64().unwrap(),
        "every segment of the video is scored: {answer}"
    );
    let starts: Vec<f64> = segments
        .iter()
        .map(|s| s["start"].as_f64().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {starts:?}"
    );
    let best = best_scored(&answer);
    assert!(
        overlaps(best, COFFEE),
        "the strip peaks at the coffee: {answer}"
    );
    // The same scores a search gives: the search's best is the strip's best.
    let search = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "a cup of coffee"), ("video", photos), ("k", "1")],
    )
    .await;
    let top = &results(&search)[0];
    assert_eq!(top["segment_id"], best["segment_id"], "{search}");
    assert!((top["score"].as_f64().unwrap() - best["score"].as_f64().unwrap()).abs() < 1e-5);

    // The image form: a picture of the coffee peaks there too.
    let response = http
        .post(stack.url(&path))
        .header("content-type", "image/jpeg")
        .body(picture.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let best = best_scored(&answer);
    assert!(overlaps(best, COFFEE), "{answer}");

    for (path, query, status) in [
        ("/api/v1/videos/vnothere/scores", "text=a", 404),
        ("/api/v1/videos/..%2Fetc/scores", "text=a", 404),
        (path.as_str(), "", 400),
        (path.as_str(), "like=not-a-segment-id", 400),
    ] {
        let response = http
            .get(stack.url(&format!("{path}?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}?{query}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["message"].is_string(), "{body}");
    }
}

async fn more_like_this(http: &reqwest::Client, stack: &EmbeddedStack, photos: &str, small: &str) {
    // The coffee shot of the original...
    let search = get(
        http,
        stack,
        "/api/v1/search",
        &[
            ("text", "a cup of coffee"),
            ("video", photos),
            ("kind", "shot"),
            ("k", "1"),
        ],
    )
    .await;
    let coffee = results(&search)[0].clone();
    assert!(overlaps(&coffee, COFFEE), "{search}");
    let id = coffee["segment_id"].as_str().unwrap();
    // ...finds the same photo in the other copy first, and never itself.
    for answer in [
        post(http, stack, "/api/v1/search", json!({"like": id, "k": 5})).await,
        get(http, stack, "/api/v1/search", &[("like", id), ("k", "5")]).await,
    ] {
        let hits = results(&answer);
        assert_eq!(hits.len(), 5, "{answer}");
        assert_eq!(hits[0]["video_id"], small, "{answer}");
        assert!(overlaps(&hits[0], COFFEE), "the same photo first: {answer}");
        assert!(
            hits.iter().all(|h| h["segment_id"] != id),
            "not itself: {answer}"
        );
    }
    // A subtitle cue's words find what they describe.
    let cue = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "espresso"), ("kind", "subtitle"), ("k", "1")],
    )
    .await;
    let cue_id = results(&cue)[0]["segment_id"].as_str().unwrap().to_string();
    let like_cue = post(http, stack, "/api/v1/search", json!({"like": cue_id})).await;
    let top = &results(&like_cue)[0];
    assert!(
        overlaps(top, COFFEE),
        "a cue's likes are about coffee: {like_cue}"
    );

    let response = http
        .post(stack.url("/api/v1/search"))
        .json(&json!({"like": format!("{photos}-9999")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404, "an unknown segment");
}

async fn combined_queries(http: &reqwest::Client, stack: &EmbeddedStack, picture: &[u8]) {
    use base64::Engine as _;
    let image = base64::engine::general_purpose::STANDARD.encode(picture);
    let ask = |weight: f64| json!({"text": "a tabby cat", "image_base64": image, "image_weight": weight, "kinds": ["shot"]});
    let words = post(http, stack, "/api/v1/search", ask(0.0)).await;
    let pictured = post(http, stack, "/api/v1/search", ask(1.0)).await;
    assert!(
        overlaps(&results(&words)[0], CAT),
        "weight 0: the words decide: {words}"
    );
    assert!(
        overlaps(&results(&pictured)[0], COFFEE),
        "weight 1: the picture decides: {pictured}"
    );
    // In between, both count: the best is the cat or the coffee.
    let both = post(http, stack, "/api/v1/search", ask(0.5)).await;
    let best = &results(&both)[0];
    assert!(overlaps(best, CAT) || overlaps(best, COFFEE), "{both}");
    let mixed = results(&both)[0]["score"].as_f64().unwrap();
    let only_words = results(&words)[0]["score"].as_f64().unwrap();
    assert!(
        (mixed - only_words).abs() > 1e-4,
        "the weight changes the scores: {both} {words}"
    );

    // Multipart: image and text fields together.
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(picture.to_vec()).file_name("coffee.jpg"),
        )
        .text("text", "a tabby cat")
        .text("image_weight", "1");
    let answer: Value = http
        .post(stack.url("/api/v1/search?kind=shot"))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(overlaps(&results(&answer)[0], COFFEE), "{answer}");
}

async fn filters_apply_before_the_top_k(
    http: &reqwest::Client,
    stack: &EmbeddedStack,
    photos: &str,
    bikes: &str,
) {
    // Restricted to the bikes video, a coffee query still returns k results,
    // all from it.
    let answer = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "a cup of coffee"), ("video", bikes), ("k", "3")],
    )
    .await;
    assert_eq!(results(&answer).len(), 3, "{answer}");
    assert!(
        results(&answer).iter().all(|h| h["video_id"] == bikes),
        "{answer}"
    );
    // A time range inside the photos video leaves the coffee out.
    let late = get(
        http,
        stack,
        "/api/v1/search",
        &[
            ("text", "a cup of coffee"),
            ("video", photos),
            ("from", "12"),
            ("to", "24"),
        ],
    )
    .await;
    assert!(!results(&late).is_empty(), "{late}");
    for hit in results(&late) {
        assert!(
            hit["end"].as_f64().unwrap() > 12.0 && hit["start"].as_f64().unwrap() < 24.0,
            "{late}"
        );
        assert!(!overlaps(hit, (8.5, 11.5)), "{late}");
    }
    // One kind only.
    let cues = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "a cup of coffee"), ("kind", "subtitle")],
    )
    .await;
    assert!(!results(&cues).is_empty());
    assert!(
        results(&cues).iter().all(|h| h["kind"] == "subtitle"),
        "{cues}"
    );
    // The same filter as JSON fields.
    let json_filtered = post(
        http,
        stack,
        "/api/v1/search",
        json!({"text": "a cup of coffee", "videos": [bikes], "k": 3}),
    )
    .await;
    assert_eq!(
        results(&json_filtered)
            .iter()
            .map(|h| h["segment_id"].clone())
            .collect::<Vec<_>>(),
        results(&answer)
            .iter()
            .map(|h| h["segment_id"].clone())
            .collect::<Vec<_>>()
    );
    let response = http
        .get(stack.url("/api/v1/search?text=a&from=10&to=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

async fn grouping_by_video(http: &reqwest::Client, stack: &EmbeddedStack) {
    let plain = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "a cup of coffee"), ("k", "10")],
    )
    .await;
    let grouped = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "a cup of coffee"), ("group", "video")],
    )
    .await;
    let videos: Vec<&Value> = results(&grouped).iter().map(|h| &h["video_id"]).collect();
    assert_eq!(
        videos.len(),
        3,
        "one result per video, three videos: {grouped}"
    );
    let mut distinct = videos.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{grouped}");
    // Each video's best segment is the one the plain search ranks first for it.
    let first = &results(&grouped)[0];
    assert_eq!(
        first["segment_id"],
        results(&plain)[0]["segment_id"],
        "{grouped} {plain}"
    );
    assert!(
        results(&grouped)
            .iter()
            .all(|h| h["more_in_video"].is_u64()),
        "{grouped}"
    );
    assert!(first["more_in_video"].as_u64().unwrap() >= 1, "{grouped}");
}

async fn csv_export(http: &reqwest::Client, stack: &EmbeddedStack, photos: &str) {
    let response = http
        .get(stack.url("/api/v1/search"))
        .query(&[("text", "一杯咖啡"), ("k", "4"), ("format", "csv")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"),
        "{:?}",
        response.headers()
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "rank,video_id,video_name,segment_id,kind,start,end,score,text,link"
    );
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[1].starts_with("1,"), "{csv}");
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("/?q=%E4%B8%80%E6%9D%AF%E5%92%96%E5%95%A1&v=")),
        "{csv}"
    );
    let json = get(
        http,
        stack,
        "/api/v1/search",
        &[("text", "一杯咖啡"), ("k", "4")],
    )
    .await;
    assert!(
        lines[1].contains(results(&json)[0]["segment_id"].as_str().unwrap()),
        "{csv}"
    );
    assert!(csv.contains(photos));
}

async fn over_nats(stack: &EmbeddedStack, photos: &str, small: &str) {
    let nats = stack.nats_client().await;
    let ask = |subject: &'static str, body: Value| {
        let nats = nats.clone();
        async move {
            let reply = nats
                .request(subject, serde_json::to_vec(&body).unwrap().into())
                .await
                .unwrap();
            serde_json::from_slice::<Value>(&reply.payload).unwrap()
        }
    };
    let filtered = ask(
        "vidseek.v1.search.text",
        json!({"text": "a cup of coffee", "videos": [small], "k": 2}),
    )
    .await;
    assert_eq!(results(&filtered).len(), 2, "{filtered}");
    assert!(
        results(&filtered).iter().all(|h| h["video_id"] == small),
        "{filtered}"
    );
    let coffee = &results(&filtered)[0];
    let like = ask(
        "vidseek.v1.search",
        json!({"like": coffee["segment_id"], "k": 3, "group": "video"}),
    )
    .await;
    let top = &results(&like)[0];
    assert_eq!(top["video_id"], photos, "{like}");
    assert!(overlaps(top, COFFEE), "{like}");
    let scores = ask(
        "vidseek.v1.scores",
        json!({"video_id": photos, "text": "a tabby cat"}),
    )
    .await;
    let best = best_scored(&scores);
    assert!(overlaps(best, CAT), "{scores}");
    let unknown = ask(
        "vidseek.v1.scores",
        json!({"video_id": "vnothere", "text": "a"}),
    )
    .await;
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");

    // The command line asks the same subject.
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(vidseek_tests::paths::vidseek_bin())
            .arg("search")
            .args(args)
            .envs(stack.client_env())
            .output()
            .expect("run vidseek search");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "vidseek search {args:?}: {stderr}");
        output.stdout
    };
    let like_id = coffee["segment_id"].as_str().unwrap();
    let answer: Value = serde_json::from_slice(&cli(&[
        "--json", "-k", "2", "--like", like_id, "--video", photos,
    ]))
    .unwrap();
    assert!(
        results(&answer).iter().all(|h| h["video_id"] == photos),
        "{answer}"
    );
    assert!(overlaps(&results(&answer)[0], COFFEE), "{answer}");
    let table = String::from_utf8(cli(&[
        "a cup of coffee",
        "--group-by-video",
        "--kind",
        "shot",
    ]))
    .unwrap();
    assert_eq!(table.lines().count(), 3, "one line per video: {table}");
    assert!(table.contains("more in this video"), "{table}");
}
