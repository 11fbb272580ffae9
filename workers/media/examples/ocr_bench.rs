//! Burned-in caption OCR on its own, for bench/ocr: reads each video's
//! captions with the settings ingest uses and prints, per video, the cues
//! and the wall time as one JSON line.
//!
//! Usage: ocr_bench [--threads N] [--fps F] [--languages L] VIDEO...

use std::path::PathBuf;
use std::time::Instant;

use vidseek_media::{self as media, OcrOptions};

fn main() -> anyhow::Result<()> {
    let mut options = OcrOptions::default();
    let mut videos: Vec<PathBuf> = vec![];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--threads" => options.threads = value()?.parse()?,
            "--fps" => options.fps = value()?.parse()?,
            "--languages" => options.languages = value()?,
            _ => videos.push(arg.into()),
        }
    }
    anyhow::ensure!(
        !videos.is_empty(),
        "usage: ocr_bench [--threads N] [--fps F] VIDEO..."
    );
    for video in videos {
        let probe = media::probe(&video)?;
        let started = Instant::now();
        let cues = media::read_burned_in_captions(&video, &probe, &options, &mut |_| {})?;
        let wall_s = started.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "video": video,
                "duration_s": probe.duration,
                "width": probe.width,
                "height": probe.height,
                "wall_s": wall_s,
                "threads": options.threads,
                "fps": options.fps,
                "cues": cues,
            })
        );
    }
    Ok(())
}
