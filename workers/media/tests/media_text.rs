//! Text inside video files: subtitle tracks in the container and captions
//! burned into the picture, against videos made here with ffmpeg.

use vidseek_media::{self as media, OcrOptions};
use vidseek_tests::bitmap_subtitles::{TWO_LINES, video_with_bitmap_subtitles};
use vidseek_tests::media::{BurnedCaption, captioned_video, video_with_subtitle_track};

const SRT: &str = "1\n00:00:00,500 --> 00:00:02,000\nThe red kite circles the valley\n\n\
                   2\n00:00:02,500 --> 00:00:03,800\n<i>晚上我们去公园骑自行车</i>\n";

#[test]
fn subtitle_tracks_of_mp4_and_mkv_become_cues() {
    let dir = tempfile::tempdir().unwrap();
    for (name, language) in [("soft.mp4", "eng"), ("soft.mkv", "chi")] {
        let path = dir.path().join(name);
        video_with_subtitle_track(&path, 4, SRT, language);
        let probe = media::probe(&path).unwrap();
        let tracks = media::read_embedded_subtitles(&path, &probe, None).unwrap();
        assert_eq!(tracks.len(), 1, "{name}: one text track");
        let track = &tracks[0];
        assert_eq!(track.track.language.as_deref(), Some(language), "{name}");
        let cues: Vec<(f64, f64, &str)> = track
            .cues
            .iter()
            .map(|c| (c.start, c.end, c.text.as_str()))
            .collect();
        assert_eq!(
            cues,
            [
                (0.5, 2.0, "The red kite circles the valley"),
                (2.5, 3.8, "晚上我们去公园骑自行车"),
            ],
            "{name}"
        );
    }
    // A video without subtitle streams has no tracks.
    let plain = dir.path().join("plain.mp4");
    captioned_video(&plain, "testsrc2", "160x120", 1, &[]);
    let probe = media::probe(&plain).unwrap();
    assert!(probe.subtitle_tracks.is_empty());
    assert!(
        media::read_embedded_subtitles(&plain, &probe, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bitmap_subtitle_tracks_are_recognised_with_their_times() {
    let dir = tempfile::tempdir().unwrap();
    // PGS (Blu-ray) in MKV, DVB in MPEG-TS.
    for (name, codec) in [("pgs.mkv", "hdmv_pgs_subtitle"), ("dvb.ts", "dvb_subtitle")] {
        let path = dir.path().join(name);
        video_with_bitmap_subtitles(&path, 5, &TWO_LINES, "chi");
        let video = media::probe(&path).unwrap();
        let tracks = &video.subtitle_tracks;
        assert_eq!(tracks.len(), 1, "{name}: {tracks:?}");
        assert_eq!(tracks[0].codec, codec);
        assert!(!tracks[0].is_text());
        // Without OCR a picture track is not read.
        assert!(
            media::read_embedded_subtitles(&path, &video, None)
                .unwrap()
                .is_empty()
        );
        let read =
            media::read_embedded_subtitles(&path, &video, Some(&OcrOptions::default())).unwrap();
        assert_eq!(read.len(), 1, "{name}");
        assert_eq!(read[0].track.language.as_deref(), Some("chi"), "{name}");
        let cues = &read[0].cues;
        let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, TWO_LINES.map(|line| line.text), "{name}: {cues:?}");
        for (cue, line) in cues.iter().zip(&TWO_LINES) {
            assert!(
                (cue.start - line.start).abs() <= 0.5 && (cue.end - line.end).abs() <= 0.5,
                "{name}: {cue:?} should span {}..{} s within 0.5 s",
                line.start,
                line.end
            );
        }
    }
}

#[test]
fn a_burned_in_chinese_line_is_read_with_its_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("burned.mp4");
    captioned_video(
        &path,
        "color=c=0x3a6ea5",
        "640x360",
        6,
        &[
            BurnedCaption {
                start: 1.0,
                end: 3.0,
                text: "今天天气很好",
            },
            BurnedCaption {
                start: 3.5,
                end: 5.5,
                text: "我们去公园骑自行车",
            },
        ],
    );
    let probe = media::probe(&path).unwrap();
    let mut progress = vec![];
    let cues = media::read_burned_in_captions(&path, &probe, &OcrOptions::default(), &mut |p| {
        progress.push(p)
    })
    .unwrap();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress.last() > Some(&0.9),
        "progress climbs to the end: {progress:?}"
    );
    let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["今天天气很好", "我们去公园骑自行车"], "{cues:?}");
    for (cue, (start, end)) in cues.iter().zip([(1.0, 3.0), (3.5, 5.5)]) {
        assert!(
            (cue.start - start).abs() <= 0.5 && (cue.end - end).abs() <= 0.5,
            "{cue:?} should span {start}..{end} s within 0.5 s"
        );
    }
}

/// The ingest path: the analysis's one decode samples the caption band
/// too, and a reader on another thread turns it into the same cues as a
/// decode of the band alone; the seeking strategy feeds the band from a
/// decode of its own.
#[test]
fn the_analysis_decode_feeds_the_caption_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.mp4");
    captioned_video(
        &path,
        "color=c=0x3a6ea5",
        "640x360",
        5,
        &[BurnedCaption {
            start: 1.5,
            end: 4.0,
            text: "博物馆明天早上九点开门",
        }],
    );
    let options = OcrOptions::default();
    let alone =
        media::read_burned_in_captions(&path, &media::probe(&path).unwrap(), &options, &mut |_| {})
            .unwrap();
    let texts: Vec<&str> = alone.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["博物馆明天早上九点开门"], "{alone:?}");
    for strategy in [
        media::SamplingStrategy::SinglePass,
        media::SamplingStrategy::Seek,
    ] {
        let (tap, band) = media::caption_band(&options);
        let reader = std::thread::spawn({
            let options = options.clone();
            move || media::read_captions(band, &options, &mut |_| {})
        });
        let mut analyze_options = media::AnalyzeOptions::default();
        analyze_options.sampling.strategy = strategy;
        let mut segments = 0;
        let analysis = media::analyze(&path, &analyze_options, Some(tap), &mut |_| {}, &mut |_| {
            segments += 1;
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(segments, analysis.segments.len(), "{strategy:?}");
        let shared = reader.join().unwrap().unwrap();
        assert_eq!(shared, alone, "{strategy:?}");
    }
}

#[test]
fn a_video_without_text_yields_no_ocr_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-text.mp4");
    // Bright, busy and moving, but no writing anywhere.
    captioned_video(&path, "mandelbrot", "640x360", 4, &[]);
    let probe = media::probe(&path).unwrap();
    let options = OcrOptions::default();
    let cues = media::read_burned_in_captions(&path, &probe, &options, &mut |_| {}).unwrap();
    assert!(cues.is_empty(), "captions read from nothing: {cues:?}");
    let screen = media::read_on_screen_text(&path, &probe, &[0.5, 2.5], &options).unwrap();
    assert_eq!(screen, [None, None]);
}

#[test]
fn on_screen_text_above_the_caption_band_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slide.mp4");
    // A title slide: dark text on a light background, in the upper half.
    let title = dir.path().join("title.txt");
    std::fs::write(&title, "Quarterly Results").unwrap();
    vidseek_tests::media::run_filtered_video(
        &path,
        "color=c=white",
        "640x360",
        2,
        &format!(
            "drawtext=fontfile={}:textfile={}:fontcolor=black:fontsize=40:x=(w-tw)/2:y=60",
            vidseek_tests::media::CJK_FONT,
            title.display()
        ),
    );
    let probe = media::probe(&path).unwrap();
    let screen = media::read_on_screen_text(&path, &probe, &[1.0], &OcrOptions::default()).unwrap();
    assert_eq!(screen, [Some("Quarterly Results".to_string())]);
}
