//! Test media made with ffmpeg on the spot: videos with known scene cuts
//! and the broken inputs users send by mistake.

use std::path::Path;
use std::process::Command;

/// Lavfi sources that look nothing alike, so each scene boundary is a cut
/// the shot detector sees.
const SCENES: &[&str] = &[
    "testsrc2",
    "mandelbrot",
    "smptebars",
    "color=c=0x2060c0",
    "rgbtestsrc",
    "color=c=0xe0c020",
    "cellauto",
    "color=c=0x20a040",
];

pub(crate) fn run_ffmpeg(args: &[String], what: &str) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg for {what} (is it installed?): {e}"));
    assert!(
        output.status.success(),
        "ffmpeg failed to make {what}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes an H.264 video of `scenes` scenes of `scene_secs` seconds each, at
/// `size` (e.g. "160x120") and 10 fps: small, but with real cuts.
pub fn scene_video(path: &Path, scenes: usize, scene_secs: u32, size: &str) {
    let mut args = vec![];
    for i in 0..scenes {
        let source = SCENES[i % SCENES.len()];
        let sep = if source.contains('=') { ':' } else { '=' };
        args.extend([
            "-f".to_string(),
            "lavfi".to_string(),
            // `-t` rather than a duration option: mandelbrot and cellauto
            // have none.
            "-t".to_string(),
            scene_secs.to_string(),
            "-i".to_string(),
            format!("{source}{sep}size={size}:rate=10"),
        ]);
    }
    // Same pixel format everywhere, or concat refuses mixed inputs.
    let mut filter = String::new();
    for i in 0..scenes {
        filter.push_str(&format!("[{i}:v]format=yuv420p,setsar=1[s{i}];"));
    }
    for i in 0..scenes {
        filter.push_str(&format!("[s{i}]"));
    }
    filter.push_str(&format!("concat=n={scenes}:v=1:a=0[out]"));
    args.extend([
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[out]".into(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        "ultrafast".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        path.display().to_string(),
    ]);
    run_ffmpeg(&args, &path.display().to_string());
}

/// Writes an audio-only MP4 (a sine tone): a valid file with no video.
pub fn audio_only(path: &Path, secs: u32) {
    run_ffmpeg(
        &[
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency=440:duration={secs}"),
            "-c:a".into(),
            "aac".into(),
            path.display().to_string(),
        ],
        &path.display().to_string(),
    );
}
