//! Media-side ingest throughput: seconds of video handled per wall-clock
//! second by probe + shot detection + frame sampling + thumbnails
//! ([`media::analyze`], one decode), next to a plain `ffmpeg -i FILE -f null -`
//! decode of the same file timed in the same run as the yardstick; the same
//! with the caption band read by OCR from that decode (ingest's default),
//! where tesseract is installed. Also times shot detection alone and frame
//! sampling alone with each strategy: what separate passes would cost, and
//! how the `Auto` choice was calibrated.
//!
//! Usage: `ingest_bench [FILE] [--out PATH] [--repeat N]`; `bench/ingest/run.sh`
//! is the usual entry point. Results go to `bench/results/ingest.json`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use vidseek_media::{self as media, AnalyzeOptions, SampleOptions, SamplingStrategy};

fn main() -> anyhow::Result<()> {
    // This crate lives at workers/media/.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .context("the workspace root is two levels up")?
        .to_owned();
    let mut file = None;
    let mut out = root.join("bench/results/ingest.json");
    let mut repeat = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(args.next().context("--out needs a path")?),
            "--repeat" => repeat = args.next().context("--repeat needs a number")?.parse()?,
            "-h" | "--help" => {
                println!("usage: ingest_bench [FILE] [--out PATH] [--repeat N]");
                return Ok(());
            }
            other if file.is_none() => file = Some(PathBuf::from(other)),
            other => bail!("unexpected argument {other}"),
        }
    }
    let file = file.unwrap_or_else(|| root.join(".vidseek/samples/bikes.mp4"));
    if !file.is_file() {
        bail!(
            "{} not found: run deploy/setup.sh for the sample videos or pass a FILE",
            file.display()
        );
    }
    let repeat = repeat.max(1);

    let probe = media::probe(&file)?;
    let duration = probe.duration;

    // Best of N for every measurement, interleaved so that a busy machine
    // slows the yardstick and the candidate alike.
    let mut yardstick = f64::INFINITY;
    let mut pipeline = f64::INFINITY;
    let mut with_captions = f64::INFINITY;
    let ocr = media::OcrOptions::default();
    let tesseract = media::tesseract_available(&ocr.languages);
    let mut best = None;
    let mut shots_only = f64::INFINITY;
    let mut sampling: Vec<(SamplingStrategy, f64)> = vec![
        (SamplingStrategy::SinglePass, f64::INFINITY),
        (SamplingStrategy::Seek, f64::INFINITY),
    ];
    for _ in 0..repeat {
        yardstick = yardstick.min(time_plain_decode(&file)?);

        let thumbs = tempfile::tempdir()?;
        let options = AnalyzeOptions {
            thumbnail_dir: Some(thumbs.path().to_owned()),
            ..AnalyzeOptions::default()
        };
        let clock = Instant::now();
        let analysis = media::analyze(&file, &options, None, &mut |_| {}, &mut |_| {
            ControlFlow::Continue(())
        })?;
        let wall = clock.elapsed().as_secs_f64();
        if wall < pipeline {
            pipeline = wall;
            best = Some(analysis);
        }

        if tesseract {
            let (tap, band) = media::caption_band(&ocr);
            let clock = Instant::now();
            let reader = std::thread::spawn({
                let ocr = ocr.clone();
                move || media::read_captions(band, &ocr, &mut |_| {})
            });
            media::analyze(&file, &options, Some(tap), &mut |_| {}, &mut |_| {
                ControlFlow::Continue(())
            })?;
            let cues = reader.join().expect("the caption reader does not panic")?;
            with_captions = with_captions.min(clock.elapsed().as_secs_f64());
            std::hint::black_box(cues);
        }

        let clock = Instant::now();
        std::hint::black_box(media::detect_cuts(
            &file,
            &probe,
            &media::ShotParams::default(),
            &mut |_| {},
        )?);
        shots_only = shots_only.min(clock.elapsed().as_secs_f64());

        let segments = &best.as_ref().expect("set above").segments;
        for (strategy, seconds) in &mut sampling {
            let options = SampleOptions {
                strategy: *strategy,
                ..SampleOptions::default()
            };
            let clock = Instant::now();
            let sampled = media::sample_frames(&file, &probe, segments, &options)?
                .collect::<Result<Vec<_>, _>>()?;
            std::hint::black_box(sampled);
            *seconds = seconds.min(clock.elapsed().as_secs_f64());
        }
    }
    let analysis = best.expect("repeat >= 1");

    let report = json!({
        "benchmark": "ingest-media",
        "file": file.display().to_string(),
        "video": {
            "duration_s": duration,
            "fps": probe.fps,
            "width": probe.width,
            "height": probe.height,
            "codec": probe.codec,
            "frames": probe.frame_count,
        },
        "host": {
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        "repeat": repeat,
        "yardstick_ffmpeg_null_decode": {
            "command": format!("ffmpeg -i {} -f null -", file.display()),
            "wall_s": yardstick,
            "video_s_per_wall_s": duration / yardstick,
        },
        "media_pipeline": {
            "wall_s": pipeline,
            "video_s_per_wall_s": duration / pipeline,
            "relative_to_yardstick": yardstick / pipeline,
            "stages_s": analysis.timings,
            "cuts": analysis.cuts.len(),
            "segments": analysis.segments.len(),
            "sampling_strategy": analysis.sampling,
        },
        "media_pipeline_with_caption_ocr": tesseract.then(|| json!({
            "wall_s": with_captions,
            "video_s_per_wall_s": duration / with_captions,
            "relative_to_yardstick": yardstick / with_captions,
            "ocr_share": 1.0 - pipeline / with_captions,
        })),
        "shot_detection_only_s": shots_only,
        "frame_sampling_only_s": sampling
            .iter()
            .map(|(s, t)| (serde_json::to_value(s).expect("enum").as_str().unwrap_or("?").to_string(), json!(t)))
            .collect::<serde_json::Map<_, _>>(),
    });
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, format!("{text}\n"))?;
    println!("{text}");
    eprintln!("written to {}", out.display());
    Ok(())
}

/// Wall-clock seconds of `ffmpeg -i FILE -f null -`: decoding with nothing
/// done to the frames, the floor any ingest pipeline sits on.
fn time_plain_decode(file: &Path) -> anyhow::Result<f64> {
    let clock = Instant::now();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg could not decode {}", file.display());
    }
    Ok(clock.elapsed().as_secs_f64())
}
