//! Bad input at every NATS edge of the embedded stack: each public subject
//! and each internal one a client on the NATS plane can reach gets malformed
//! JSON and MessagePack, wrong types, empty and huge bodies, invalid UTF-8,
//! things that are not images, paths that leave the media root, unknown ids
//! and huge `k`. Every case must be answered within its deadline with an
//! error reply (`Vidseek-Error` header, `{"error": {"code", "message"}}` in
//! the request's format, the code the case calls for), and afterwards the
//! stack must still search and report healthy: no process died on the way.
//!
//! The table is printed as the test runs (`--nocapture`); it is the source
//! of the "Inputs: NATS messages" rows of docs/RELIABILITY.md.

use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use base64::Engine;
use serde_json::{Value, json};
use vidseek_protocol::codec::{self, CONTENT_TYPE, Format, MSGPACK};
use vidseek_protocol::encode::Calibration;
use vidseek_protocol::query::{QueryInput, SearchRequest};
use vidseek_protocol::rank::{KindCalibration, RankRequest, Space};
use vidseek_protocol::{ErrorBody, subjects};
use vidseek_tests::stack::EmbeddedStack;

/// Longer than any stage's own deadline: a reply that misses it is a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// What a case must be answered with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// An error reply with this code.
    Error(&'static str),
    /// The health probe ignores its body: any body gets the report.
    HealthReport,
}

struct Case {
    subject: String,
    input: String,
    body: Vec<u8>,
    msgpack: bool,
    expect: Expect,
}

/// The table is built row by row with these.
struct Table {
    cases: Vec<Case>,
}

impl Table {
    fn json(&mut self, subject: &str, input: &str, body: impl Into<Vec<u8>>, expect: Expect) {
        self.push(subject, input, body.into(), false, expect);
    }

    fn msgpack(&mut self, subject: &str, input: &str, body: Vec<u8>, expect: Expect) {
        self.push(subject, input, body, true, expect);
    }

    fn push(&mut self, subject: &str, input: &str, body: Vec<u8>, msgpack: bool, expect: Expect) {
        self.cases.push(Case {
            subject: subject.to_string(),
            input: input.to_string(),
            body,
            msgpack,
            expect,
        });
    }

    /// The rows every structured subject gets: what no decoder may accept.
    /// `not_json` answers a body that does not start like a JSON object,
    /// which the image subject reads as raw image bytes.
    fn undecodable(&mut self, subject: &str, wrong_types: &str, not_json: Expect) {
        let bad = Expect::Error("bad_request");
        self.json(subject, "malformed JSON", &b"{\"text\": \"cat\""[..], bad);
        let nested = "[".repeat(100_000);
        self.json(subject, "JSON nested 100000 deep", nested, not_json);
        self.msgpack(subject, "malformed MessagePack", vec![0xc1, 0x00], bad);
        self.msgpack(
            subject,
            "MessagePack header, JSON body",
            br#"{"text":"cat"}"#.to_vec(),
            bad,
        );
        self.msgpack(subject, "MessagePack, truncated map", vec![0x83, 0xa4], bad);
        self.json(subject, "wrong types", wrong_types, bad);
        self.msgpack(
            subject,
            "wrong types (MessagePack)",
            msgpack(wrong_types),
            bad,
        );
        self.json(subject, "JSON array", "[1, 2, 3]", not_json);
        self.json(subject, "empty body", Vec::new(), bad);
        self.msgpack(subject, "empty body (MessagePack)", Vec::new(), bad);
        self.json(
            subject,
            "invalid UTF-8 bytes",
            vec![0xff, 0xfe, 0xfd, 0x00],
            not_json,
        );
    }
}

/// A JSON document re-encoded as MessagePack.
fn msgpack(json_text: &str) -> Vec<u8> {
    let value: Value = serde_json::from_str(json_text).unwrap();
    codec::encode(Format::MsgPack, &value).unwrap()
}

/// `{"<field>": <string of invalid UTF-8>}` in MessagePack.
fn msgpack_invalid_utf8(field: &str) -> Vec<u8> {
    let mut out = vec![0x81, 0xa0 | field.len() as u8];
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&[0xd9, 0x03, 0xff, 0xfe, 0xc0]);
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, 128])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The wire shape of an encode-image request: images as MessagePack binary.
#[derive(serde::Serialize)]
struct Images {
    images: Vec<Bin>,
}

struct Bin(Vec<u8>);

impl serde::Serialize for Bin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

fn search_request(input: QueryInput, k: usize) -> Vec<u8> {
    let request = SearchRequest {
        query_id: "edge".into(),
        input,
        k,
        min_score: 0.0,
        filter: Default::default(),
        group_by_video: false,
    };
    codec::encode(Format::MsgPack, &request).unwrap()
}

fn rank_request(vector: Vec<f32>, k: usize, min_score: f32) -> Vec<u8> {
    let calibration = Calibration { a: 10.0, b: -3.0 };
    let request = RankRequest {
        space: Space::Text,
        vector,
        k,
        calibration: KindCalibration {
            shot: calibration,
            subtitle: calibration,
            ocr: None,
        },
        min_score,
        terms: vec![],
        filter: Default::default(),
        exclude: vec![],
        group_by_video: false,
        blend: None,
    };
    codec::encode(Format::MsgPack, &request).unwrap()
}

fn cases(root: &Path) -> Vec<Case> {
    use Expect::{Error, HealthReport};
    let bad = Error("bad_request");
    let huge_text = "a cat on a sofa ".repeat(12_500); // 200 000 characters
    let half_png = {
        let whole = png(64, 64);
        whole[..whole.len() / 2].to_vec()
    };
    let root_str = root.to_str().unwrap();
    let mut t = Table { cases: vec![] };

    // vidseek.v1.search.text
    let s = subjects::SEARCH_TEXT;
    t.undecodable(s, r#"{"text": 42}"#, bad);
    t.json(s, "k of the wrong type", r#"{"text":"cat","k":"ten"}"#, bad);
    t.json(s, "missing text", "{}", bad);
    t.json(s, "empty text", r#"{"text":""}"#, bad);
    t.json(s, "blank text", r#"{"text":" \n\t "}"#, bad);
    let huge = json!({ "text": huge_text }).to_string();
    t.json(s, "200 000 characters of text", huge, Error("too_large"));
    t.json(
        s,
        "invalid UTF-8 in the text",
        &b"{\"text\":\"\xff\xfe\"}"[..],
        bad,
    );
    t.msgpack(
        s,
        "invalid UTF-8 text (MessagePack)",
        msgpack_invalid_utf8("text"),
        bad,
    );
    t.json(s, "k = 1000000", r#"{"text":"cat","k":1000000}"#, bad);
    let k_max = format!(r#"{{"text":"cat","k":{}}}"#, u64::MAX);
    t.json(s, "k = u64::MAX", k_max, bad);
    t.json(s, "k = 1e300", r#"{"text":"cat","k":1e300}"#, bad);
    t.json(s, "k = -1", r#"{"text":"cat","k":-1}"#, bad);
    t.json(s, "k = 0", r#"{"text":"cat","k":0}"#, bad);
    t.json(s, "min_score = 7", r#"{"text":"cat","min_score":7}"#, bad);

    // vidseek.v1.search.image
    let s = subjects::SEARCH_IMAGE;
    let unsupported = Error("unsupported_media");
    t.undecodable(s, r#"{"image_base64": 7}"#, unsupported);
    t.json(s, "empty image_base64", r#"{"image_base64":""}"#, bad);
    t.json(
        s,
        "image_base64 not base64",
        r#"{"image_base64":"***"}"#,
        bad,
    );
    t.json(
        s,
        "raw text, not an image",
        "hello, this is text",
        unsupported,
    );
    t.json(
        s,
        "raw bytes, not an image",
        vec![0x00, 0xff, 0x80, 0x7f],
        unsupported,
    );
    let text_b64 = json!({ "image_base64": base64(b"just some text") }).to_string();
    t.json(s, "base64 of text", text_b64, unsupported);
    t.json(
        s,
        "raw \"../../etc/passwd\"",
        "../../etc/passwd",
        unsupported,
    );
    let path_b64 = json!({ "image_base64": base64(b"/etc/passwd") }).to_string();
    t.json(s, "base64 of \"/etc/passwd\"", path_b64, unsupported);
    t.json(s, "PNG cut in half", half_png.clone(), unsupported);
    let bomb = vidseek_tests::photos::png_bomb(50_000, 50_000);
    t.json(
        s,
        "PNG declaring 50000x50000",
        bomb.clone(),
        Error("too_large"),
    );
    let image_k = json!({ "image_base64": base64(&png(32, 32)), "k": 1_000_000 }).to_string();
    t.json(s, "k = 1000000", image_k, bad);

    // vidseek.v1.search.stream (the gateway's subject; MessagePack requests)
    let s = subjects::SEARCH_STREAM;
    t.undecodable(
        s,
        r#"{"query_id":"q","input":{"kind":"text","text":5},"k":3}"#,
        bad,
    );
    let text = |text: &str| QueryInput::Text { text: text.into() };
    t.msgpack(s, "empty text", search_request(text(""), 10), bad);
    let huge = search_request(text(&huge_text), 10);
    t.msgpack(s, "200 000 characters of text", huge, Error("too_large"));
    t.msgpack(
        s,
        "k = usize::MAX",
        search_request(text("cat"), usize::MAX),
        bad,
    );
    t.msgpack(s, "k = 0", search_request(text("cat"), 0), bad);
    let bytes = |b: &[u8]| QueryInput::Image { bytes: b.to_vec() };
    t.msgpack(s, "empty image", search_request(bytes(b""), 10), bad);
    let not_image = search_request(bytes(b"hello"), 10);
    t.msgpack(s, "not an image", not_image, unsupported);
    t.msgpack(
        s,
        "PNG cut in half",
        search_request(bytes(&half_png), 10),
        unsupported,
    );
    let bomb_request = search_request(bytes(&bomb), 10);
    t.msgpack(
        s,
        "PNG declaring 50000x50000",
        bomb_request,
        Error("too_large"),
    );

    // vidseek.v1.ingest
    let s = subjects::INGEST;
    t.undecodable(s, r#"{"path": 5}"#, bad);
    t.json(s, "missing path", r#"{"name":"x"}"#, bad);
    t.json(s, "empty path", r#"{"path":""}"#, bad);
    t.json(
        s,
        "\"../../etc/passwd\"",
        r#"{"path":"../../etc/passwd"}"#,
        bad,
    );
    t.json(s, "relative path", r#"{"path":"clip.mp4"}"#, bad);
    let forbidden = Error("forbidden_path");
    t.json(s, "/etc/passwd", r#"{"path":"/etc/passwd"}"#, forbidden);
    let escape = json!({ "path": format!("{root_str}/../../../../etc/passwd") }).to_string();
    t.json(s, "ROOT/../../../../etc/passwd", escape, forbidden);
    let link = json!({ "path": format!("{root_str}/passwd-link.mp4") }).to_string();
    t.json(s, "symlink in ROOT to /etc/passwd", link, forbidden);
    let subs = json!({ "path": format!("{root_str}/clip.mp4"), "subtitles": "/etc/passwd" });
    t.json(s, "subtitles /etc/passwd", subs.to_string(), forbidden);
    let dir = json!({ "path": root_str }).to_string();
    t.json(s, "the media root itself", dir, bad);
    let missing = json!({ "path": format!("{root_str}/missing.mp4") }).to_string();
    t.json(s, "ROOT/missing.mp4", missing, Error("not_found"));
    let long = json!({ "path": format!("{root_str}/{}", "a".repeat(100_000)) }).to_string();
    t.json(s, "100 000-byte path", long, Error("not_found"));
    let nul = json!({ "path": format!("{root_str}/clip\u{0}.mp4") }).to_string();
    t.json(s, "path with a NUL byte", nul, bad);
    t.msgpack(
        s,
        "invalid UTF-8 path (MessagePack)",
        msgpack_invalid_utf8("path"),
        bad,
    );

    // vidseek.v1.ingest.delete
    let s = subjects::INGEST_DELETE;
    t.undecodable(s, r#"{"video_id": 1}"#, bad);
    let not_found = Error("not_found");
    t.json(
        s,
        "unknown id",
        r#"{"video_id":"v0123456789abcdef"}"#,
        not_found,
    );
    t.json(s, "empty id", r#"{"video_id":""}"#, not_found);
    t.json(
        s,
        "\"../../etc/passwd\"",
        r#"{"video_id":"../../etc/passwd"}"#,
        not_found,
    );
    t.json(
        s,
        "NATS wildcards \"*.>\"",
        r#"{"video_id":"*.>"}"#,
        not_found,
    );
    let long = json!({ "video_id": "v".repeat(100_000) }).to_string();
    t.json(s, "100 000-character id", long, not_found);

    // vidseek.v1.health: a probe without input
    let s = subjects::HEALTH;
    t.json(s, "malformed JSON", "{\"x\":", HealthReport);
    t.msgpack(s, "malformed MessagePack", vec![0xc1], HealthReport);
    t.json(s, "invalid UTF-8 bytes", vec![0xff, 0xfe], HealthReport);
    t.json(s, "100 000-byte body", vec![b'x'; 100_000], HealthReport);

    // vidseek.v1.encode.text (internal, reachable on the NATS plane)
    let s = subjects::ENCODE_TEXT;
    t.undecodable(s, r#"{"texts": "cat"}"#, bad);
    t.json(
        s,
        "invalid UTF-8 in a text",
        &b"{\"texts\":[\"\xff\"]}"[..],
        bad,
    );
    let long_text = json!({ "texts": [huge_text.clone()] }).to_string();
    t.json(s, "a 200 000-character text", long_text, Error("too_large"));
    let many_texts = json!({ "texts": vec!["a cat"; 10_000] }).to_string();
    t.json(
        s,
        "10 000 texts in one request",
        many_texts,
        Error("too_large"),
    );

    // vidseek.v1.encode.image (internal)
    let s = subjects::ENCODE_IMAGE;
    t.undecodable(s, r#"{"images": "cat"}"#, bad);
    let images = |images: Vec<Vec<u8>>| {
        let request = Images {
            images: images.into_iter().map(Bin).collect(),
        };
        codec::encode(Format::MsgPack, &request).unwrap()
    };
    t.msgpack(s, "an empty image", images(vec![vec![]]), unsupported);
    t.msgpack(
        s,
        "not an image",
        images(vec![b"hello".to_vec()]),
        unsupported,
    );
    t.msgpack(s, "PNG cut in half", images(vec![half_png]), unsupported);
    let traversal = images(vec![b"../../etc/passwd".to_vec()]);
    t.msgpack(s, "\"../../etc/passwd\"", traversal, unsupported);
    let many_images = images(vec![png(8, 8); 2_000]);
    t.msgpack(
        s,
        "2 000 images in one request",
        many_images,
        Error("too_large"),
    );
    let bomb = images(vec![vidseek_tests::photos::png_bomb(50_000, 50_000)]);
    t.msgpack(s, "PNG declaring 50000x50000", bomb, Error("too_large"));

    // vidseek.v1.rank.0 (internal)
    let s = subjects::rank(0);
    t.undecodable(&s, r#"{"space":"text","vector":"x","k":3}"#, bad);
    let unit = vec![1.0 / 8f32.sqrt(); 8];
    t.msgpack(
        &s,
        "k = usize::MAX",
        rank_request(unit.clone(), usize::MAX, 0.0),
        bad,
    );
    t.msgpack(
        &s,
        "k = 1000000",
        rank_request(unit.clone(), 1_000_000, 0.0),
        bad,
    );
    t.msgpack(&s, "empty vector", rank_request(vec![], 10, 0.0), bad);
    let nan = rank_request(vec![f32::NAN; 8], 10, 0.0);
    t.msgpack(&s, "NaN vector", nan, bad);
    t.msgpack(&s, "min_score = 7", rank_request(unit, 10, 7.0), bad);
    let unknown_space = r#"{"space":"audio","vector":[1],"k":3,"calibration":{"shot":{"a":1,"b":0},"subtitle":{"a":1,"b":0}}}"#;
    t.json(&s, "unknown space", unknown_space, bad);
    let backwards = r#"{"space":"text","vector":[1],"k":3,"calibration":{"shot":{"a":1,"b":0},"subtitle":{"a":1,"b":0}},"filter":{"from":9,"to":1}}"#;
    t.json(&s, "from after to", backwards, bad);
    let blend_same_space = r#"{"space":"text","vector":[1],"k":3,"calibration":{"shot":{"a":1,"b":0},"subtitle":{"a":1,"b":0}},"blend":{"space":"text","vector":[1],"calibration":{"shot":{"a":1,"b":0},"subtitle":{"a":1,"b":0}},"weight":0.5}}"#;
    t.json(&s, "blend in the same space", blend_same_space, bad);

    // vidseek.v1.rank.0.segment and .scores
    let s = subjects::rank_segment(0);
    t.undecodable(&s, r#"{"segment_id": 3}"#, bad);
    let missing = r#"{"segment_id":"vmissing-0"}"#;
    t.json(&s, "segment not held", missing, not_found);
    t.json(
        &s,
        "not a segment id",
        r#"{"segment_id":"../../x"}"#,
        not_found,
    );
    let s = subjects::rank_scores(0);
    t.undecodable(&s, r#"{"video_id": 3}"#, bad);

    // vidseek.v1.search
    let s = subjects::SEARCH;
    t.undecodable(s, r#"{"text": 42}"#, bad);
    t.json(s, "nothing to search", "{}", bad);
    t.json(s, "like with text", r#"{"like":"v1-0","text":"cat"}"#, bad);
    t.json(s, "like not a segment id", r#"{"like":"../etc"}"#, bad);
    t.json(
        s,
        "like an unknown segment",
        r#"{"like":"vnothere-3"}"#,
        not_found,
    );
    t.json(
        s,
        "image_weight 2",
        r#"{"text":"cat","image_base64":"AAEC","image_weight":2}"#,
        bad,
    );
    t.json(s, "from = -1", r#"{"text":"cat","from":-1}"#, bad);
    t.json(
        s,
        "from after to",
        r#"{"text":"cat","from":20,"to":10}"#,
        bad,
    );
    t.json(
        s,
        "unknown kind",
        r#"{"text":"cat","kinds":["scene"]}"#,
        bad,
    );
    t.json(
        s,
        "unknown grouping",
        r#"{"text":"cat","group":"shot"}"#,
        bad,
    );
    let many_videos = json!({ "text": "cat", "videos": vec!["v1"; 101] }).to_string();
    t.json(s, "101 videos", many_videos, bad);

    // vidseek.v1.scores
    let s = subjects::SCORES;
    t.undecodable(s, r#"{"video_id": 1, "text": "cat"}"#, bad);
    t.json(s, "missing video_id", r#"{"text":"cat"}"#, bad);
    t.json(s, "empty video_id", r#"{"video_id":"","text":"cat"}"#, bad);
    t.json(s, "no query", r#"{"video_id":"v1"}"#, bad);
    let unknown = r#"{"video_id":"vnothere","text":"cat"}"#;
    t.json(s, "unknown video", unknown, not_found);

    t.cases
}

/// How a case was answered.
#[derive(Debug)]
enum Answer {
    /// An error reply in the contract's shape, with its code.
    Error(String),
    /// A result (no error header).
    Result(Value),
    /// Anything else, described.
    Broken(String),
}

impl Answer {
    fn code(&self) -> &str {
        match self {
            Answer::Error(code) => code,
            Answer::Result(_) => "(result)",
            Answer::Broken(_) => "(broken)",
        }
    }
}

async fn ask(client: &async_nats::Client, case: &Case) -> Answer {
    let mut request = async_nats::Request::new()
        .payload(case.body.clone().into())
        .timeout(Some(DEADLINE));
    let format = if case.msgpack {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, MSGPACK);
        request = request.headers(headers);
        Format::MsgPack
    } else {
        Format::Json
    };
    let message = match client.send_request(case.subject.clone(), request).await {
        Ok(message) => message,
        Err(err) => return Answer::Broken(format!("no reply: {err} ({:?})", err.kind())),
    };
    let header = message
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::HEADER_ERROR))
        .map(|v| v.as_str().to_string());
    let content_type = message
        .headers
        .as_ref()
        .and_then(|h| h.get(CONTENT_TYPE))
        .map(|v| v.as_str().to_string());
    if content_type.as_deref() != Some(format.content_type()) {
        return Answer::Broken(format!("asked in {format:?}, answered as {content_type:?}"));
    }
    // The shape is checked on the wire: a JSON error is exactly
    // {"error": {"code", "message"}}; MessagePack must decode to the same.
    let value: Value = match format {
        Format::Json => match serde_json::from_slice(&message.payload) {
            Ok(value) => value,
            Err(err) => return Answer::Broken(format!("reply is not JSON: {err}")),
        },
        Format::MsgPack => match codec::decode::<Value>(format, &message.payload) {
            Ok(value) => value,
            Err(err) => return Answer::Broken(format!("reply is not MessagePack: {err}")),
        },
    };
    match header {
        None => Answer::Result(value),
        Some(header) => {
            let Ok(body) = serde_json::from_value::<ErrorBody>(value.clone()) else {
                return Answer::Broken(format!("error reply of the wrong shape: {value}"));
            };
            let keys: Vec<&String> = value.as_object().map(|o| o.keys().collect()).unwrap();
            if keys != ["error"] || body.error.message.trim().is_empty() {
                return Answer::Broken(format!("error reply of the wrong shape: {value}"));
            }
            if body.error.code.as_str() != header {
                return Answer::Broken(format!("header {header} but body {value}"));
            }
            Answer::Error(header)
        }
    }
}

fn excerpt(text: &str) -> String {
    let mut short: String = text.chars().take(90).collect();
    if text.chars().count() > 90 {
        short.push('…');
    }
    short
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nats_edge_refuses_bad_input_and_stays_up() {
    let root = tempfile::tempdir().unwrap();
    // A file that exists inside the root (for the subtitles case) and a
    // link that leaves it.
    std::fs::write(root.path().join("clip.mp4"), b"not really a video").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.path().join("passwd-link.mp4")).unwrap();
    let root_path = root.path().canonicalize().unwrap();
    let mut stack = EmbeddedStack::start(&root_path);
    let client = stack.nats_client().await;

    let cases = cases(&root_path);
    println!("{:<26} {:<42} {:<18} ms", "subject", "input", "answer");
    let mut failures = vec![];
    for case in &cases {
        let started = Instant::now();
        let answer = ask(&client, case).await;
        let took = started.elapsed();
        let input = if case.msgpack && !case.input.contains("MessagePack") {
            format!("{} (MessagePack)", case.input)
        } else {
            case.input.clone()
        };
        println!(
            "{:<26} {:<42} {:<18} {}",
            case.subject,
            input,
            answer.code(),
            took.as_millis()
        );
        let fine = match (&answer, case.expect) {
            (Answer::Error(code), Expect::Error(expected)) => code == expected,
            (Answer::Result(report), Expect::HealthReport) => report["shards_total"].is_u64(),
            _ => false,
        };
        if !fine {
            let detail = match &answer {
                Answer::Broken(why) => why.clone(),
                Answer::Result(value) => excerpt(&value.to_string()),
                Answer::Error(code) => code.clone(),
            };
            failures.push(format!(
                "{} / {input}: expected {:?}, got {detail}",
                case.subject, case.expect
            ));
        }
    }

    // Every process is still up and serving: a normal search over NATS and
    // over HTTP, and the health check.
    assert!(
        stack.wait_exit(Duration::ZERO).is_none(),
        "vidseek up exited:\n{}",
        stack.log()
    );
    let search = Case {
        subject: subjects::SEARCH_TEXT.into(),
        input: "a normal query".into(),
        body: br#"{"text":"a cat on a sofa","k":3}"#.to_vec(),
        msgpack: false,
        expect: Expect::HealthReport,
    };
    match ask(&client, &search).await {
        Answer::Result(value) => assert!(value["results"].is_array(), "{value}"),
        other => panic!(
            "a normal search after the table: {other:?}\n{}",
            stack.log()
        ),
    }
    let http = reqwest::Client::new();
    let healthz = http.get(stack.url("/healthz")).send().await.unwrap();
    assert!(
        healthz.status().is_success(),
        "/healthz: {}",
        healthz.status()
    );
    let search = http
        .get(stack.url("/api/v1/search"))
        .query(&[("text", "a cat on a sofa")])
        .send()
        .await
        .unwrap();
    assert!(
        search.status().is_success(),
        "HTTP search: {}",
        search.status()
    );

    assert!(
        failures.is_empty(),
        "{} of {} cases were not answered as they should be:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
