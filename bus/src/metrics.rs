//! The worker roles' Prometheus metrics, kept per process.
//!
//! Most are counted where every role passes anyway: the serving loop
//! ([`crate::service`]) times and counts each request by subject, the
//! request helpers ([`crate::rpc`]) each call a role makes to another, and
//! the segment log's appends. The roles add what only they know (encoder
//! batch sizes, ingest throughput and queue depth). [`render`] writes the
//! Prometheus text format; the gateway appends it to its `/metrics` (so
//! `vidseek up`, all roles in one process, shows everything in one scrape)
//! and a worker process serves it on `VIDSEEK_METRICS_ADDR`.
//!
//! Hand-written like the gateway's: a few families do not justify a
//! metrics framework. Label values are bounded: subjects (one per endpoint
//! and shard), error codes, encoder models.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use vidseek_protocol::ErrorBody;

/// Latency buckets, in seconds: from an in-memory rank (sub-millisecond) to
/// a long image batch or a search's default timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Items per encoder forward pass, up to the largest batch a role allows.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram(&'static [f64]),
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: Kind,
}

pub const REQUESTS: &str = "vidseek_nats_requests_total";
pub const REQUEST_DURATION: &str = "vidseek_nats_request_duration_seconds";
pub const CALLS: &str = "vidseek_nats_calls_total";
pub const CALL_DURATION: &str = "vidseek_nats_call_duration_seconds";
pub const IN_FLIGHT: &str = "vidseek_nats_requests_in_flight";
pub const ENCODER_BATCH_SIZE: &str = "vidseek_encoder_batch_size";
pub const ENCODER_BATCH_DURATION: &str = "vidseek_encoder_batch_duration_seconds";
pub const RANKER_SEGMENTS: &str = "vidseek_ranker_segments";
pub const RANKER_READY: &str = "vidseek_ranker_ready";
pub const INGEST_VIDEOS: &str = "vidseek_ingest_videos_total";
pub const INGEST_SEGMENTS: &str = "vidseek_ingest_segments_total";
pub const INGEST_VIDEO_SECONDS: &str = "vidseek_ingest_video_seconds_total";
pub const INGEST_QUEUE: &str = "vidseek_ingest_queue_jobs";

/// Every family, in the order they are rendered.
const FAMILIES: &[Family] = &[
    Family {
        name: REQUESTS,
        help: "NATS requests this process answered, by subject and outcome (ok or an error code).",
        kind: Kind::Counter,
    },
    Family {
        name: REQUEST_DURATION,
        help: "Time from taking a NATS request to answering it, by subject.",
        kind: Kind::Histogram(LATENCY_BUCKETS),
    },
    Family {
        name: IN_FLIGHT,
        help: "NATS requests this process is answering now.",
        kind: Kind::Gauge,
    },
    Family {
        name: CALLS,
        help: "Requests this process sent to other roles, by subject and outcome.",
        kind: Kind::Counter,
    },
    Family {
        name: CALL_DURATION,
        help: "Time from sending a request to another role to its answer, by subject.",
        kind: Kind::Histogram(LATENCY_BUCKETS),
    },
    Family {
        name: ENCODER_BATCH_SIZE,
        help: "Texts or images per encoder forward pass, by model.",
        kind: Kind::Histogram(BATCH_BUCKETS),
    },
    Family {
        name: ENCODER_BATCH_DURATION,
        help: "Time of one encoder forward pass, by model.",
        kind: Kind::Histogram(LATENCY_BUCKETS),
    },
    Family {
        name: RANKER_SEGMENTS,
        help: "Segments a ranker shard holds, by shard (set by the ranker as it applies its log).",
        kind: Kind::Gauge,
    },
    Family {
        name: RANKER_READY,
        help: "1 once a ranker shard has replayed its log and serves, 0 while it is still loading, by shard.",
        kind: Kind::Gauge,
    },
    Family {
        name: INGEST_VIDEOS,
        help: "Ingest jobs finished, by outcome (done or failed).",
        kind: Kind::Counter,
    },
    Family {
        name: INGEST_SEGMENTS,
        help: "Segments written to the segment log by ingest.",
        kind: Kind::Counter,
    },
    Family {
        name: INGEST_VIDEO_SECONDS,
        help: "Seconds of video ingested.",
        kind: Kind::Counter,
    },
    Family {
        name: INGEST_QUEUE,
        help: "Ingest jobs in the queue, by state (waiting, or in_progress on a worker).",
        kind: Kind::Gauge,
    },
];

#[derive(Default)]
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

enum Value {
    Number(f64),
    Histogram(Histogram),
}

/// Family name → rendered label set → value.
type Samples = BTreeMap<&'static str, BTreeMap<String, Value>>;

static SAMPLES: LazyLock<Mutex<Samples>> = LazyLock::new(Default::default);

fn samples() -> std::sync::MutexGuard<'static, Samples> {
    // A poisoned lock only means a panic mid-update; the numbers still serve.
    SAMPLES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn family(name: &str) -> &'static Family {
    FAMILIES
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("metric {name} is not declared"))
}

fn label_set(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(key, value)| format!("{key}=\"{}\"", escape_label(value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A label value in the text format's escaping.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Adds `by` to counter `name`.
pub fn add(name: &'static str, labels: &[(&str, &str)], by: f64) {
    let family = family(name);
    debug_assert!(family.kind == Kind::Counter);
    let mut samples = samples();
    let value = samples
        .entry(family.name)
        .or_default()
        .entry(label_set(labels))
        .or_insert(Value::Number(0.0));
    if let Value::Number(total) = value {
        *total += by;
    }
}

/// Sets gauge `name`.
pub fn set(name: &'static str, labels: &[(&str, &str)], to: f64) {
    let family = family(name);
    debug_assert!(family.kind == Kind::Gauge);
    samples()
        .entry(family.name)
        .or_default()
        .insert(label_set(labels), Value::Number(to));
}

/// Records one observation of histogram `name`.
pub fn observe(name: &'static str, labels: &[(&str, &str)], value: f64) {
    let family = family(name);
    let Kind::Histogram(bounds) = family.kind else {
        panic!("metric {name} is not a histogram");
    };
    let mut samples = samples();
    let entry = samples
        .entry(family.name)
        .or_default()
        .entry(label_set(labels))
        .or_insert_with(|| {
            Value::Histogram(Histogram {
                buckets: vec![0; bounds.len()],
                ..Default::default()
            })
        });
    if let Value::Histogram(histogram) = entry {
        for (bucket, bound) in histogram.buckets.iter_mut().zip(bounds) {
            if value <= *bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += value;
    }
}

/// The outcome label of a reply: `ok` or its error code.
pub fn outcome<T>(result: &Result<T, ErrorBody>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(body) => body.error.code.as_str(),
    }
}

/// Counts and times one request this process answered on `subject`.
pub fn request_answered(subject: &str, outcome: &str, took: Duration) {
    add(REQUESTS, &[("subject", subject), ("outcome", outcome)], 1.0);
    observe(
        REQUEST_DURATION,
        &[("subject", subject)],
        took.as_secs_f64(),
    );
}

/// Counts and times one request this process sent to `subject`.
pub fn call_answered(subject: &str, outcome: &str, took: Duration) {
    add(CALLS, &[("subject", subject), ("outcome", outcome)], 1.0);
    observe(CALL_DURATION, &[("subject", subject)], took.as_secs_f64());
}

/// Every metric of this process in the Prometheus text format; a family
/// with no samples yet shows only its help and type.
pub fn render() -> String {
    set(IN_FLIGHT, &[], crate::service::in_flight() as f64);
    let samples = samples();
    let mut out = String::new();
    for family in FAMILIES {
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {kind}", family.name);
        let Some(series) = samples.get(family.name) else {
            continue;
        };
        for (labels, value) in series {
            match (value, family.kind) {
                (Value::Number(number), _) => {
                    let _ = writeln!(out, "{}{} {number}", family.name, braced(labels));
                }
                (Value::Histogram(histogram), Kind::Histogram(bounds)) => {
                    let with = |extra: &str| match labels.is_empty() {
                        true => format!("{{{extra}}}"),
                        false => format!("{{{labels},{extra}}}"),
                    };
                    for (count, bound) in histogram.buckets.iter().zip(bounds.iter()) {
                        let le = with(&format!("le=\"{bound}\""));
                        let _ = writeln!(out, "{}_bucket{le} {count}", family.name);
                    }
                    let inf = with("le=\"+Inf\"");
                    let _ = writeln!(out, "{}_bucket{inf} {}", family.name, histogram.count);
                    let braced = braced(labels);
                    let _ = writeln!(out, "{}_sum{braced} {}", family.name, histogram.sum);
                    let _ = writeln!(out, "{}_count{braced} {}", family.name, histogram.count);
                }
                (Value::Histogram(_), _) => {}
            }
        }
    }
    out
}

fn braced(labels: &str) -> String {
    match labels.is_empty() {
        true => String::new(),
        false => format!("{{{labels}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_in_the_text_format() {
        request_answered("vidseek.v1.test.a", "ok", Duration::from_millis(3));
        request_answered("vidseek.v1.test.a", "timeout", Duration::from_millis(40));
        set(INGEST_QUEUE, &[("state", "waiting")], 4.0);
        let text = render();
        assert!(text.contains("# TYPE vidseek_nats_requests_total counter"));
        assert!(text.contains(
            "vidseek_nats_requests_total{subject=\"vidseek.v1.test.a\",outcome=\"ok\"} 1"
        ));
        assert!(text.contains(
            "vidseek_nats_request_duration_seconds_bucket{subject=\"vidseek.v1.test.a\",le=\"0.0025\"} 0"
        ));
        assert!(text.contains(
            "vidseek_nats_request_duration_seconds_bucket{subject=\"vidseek.v1.test.a\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "vidseek_nats_request_duration_seconds_bucket{subject=\"vidseek.v1.test.a\",le=\"+Inf\"} 2"
        ));
        assert!(text.contains(
            "vidseek_nats_request_duration_seconds_count{subject=\"vidseek.v1.test.a\"} 2"
        ));
        assert!(text.contains("vidseek_ingest_queue_jobs{state=\"waiting\"} 4"));
        assert!(text.contains("vidseek_nats_requests_in_flight 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
