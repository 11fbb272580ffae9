//! Encodes through the encoder role's own entry points (`Encoder::encode_text`
//! and `encode_images`: tokenising, JPEG decoding, the model call, the
//! ConSE bridge) for a fixed time and prints one JSON line of throughput.
//! `bench/encoder/run.sh` runs it beside Python onnxruntime on the same model
//! files.
//!
//! Usage: encode_bench --pack DIR --ort LIB --kind text|image --batch N
//!        [--threads T] [--seconds S] [--image JPEG]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vidseek_encoder::{Encoder, EncoderConfig};
use vidseek_protocol::encode::{EncodeImageRequest, EncodeTextRequest};

struct Args {
    pack: PathBuf,
    ort: PathBuf,
    kind: String,
    batch: usize,
    threads: usize,
    seconds: f64,
    image: Option<PathBuf>,
}

fn parse() -> Args {
    let mut args = Args {
        pack: PathBuf::new(),
        ort: PathBuf::new(),
        kind: "text".into(),
        batch: 1,
        threads: 1,
        seconds: 3.0,
        image: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--pack" => args.pack = value.into(),
            "--ort" => args.ort = value.into(),
            "--kind" => args.kind = value,
            "--batch" => args.batch = value.parse().expect("--batch N"),
            "--threads" => args.threads = value.parse().expect("--threads N"),
            "--seconds" => args.seconds = value.parse().expect("--seconds S"),
            "--image" => args.image = Some(value.into()),
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// Query-like texts of varied length, so a batch pads like real traffic.
fn texts(batch: usize, round: usize) -> Vec<String> {
    const WORDS: [&str; 12] = [
        "a", "person", "riding", "bicycle", "down", "the", "street", "at", "night", "with", "red",
        "lights",
    ];
    (0..batch)
        .map(|i| {
            let n = 3 + (i + round) % 9;
            WORDS
                .iter()
                .cycle()
                .skip(i % 5)
                .take(n)
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = parse();
    let encoder = Encoder::load(&EncoderConfig {
        pack_dir: args.pack.clone(),
        ort_library: args.ort.clone(),
        threads: args.threads,
        max_batch: args.batch.max(1),
        // One caller at a time: a window would only add its wait.
        batch_window: Duration::ZERO,
        queue_depth: 4,
    })
    .expect("load the pack");
    let jpeg = args
        .image
        .as_ref()
        .map(|path| std::fs::read(path).expect("read --image"));
    let call = |round: usize| {
        let encoder = encoder.clone();
        let (kind, batch, jpeg) = (args.kind.clone(), args.batch, jpeg.clone());
        async move {
            if kind == "text" {
                let request = EncodeTextRequest {
                    texts: texts(batch, round),
                };
                encoder.encode_text(request).await.expect("encode text");
            } else {
                let jpeg = jpeg.expect("--image for --kind image");
                let request = EncodeImageRequest {
                    images: vec![serde_bytes::ByteBuf::from(jpeg); batch],
                };
                encoder.encode_images(request).await.expect("encode image");
            }
        }
    };
    // The first calls allocate ONNX Runtime's buffers; they are not timed.
    for round in 0..2 {
        call(round).await;
    }
    let budget = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut calls = 0usize;
    while started.elapsed() < budget {
        call(calls).await;
        calls += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let items = calls * args.batch;
    println!(
        "{}",
        serde_json::json!({
            "impl": "vidseek",
            "kind": args.kind,
            "batch": args.batch,
            "threads": args.threads,
            "calls": calls,
            "items": items,
            "seconds": seconds,
            "items_per_s": items as f64 / seconds,
        })
    );
}
