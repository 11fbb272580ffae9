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

/// `-t secs -i SOURCE` for a lavfi `source` at `size` and 10 fps (`-t`
/// rather than a duration option: mandelbrot and cellauto have none).
fn lavfi_input(source: &str, size: &str, secs: u32) -> [String; 6] {
    let sep = if source.contains('=') { ':' } else { '=' };
    [
        "-f".into(),
        "lavfi".into(),
        "-t".into(),
        secs.to_string(),
        "-i".into(),
        format!("{source}{sep}size={size}:rate=10"),
    ]
}

/// The video encoding every test video gets: small and fast H.264.
const TEST_H264: [&str; 6] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
];

/// The `drawtext` filter for `text_file` as a caption is placed on a frame
/// `height` pixels tall: a twelfth of it high, centred, a fourteenth above
/// the bottom; `style` adds colours and outline.
pub(crate) fn caption_drawtext(text_file: &Path, height: u32, style: &str) -> String {
    format!(
        "drawtext=fontfile={CJK_FONT}:textfile={}:fontsize={}:x=(w-tw)/2:y=h-th-{}:{style}",
        text_file.display(),
        height / 12,
        height / 14,
    )
}

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
        args.extend(lavfi_input(SCENES[i % SCENES.len()], size, scene_secs));
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
    ]);
    args.extend(TEST_H264.map(String::from));
    args.push(path.display().to_string());
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

/// The CJK font `deploy/setup.sh --for test` installs (fonts-wqy-zenhei).
pub const CJK_FONT: &str = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc";

/// A caption burned into the picture from `start` to `end` seconds.
pub struct BurnedCaption<'a> {
    pub start: f64,
    pub end: f64,
    pub text: &'a str,
}

/// Writes an H.264 video of `secs` seconds at `size` and 10 fps over the
/// lavfi `background`, with `captions` drawn centred in the lower band,
/// white with a black outline, as online video burns them in.
pub fn captioned_video(
    path: &Path,
    background: &str,
    size: &str,
    secs: u32,
    captions: &[BurnedCaption],
) {
    assert!(
        Path::new(CJK_FONT).is_file(),
        "{CJK_FONT} is missing: run deploy/setup.sh --for test (apt-get install fonts-wqy-zenhei)"
    );
    let height: u32 = size
        .split_once('x')
        .and_then(|(_, h)| h.parse().ok())
        .expect("size is WxH");
    let mut filters = vec!["format=yuv420p".to_string()];
    for (i, caption) in captions.iter().enumerate() {
        // A text file spares drawtext's escaping of `:` and quotes.
        let text_file = path.with_extension(format!("caption{i}.txt"));
        std::fs::write(&text_file, caption.text).unwrap();
        filters.push(caption_drawtext(
            &text_file,
            height,
            &format!(
                "fontcolor=white:borderw=2:bordercolor=black:enable='between(t,{},{})'",
                caption.start, caption.end
            ),
        ));
    }
    run_filtered_video(path, background, size, secs, &filters.join(","));
    for i in 0..captions.len() {
        let _ = std::fs::remove_file(path.with_extension(format!("caption{i}.txt")));
    }
}

/// Writes an H.264 video of `secs` seconds at `size` and 10 fps: the lavfi
/// `background` through the `-vf` chain `filter`.
pub fn run_filtered_video(path: &Path, background: &str, size: &str, secs: u32, filter: &str) {
    let mut args = lavfi_input(background, size, secs).to_vec();
    args.extend(["-vf".into(), format!("{filter},format=yuv420p")]);
    args.extend(TEST_H264.map(String::from));
    args.push(path.display().to_string());
    run_ffmpeg(&args, &path.display().to_string());
}

/// Writes a 160x120 video of `secs` seconds with a soft subtitle track made
/// from the SubRip text `srt`, tagged `language`: `mov_text` in an `.mp4`,
/// SubRip in an `.mkv` (by `path`'s extension). No subtitle file is left
/// beside the video, so only the embedded track can supply its text.
pub fn video_with_subtitle_track(path: &Path, secs: u32, srt: &str, language: &str) {
    let codec = match path.extension().and_then(|e| e.to_str()) {
        Some("mp4") => "mov_text",
        Some("mkv") => "srt",
        other => panic!("no subtitle codec for {other:?}"),
    };
    let source = path.with_extension("subtitle-source");
    std::fs::write(&source, srt).unwrap();
    let input = [
        "-f".into(),
        "srt".into(),
        "-i".into(),
        source.display().to_string(),
    ];
    video_with_subtitle_input(path, secs, "160x120", &input, codec, language);
    std::fs::remove_file(&source).unwrap();
}

/// Writes a testsrc2 video of `secs` seconds at `size` muxed with the
/// subtitle stream that the ffmpeg `input` arguments open, as `codec`,
/// tagged `language`.
pub(crate) fn video_with_subtitle_input(
    path: &Path,
    secs: u32,
    size: &str,
    input: &[String],
    codec: &str,
    language: &str,
) {
    let mut args = lavfi_input("testsrc2", size, secs).to_vec();
    args.extend_from_slice(input);
    args.extend(["-map", "0:v", "-map", "1:s"].map(String::from));
    args.extend(TEST_H264.map(String::from));
    args.extend([
        "-c:s".into(),
        codec.into(),
        "-metadata:s:s:0".into(),
        format!("language={language}"),
        path.display().to_string(),
    ]);
    run_ffmpeg(&args, &path.display().to_string());
}
