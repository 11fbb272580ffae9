//! ffprobe and ffmpeg open local files only: a playlist in a media root
//! must not make ingest fetch its URLs, which would let anyone who can place
//! a file there make the server connect wherever they like. vidseek passes
//! `-protocol_whitelist file,pipe` to every ffmpeg and ffprobe it runs;
//! ffmpeg's own rule for playlists opened from a file says the same for
//! network protocols, and this test fails if either ever lets one through.

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use vidseek_media::{self as media, AnalyzeOptions};

#[test]
fn a_playlist_disguised_as_a_video_fetches_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    let watcher = std::thread::spawn(move || {
        // Watches for 15 s at most; the test stops it earlier by closing time.
        for _ in 0..150 {
            if let Ok((mut stream, _)) = listener.accept() {
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut [0u8; 512]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let trap = dir.path().join("holiday.m3u8");
    std::fs::write(
        &trap,
        format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXTINF:2.0,\nhttp://127.0.0.1:{port}/segment0.ts\n#EXT-X-ENDLIST\n"
        ),
    )
    .unwrap();

    let probed = media::probe(&trap);
    let analysed = media::analyze(
        &trap,
        &AnalyzeOptions::default(),
        None,
        &mut |_| {},
        &mut |_| std::ops::ControlFlow::Continue(()),
    );
    // Give a connection attempt made by a child process time to land.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "ffprobe/ffmpeg fetched the playlist's URL"
    );
    assert!(
        probed.is_err() || analysed.is_err(),
        "a playlist is not a video"
    );
    drop(watcher);
}
