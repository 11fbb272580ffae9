//! Bitmap subtitle tracks for tests: Blu-ray PGS (in MKV) and DVB (in
//! MPEG-TS), the two picture-based formats users' files carry. ffmpeg can
//! decode both and turn one bitmap format into another, but it has no way
//! to make the first bitmap from text, so each line is drawn with ffmpeg's
//! `drawtext`, thresholded, and written here as a PGS stream (`.sup`); DVB
//! is ffmpeg's transcoding of that.

use std::path::Path;
use std::process::Command;

use super::media::{caption_drawtext, video_with_subtitle_input};

/// One subtitle line shown from `start` to `end` seconds.
pub struct BitmapLine<'a> {
    pub start: f64,
    pub end: f64,
    pub text: &'a str,
}

/// A Chinese and an English line, one after the other in the first 4 s:
/// the track the tests read back.
pub const TWO_LINES: [BitmapLine<'static>; 2] = [
    BitmapLine {
        start: 0.5,
        end: 2.0,
        text: "晚上我们去公园骑自行车",
    },
    BitmapLine {
        start: 2.5,
        end: 4.0,
        text: "The lighthouse keeper waved goodbye",
    },
];

/// Writes a 640x360 video of `secs` seconds with one bitmap subtitle track
/// of `lines`, tagged `language`: PGS in a `.mkv`, DVB in a `.ts`.
pub fn video_with_bitmap_subtitles(path: &Path, secs: u32, lines: &[BitmapLine], language: &str) {
    let (width, height) = (640u16, 360u16);
    let sup = path.with_extension("sup");
    // An empty screen at 0 s: ffmpeg starts a stream at its first time.
    let mut stream = clear(0.0, 0, width, height);
    for (n, line) in (1u16..).step_by(2).zip(lines) {
        let picture = render_line(path, line.text, width, height);
        stream.extend(show(line.start, n, width, height, &picture));
        stream.extend(clear(line.end, n + 1, width, height));
    }
    std::fs::write(&sup, stream).unwrap();
    let codec = match path.extension().and_then(|e| e.to_str()) {
        Some("mkv") => "copy",
        Some("ts") => "dvbsub",
        other => panic!("no bitmap subtitle codec for {other:?}"),
    };
    let input = [
        // Each picture lasts until the next display set (the empty one
        // that clears it), which the DVB encoder needs to know.
        "-fix_sub_duration".into(),
        "-i".into(),
        sup.display().to_string(),
    ];
    let size = format!("{width}x{height}");
    video_with_subtitle_input(path, secs, &size, &input, codec, language);
    std::fs::remove_file(&sup).unwrap();
}

/// A line's picture: where it sits on the frame and its rows of palette
/// indices (1 for text, 0 for transparent).
struct Picture {
    x: u16,
    y: u16,
    width: u16,
    height: u16,
    pixels: Vec<u8>,
}

/// Draws `text` white on black, centred low on a `width` x `height` frame,
/// and cuts out the box around it.
fn render_line(near: &Path, text: &str, width: u16, height: u16) -> Picture {
    let text_file = near.with_extension("line.txt");
    std::fs::write(&text_file, text).unwrap();
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg(format!("color=c=black:size={width}x{height}"))
        .args(["-frames:v", "1", "-vf"])
        .arg(caption_drawtext(
            &text_file,
            height.into(),
            "fontcolor=white",
        ))
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::remove_file(&text_file).unwrap();
    let (w, h) = (usize::from(width), usize::from(height));
    assert_eq!(output.stdout.len(), w * h);
    let lit = |x: usize, y: usize| output.stdout[y * w + x] >= 128;
    let rows: Vec<usize> = (0..h).filter(|&y| (0..w).any(|x| lit(x, y))).collect();
    let columns: Vec<usize> = (0..w).filter(|&x| (0..h).any(|y| lit(x, y))).collect();
    let (x0, x1) = (columns[0], *columns.last().unwrap());
    let (y0, y1) = (rows[0], *rows.last().unwrap());
    let pixels = (y0..=y1)
        .flat_map(|y| (x0..=x1).map(move |x| (x, y)))
        .map(|(x, y)| u8::from(lit(x, y)))
        .collect();
    Picture {
        x: x0 as u16,
        y: y0 as u16,
        width: (x1 - x0 + 1) as u16,
        height: (y1 - y0 + 1) as u16,
        pixels,
    }
}

// PGS segment types.
const PALETTE: u8 = 0x14;
const OBJECT: u8 = 0x15;
const COMPOSITION: u8 = 0x16;
const WINDOW: u8 = 0x17;
const END: u8 = 0x80;

/// One PGS segment: magic, presentation time (90 kHz), decode time,
/// type, size, payload.
fn segment(at: f64, kind: u8, payload: &[u8]) -> Vec<u8> {
    let pts = (at * 90_000.0).round() as u32;
    let mut out = b"PG".to_vec();
    out.extend(pts.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.push(kind);
    out.extend((payload.len() as u16).to_be_bytes());
    out.extend(payload);
    out
}

/// The presentation composition: the frame's size, and the picture shown
/// (object 0 in window 0 at its place) or none.
fn composition(number: u16, width: u16, height: u16, shown: Option<&Picture>) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(width.to_be_bytes());
    p.extend(height.to_be_bytes());
    p.push(0x10); // frame rate code
    p.extend(number.to_be_bytes());
    p.push(if shown.is_some() { 0x80 } else { 0x00 }); // epoch start / normal
    p.push(0x00); // no palette-only update
    p.push(0); // palette 0
    match shown {
        Some(picture) => {
            p.push(1);
            p.extend(0u16.to_be_bytes()); // object 0
            p.push(0); // window 0
            p.push(0x00); // not cropped
            p.extend(picture.x.to_be_bytes());
            p.extend(picture.y.to_be_bytes());
        }
        None => p.push(0),
    }
    p
}

/// Window 0 over the picture's box.
fn window(picture: &Picture) -> Vec<u8> {
    let mut p = vec![1, 0];
    for v in [picture.x, picture.y, picture.width, picture.height] {
        p.extend(v.to_be_bytes());
    }
    p
}

/// The display set that shows `picture` at `at` seconds.
fn show(at: f64, number: u16, width: u16, height: u16, picture: &Picture) -> Vec<u8> {
    let mut out = segment(
        at,
        COMPOSITION,
        &composition(number, width, height, Some(picture)),
    );
    out.extend(segment(at, WINDOW, &window(picture)));
    // Palette 0: entry 1 opaque white (Y, Cr, Cb, alpha); 0 stays transparent.
    out.extend(segment(at, PALETTE, &[0, 0, 1, 235, 128, 128, 255]));
    let rle = run_lengths(picture);
    let mut object = vec![0, 0, 0, 0xC0]; // object 0, version 0, first and last
    let length = (rle.len() + 4) as u32;
    object.extend(&length.to_be_bytes()[1..]);
    object.extend(picture.width.to_be_bytes());
    object.extend(picture.height.to_be_bytes());
    object.extend(rle);
    out.extend(segment(at, OBJECT, &object));
    out.extend(segment(at, END, &[]));
    out
}

/// The display set that clears the screen at `at` seconds.
fn clear(at: f64, number: u16, width: u16, height: u16) -> Vec<u8> {
    let mut out = segment(at, COMPOSITION, &composition(number, width, height, None));
    out.extend(segment(at, WINDOW, &[0]));
    out.extend(segment(at, END, &[]));
    out
}

/// PGS run-length coding, row by row: a run of colour 0 is `00 00LLLLLL`
/// or `00 01LLLLLL LLLLLLLL`, a run of colour 1 is `01` per pixel (short
/// runs) or `00 10LLLLLL 01` / `00 11LLLLLL LLLLLLLL 01`, and `00 00` ends
/// a row.
fn run_lengths(picture: &Picture) -> Vec<u8> {
    let mut out = Vec::new();
    for row in picture.pixels.chunks(usize::from(picture.width)) {
        let mut x = 0;
        while x < row.len() {
            let colour = row[x];
            let run = row[x..].iter().take_while(|&&c| c == colour).count();
            let run = run.min(16_383);
            match (colour, run) {
                (0, 1..=63) => out.extend([0, run as u8]),
                (0, _) => out.extend([0, 0x40 | (run >> 8) as u8, run as u8]),
                (c, 1..=2) => out.extend(std::iter::repeat_n(c, run)),
                (c, 3..=63) => out.extend([0, 0x80 | run as u8, c]),
                (c, _) => out.extend([0, 0xC0 | (run >> 8) as u8, run as u8, c]),
            }
            x += run;
        }
        out.extend([0, 0]);
    }
    out
}
