//! SubRip (`.srt`) and WebVTT (`.vtt`) subtitles → timed text cues, which
//! ingest turns into text-searchable segments.
//!
//! Parsing is lenient where real files are sloppy (BOM, CRLF, `.` or `,`
//! before milliseconds, missing hours, cue numbers or settings, blank lines
//! inside a cue's text, Latin-1 or UTF-16 encodings) and strict where a file
//! is not subtitles at all: a malformed timing line or a file with no cue
//! timing is an error naming the line.

use std::path::{Path, PathBuf};

use super::error::{MediaError, Result};

/// One subtitle cue.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cue {
    /// Start time in seconds.
    pub start: f64,
    /// End time in seconds.
    pub end: f64,
    /// Text without markup; lines joined by `\n`.
    pub text: String,
}

/// The two subtitle formats vidseek reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SubtitleFormat {
    /// SubRip `.srt`.
    Srt,
    /// WebVTT `.vtt`.
    Vtt,
}

impl SubtitleFormat {
    /// The format a file name's extension says, if any.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "srt" => Some(Self::Srt),
            "vtt" | "webvtt" => Some(Self::Vtt),
            _ => None,
        }
    }
}

/// Reads and parses a subtitle file; the format comes from the extension,
/// else from the content (a `WEBVTT` header).
pub fn read_subtitles(path: &Path) -> Result<Vec<Cue>> {
    let bytes = std::fs::read(path).map_err(|source| MediaError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    parse_subtitles(&decode_text(&bytes)?, SubtitleFormat::from_path(path))
}

/// Parses subtitle text. With `format` `None` a leading `WEBVTT` selects
/// WebVTT, anything else is read as SubRip. Cues come back sorted by start.
pub fn parse_subtitles(text: &str, format: Option<SubtitleFormat>) -> Result<Vec<Cue>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let format = format.unwrap_or(if text.trim_start().starts_with("WEBVTT") {
        SubtitleFormat::Vtt
    } else {
        SubtitleFormat::Srt
    });

    let mut cues: Vec<Cue> = Vec::new();
    let mut blocks = blocks(&lines).peekable();
    if format == SubtitleFormat::Vtt {
        match blocks.peek() {
            Some((_, block)) if is_vtt_header(block[0]) => {
                blocks.next();
            }
            Some((line, _)) => {
                return Err(MediaError::Subtitle {
                    line: *line,
                    message: "a WebVTT file must start with `WEBVTT`".into(),
                });
            }
            None => return Ok(cues),
        }
    }
    for (first_line, block) in blocks {
        if format == SubtitleFormat::Vtt
            && ["NOTE", "STYLE", "REGION"]
                .iter()
                .any(|kw| block[0] == *kw || block[0].starts_with(&format!("{kw} ")))
        {
            continue;
        }
        // The timing line is the first line, or the second after a cue
        // number (SRT) / identifier (VTT).
        let timing = block.iter().take(2).position(|l| l.contains("-->"));
        let Some(timing) = timing else {
            // A blank line inside a cue's text splits it into two blocks;
            // the second belongs to the cue before.
            if let Some(prev) = cues.last_mut() {
                let more = clean_text(&block);
                if !more.is_empty() {
                    prev.text.push('\n');
                    prev.text.push_str(&more);
                }
                continue;
            }
            return Err(MediaError::Subtitle {
                line: first_line,
                message: format!(
                    "not a subtitle file: expected a cue timing like `00:00:01,000 --> 00:00:04,000`, found `{}`",
                    excerpt(block[0])
                ),
            });
        };
        let line = first_line + timing;
        let (start, end) = parse_timing(block[timing])
            .map_err(|message| MediaError::Subtitle { line, message })?;
        if end < start {
            tracing::warn!(
                line,
                start,
                end,
                "subtitle cue ends before it starts; skipped"
            );
            continue;
        }
        let text = clean_text(&block[timing + 1..]);
        if !text.is_empty() {
            cues.push(Cue { start, end, text });
        }
    }
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    Ok(cues)
}

/// Subtitle files beside a video: `NAME.srt`, `NAME.vtt` and tagged ones
/// such as `NAME.en.srt` or `NAME.pt-BR.forced.vtt`, untagged first, then
/// by name.
pub fn find_sidecar_subtitles(video: &Path) -> Vec<PathBuf> {
    let (Some(stem), Some(dir)) = (video.file_stem().and_then(|s| s.to_str()), video.parent())
    else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_name()?.to_str()?.to_string();
            SubtitleFormat::from_path(&path)?;
            let middle = name.strip_prefix(stem)?.strip_prefix('.')?;
            let (tags, _ext) = middle.rsplit_once('.').unwrap_or(("", middle));
            let tag_count = if tags.is_empty() {
                0
            } else {
                tags.split('.').count()
            };
            // Short language/flag tags only, so `clip.mp4` does not claim
            // `clip.director-commentary-part-two.srt` by accident... or
            // another video's subtitles.
            let plausible = tags.is_empty()
                || (tag_count <= 3
                    && tags.split('.').all(|t| {
                        (1..=16).contains(&t.len())
                            && t.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    }));
            plausible.then_some((tag_count, name, path))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, _, p)| p).collect()
}

/// Non-empty runs of lines with the 1-based number of their first line.
fn blocks<'a>(lines: &'a [&'a str]) -> impl Iterator<Item = (usize, Vec<&'a str>)> + 'a {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < lines.len() && lines[i].trim().is_empty() {
            i += 1;
        }
        if i >= lines.len() {
            return None;
        }
        let first = i;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        Some((
            first + 1,
            lines[first..i].iter().map(|l| l.trim_end()).collect(),
        ))
    })
}

fn is_vtt_header(line: &str) -> bool {
    line == "WEBVTT" || line.starts_with("WEBVTT ") || line.starts_with("WEBVTT\t")
}

/// `START --> END [settings]` → seconds.
fn parse_timing(line: &str) -> std::result::Result<(f64, f64), String> {
    let (left, right) = line.split_once("-->").expect("caller checked");
    let end_token = right.split_whitespace().next().unwrap_or("");
    let start = parse_timestamp(left.trim())?;
    let end = parse_timestamp(end_token)?;
    Ok((start, end))
}

/// `hh:mm:ss,mmm`, `hh:mm:ss.mmm`, `mm:ss.mmm` (hours may exceed 99).
fn parse_timestamp(s: &str) -> std::result::Result<f64, String> {
    let bad = || {
        format!(
            "bad timestamp `{}` (expected hh:mm:ss,mmm or mm:ss.mmm)",
            excerpt(s)
        )
    };
    let (clock, fraction) = match s.rsplit_once([',', '.']) {
        Some((c, f)) => (c, f),
        None => (s, "0"),
    };
    if fraction.is_empty() || fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let millis: f64 =
        fraction.parse::<f64>().map_err(|_| bad())? / 10f64.powi(fraction.len() as i32);
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |p: &str| -> std::result::Result<u64, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (h, m, sec) = match parts.as_slice() {
        [m, sec] => (0, number(m)?, number(sec)?),
        [h, m, sec] => (number(h)?, number(m)?, number(sec)?),
        _ => return Err(bad()),
    };
    if m >= 60 || sec >= 60 {
        return Err(bad());
    }
    // Checked: a file may claim more hours than seconds fit in a u64.
    let seconds = h
        .checked_mul(3600)
        .and_then(|s| s.checked_add(m * 60 + sec))
        .ok_or_else(bad)?;
    Ok(seconds as f64 + millis)
}

/// Joins a cue's lines without markup: `<i>`, `<c.yellow>`, `<00:01.000>`
/// karaoke stamps, `{\an8}` positioning, common entities.
fn clean_text(lines: &[&str]) -> String {
    let cleaned: Vec<String> = lines
        .iter()
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '<' => {
                        // Only swallow what looks like a tag, so "a < b" survives.
                        let rest: String = chars.clone().take_while(|&c| c != '>').collect();
                        let closes = chars.clone().nth(rest.chars().count()) == Some('>');
                        let tag_like = rest
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/');
                        if closes && tag_like && !rest.contains('<') {
                            for _ in 0..=rest.chars().count() {
                                chars.next();
                            }
                        } else {
                            out.push(c);
                        }
                    }
                    '{' if chars.peek() == Some(&'\\') => {
                        for c in chars.by_ref() {
                            if c == '}' {
                                break;
                            }
                        }
                    }
                    _ => out.push(c),
                }
            }
            decode_entities(&out)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
        .collect();
    cleaned.join("\n")
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lrm;", "")
        .replace("&rlm;", "")
        .replace("&amp;", "&")
}

/// UTF-8 (with or without BOM), UTF-16 with BOM, else Latin-1 (old SRTs).
fn decode_text(bytes: &[u8]) -> Result<String> {
    let utf16 = |be: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|p| {
                if be {
                    u16::from_be_bytes([p[0], p[1]])
                } else {
                    u16::from_le_bytes([p[0], p[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xFF, 0xFE, ..] => return Ok(utf16(false)),
        [0xFE, 0xFF, ..] => return Ok(utf16(true)),
        _ => {}
    }
    if bytes.contains(&0) {
        return Err(MediaError::Subtitle {
            line: 1,
            message: "not a subtitle file (binary data)".into(),
        });
    }
    Ok(match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    })
}

fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        e.push('…');
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn parses_srt_with_bom_crlf_tags_and_multiline() {
        let srt = "\u{feff}1\r\n00:00:01,000 --> 00:00:04,500\r\n<i>Hello</i> there,\r\n<b>world</b> &amp; co\r\n\r\n2\r\n00:01:02,250 --> 00:01:03,000 X1:10 X2:20\r\n{\\an8}Top text\r\n\r\n";
        let cues = parse_subtitles(srt, None).unwrap();
        assert_eq!(cues.len(), 2);
        assert!(approx(cues[0].start, 1.0) && approx(cues[0].end, 4.5));
        assert_eq!(cues[0].text, "Hello there,\nworld & co");
        assert!(approx(cues[1].start, 62.25) && approx(cues[1].end, 63.0));
        assert_eq!(cues[1].text, "Top text");
    }

    #[test]
    fn parses_vtt_with_short_times_settings_ids_and_notes() {
        let vtt = "WEBVTT - a title\n\nNOTE this is\na comment\n\nSTYLE\n::cue { color: red }\n\nintro\n00:05.000 --> 00:07.250 align:start position:10%\n<v Roger>Hi <c.yellow>there</c></v>\n\n01:00:00.000 --> 01:00:01.5\nlate\n";
        let cues = parse_subtitles(vtt, None).unwrap();
        assert_eq!(cues.len(), 2);
        assert!(approx(cues[0].start, 5.0) && approx(cues[0].end, 7.25));
        assert_eq!(cues[0].text, "Hi there");
        assert!(approx(cues[1].start, 3600.0) && approx(cues[1].end, 3601.5));
    }

    #[test]
    fn tolerates_sloppy_srt() {
        // No cue numbers, dot separators, a blank line inside a cue's text,
        // unsorted cues, "<" that is not a tag, a reversed cue.
        let srt = "00:00:05.000 --> 00:00:06.000\nsecond\n\n00:00:01,000 --> 00:00:02,000\nfirst line\n\ncontinued a < b\n\n3\n00:00:09,000 --> 00:00:08,000\nbackwards\n";
        let cues = parse_subtitles(srt, Some(SubtitleFormat::Srt)).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].text, "first line\ncontinued a < b");
        assert_eq!(cues[1].text, "second");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = parse_subtitles("hello\nthis is not a subtitle\n", None).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("line 1") && msg.contains("not a subtitle file"),
            "{msg}"
        );
        let err = parse_subtitles("1\n00:00:01,000 --> 00:0x:02,000\nhi\n", None).unwrap_err();
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("bad timestamp"),
            "{err}"
        );
        let err = parse_subtitles(
            "00:00:01.000 --> 00:00:02.000\nhi\n",
            Some(SubtitleFormat::Vtt),
        )
        .unwrap_err();
        assert!(err.to_string().contains("WEBVTT"), "{err}");
        assert!(parse_subtitles("00:61:00,000 --> 00:62:00,000\nx\n", None).is_err());
        assert!(decode_text(b"\x00\x01binary").is_err());
        // Empty files have no cues but are not errors.
        assert!(parse_subtitles("", None).unwrap().is_empty());
        assert!(parse_subtitles("WEBVTT\n", None).unwrap().is_empty());
    }

    #[test]
    fn decodes_utf16_and_latin1() {
        let text = "1\n00:00:01,000 --> 00:00:02,000\ncafé\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert!(decode_text(&le).unwrap().contains("café"));
        let latin1: Vec<u8> = text.chars().map(|c| c as u8).collect();
        assert!(decode_text(&latin1).unwrap().contains("café"));
    }

    #[test]
    fn finds_sidecars_beside_a_video() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "clip.mp4",
            "clip.srt",
            "clip.en.srt",
            "clip.pt-BR.forced.VTT",
            "clip.txt",
            "clipper.srt",
            "clip.some thing.srt",
            "other.vtt",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let found: Vec<String> = find_sidecar_subtitles(&dir.path().join("clip.mp4"))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            found,
            vec!["clip.srt", "clip.en.srt", "clip.pt-BR.forced.VTT"]
        );
        let path = dir.path().join("x.vtt");
        std::fs::write(&path, "WEBVTT\n\n00:01.000 --> 00:02.000\nhey\n").unwrap();
        assert_eq!(read_subtitles(&path).unwrap()[0].text, "hey");
    }
}

/// Subtitle files come from users: any text must parse or fail with an
/// error, and cues written the way players write them must come back as
/// they were written.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const FORMATS: [Option<SubtitleFormat>; 3] =
        [None, Some(SubtitleFormat::Srt), Some(SubtitleFormat::Vtt)];

    /// (start ms, end ms, lines of plain words)
    type GeneratedCue = (u64, u64, Vec<String>);

    fn cue() -> impl Strategy<Value = GeneratedCue> {
        // Words of letters, digits and punctuation: no markup, no entities,
        // no `-->`, nothing the parser is meant to change.
        let line = prop::collection::vec("[a-zA-Z0-9éü你好,!?'()]{1,12}", 1..6)
            .prop_map(|words| words.join(" "));
        (
            0u64..400 * 3_600_000,
            0u64..600_000,
            prop::collection::vec(line, 1..4),
        )
            .prop_map(|(start, length, lines)| (start, start + length, lines))
    }

    fn clock(ms: u64, separator: char) -> String {
        format!(
            "{:02}:{:02}:{:02}{separator}{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    }

    fn srt(cues: &[GeneratedCue]) -> String {
        cues.iter()
            .enumerate()
            .map(|(i, (start, end, lines))| {
                format!(
                    "{}\r\n{} --> {}\r\n{}\r\n\r\n",
                    i + 1,
                    clock(*start, ','),
                    clock(*end, ','),
                    lines.join("\r\n")
                )
            })
            .collect()
    }

    fn vtt(cues: &[GeneratedCue]) -> String {
        let body: String = cues
            .iter()
            .enumerate()
            .map(|(i, (start, end, lines))| {
                format!(
                    "cue-{i}\n{} --> {} align:start\n{}\n\n",
                    clock(*start, '.'),
                    clock(*end, '.'),
                    lines.join("\n")
                )
            })
            .collect();
        format!("WEBVTT\n\n{body}")
    }

    fn assert_same(parsed: &[Cue], generated: &[GeneratedCue]) {
        let mut expected = generated.to_vec();
        // The parser's sort is stable: equal starts keep file order.
        expected.sort_by_key(|(start, _, _)| *start);
        assert_eq!(parsed.len(), expected.len());
        for (cue, (start, end, lines)) in parsed.iter().zip(&expected) {
            assert!((cue.start - *start as f64 / 1000.0).abs() < 1e-6, "{cue:?}");
            assert!((cue.end - *end as f64 / 1000.0).abs() < 1e-6, "{cue:?}");
            assert_eq!(cue.text, lines.join("\n"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            for format in FORMATS {
                let _ = parse_subtitles(&text, format);
            }
        }

        /// Text made of what subtitle files are made of reaches the timing,
        /// markup and entity code, which random Unicode seldom does.
        #[test]
        fn subtitle_like_text_never_panics(
            text in "(WEBVTT|NOTE|[0-9]{1,22}|[0-9]{16,19}:[0-5][0-9]:[0-5][0-9],[0-9]{3}|:|,|\\.| |-->|\n|\r|<|>|/|[ibc]|\\{|\\\\|\\}|&|;|amp|x){0,80}"
        ) {
            for format in FORMATS {
                let _ = parse_subtitles(&text, format);
            }
        }

        #[test]
        fn arbitrary_bytes_decode_or_fail(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(text) = decode_text(&bytes) {
                let _ = parse_subtitles(&text, None);
            }
        }

        #[test]
        fn generated_srt_parses_back(cues in prop::collection::vec(cue(), 0..12)) {
            assert_same(&parse_subtitles(&srt(&cues), None).unwrap(), &cues);
            assert_same(&parse_subtitles(&srt(&cues), Some(SubtitleFormat::Srt)).unwrap(), &cues);
        }

        #[test]
        fn generated_vtt_parses_back(cues in prop::collection::vec(cue(), 0..12)) {
            assert_same(&parse_subtitles(&vtt(&cues), None).unwrap(), &cues);
            assert_same(&parse_subtitles(&vtt(&cues), Some(SubtitleFormat::Vtt)).unwrap(), &cues);
        }
    }

    #[test]
    fn hours_too_large_to_count_are_an_error() {
        // 5124095576030432 h is over u64::MAX seconds: the sum used to overflow.
        let srt = "1\n5124095576030432:00:00,000 --> 5124095576030432:00:01,000\nx\n";
        for format in FORMATS {
            let _ = parse_subtitles(srt, format);
        }
        let err = parse_subtitles(srt, Some(SubtitleFormat::Srt)).unwrap_err();
        assert!(err.to_string().contains("bad timestamp"), "{err}");
    }
}
