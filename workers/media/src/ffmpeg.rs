//! Running ffmpeg as a child that writes raw frames to a pipe.
//!
//! Shot detection and frame sampling both read fixed-size `rawvideo` frames
//! from ffmpeg's stdout, so the spawning, the stderr draining and the
//! timestamp bookkeeping live here once. Timestamps come from a `showinfo`
//! filter placed last in the chain: it logs each frame's `pts_time` before the
//! frame reaches the muxer, so the i-th log line belongs to the i-th frame on
//! stdout, and variable-frame-rate videos get exact times instead of
//! `index / fps` guesses.
//!
//! One decode can feed two consumers: a `-filter_complex` graph split into a
//! main output (stdout) and a side output written to a named pipe, read on
//! its own thread so that neither output can stall ffmpeg while the caller
//! works on the other. The side chain ends in [`SIDE_SHOWINFO`], whose log
//! lines carry the side frames' times.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{MediaError, Result};

/// Lines of ffmpeg's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 6;

/// How long a frame's time may lag behind the frame itself.
const PTS_TIMEOUT: Duration = Duration::from_secs(30);

/// The filter appended to every chain so frame times can be read back.
pub(crate) const SHOWINFO: &str = "showinfo";

/// The same filter at the end of a side output's chain; its instance name
/// tells its log lines from the main output's.
pub(crate) const SIDE_SHOWINFO: &str = "showinfo@side";

/// Linux's `O_NONBLOCK`: opening a named pipe for writing without a reader
/// then fails at once instead of waiting (std has no name for the flag).
const O_NONBLOCK: i32 = 0o4000;

/// A running `ffmpeg ... -f rawvideo pipe:1` child.
pub(crate) struct RawFrames {
    child: Child,
    stdout: ChildStdout,
    frame_len: usize,
    pts: Option<Receiver<f64>>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
    last_pts: f64,
    side: Option<SideOutput>,
}

/// A side output's frame: its time in seconds and its pixels.
pub(crate) type SideFrame = (f64, Vec<u8>);

/// A second rawvideo output of the same ffmpeg: frames with their times,
/// read from a named pipe by a thread as soon as ffmpeg writes them.
pub(crate) struct SideOutput {
    frames: Option<Receiver<Result<SideFrame>>>,
    fifo: PathBuf,
    /// Holds the pipe's directory until ffmpeg and the reader are done.
    _dir: tempfile::TempDir,
}

impl SideOutput {
    /// The frames read so far (and, once ffmpeg is done, the end of them).
    pub(crate) fn frames(&mut self) -> Option<Receiver<Result<SideFrame>>> {
        self.frames.take()
    }

    /// Releases a reader still waiting for ffmpeg to open the pipe (ffmpeg
    /// failed before it got there), so its thread ends with the stream.
    fn release_reader(&self) {
        let _ = OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(&self.fifo);
    }
}

/// What the side output of a split graph looks like.
pub(crate) struct SideSpec {
    /// Bytes per side frame.
    pub frame_len: usize,
}

/// How the child should read its input and shape its output.
pub(crate) struct RawFramesSpec<'a> {
    /// Arguments placed before the output options: inputs, `-ss`, ...
    pub input_args: Vec<OsString>,
    /// `-vf` (single input) or `-filter_complex` (several) graph; must end
    /// with [`SHOWINFO`] when frame times are wanted.
    pub filter: &'a str,
    /// Whether `filter` is a `-filter_complex` graph.
    pub complex: bool,
    /// `rgb24` or `gray`.
    pub pix_fmt: &'a str,
    /// Output frame size in bytes.
    pub frame_len: usize,
    /// Whether `filter` ends with [`SHOWINFO`]; without it frame times are
    /// not known and must not be waited for.
    pub timed: bool,
}

impl RawFrames {
    /// Starts ffmpeg. Threads are left to ffmpeg's default (one per core).
    pub(crate) fn spawn(spec: RawFramesSpec<'_>) -> Result<Self> {
        Self::spawn_split(spec, None)
    }

    /// Starts ffmpeg with a side output when `side` is given: `spec.filter`
    /// is then a complex graph with outputs `[main]` (ending in
    /// [`SHOWINFO`]) and `[side]` (ending in [`SIDE_SHOWINFO`]).
    pub(crate) fn spawn_split(spec: RawFramesSpec<'_>, side: Option<SideSpec>) -> Result<Self> {
        let mut cmd = Command::new("ffmpeg");
        // `info` is the level showinfo logs at; `-nostats` keeps the progress
        // line (which uses `\r`) out of the error tail.
        cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
        cmd.args(&spec.input_args);
        cmd.arg(if spec.complex || side.is_some() {
            "-filter_complex"
        } else {
            "-vf"
        });
        cmd.arg(spec.filter);
        let output = |cmd: &mut Command| {
            // Passthrough: without it the rawvideo muxer duplicates frames to
            // keep a constant rate, so sparse `select` output would yield more
            // frames than showinfo lines and the reader would wait forever.
            cmd.args(["-fps_mode", "passthrough"]);
            cmd.args([
                "-an",
                "-sn",
                "-dn",
                "-f",
                "rawvideo",
                "-pix_fmt",
                spec.pix_fmt,
            ]);
        };
        let side_pipe = match &side {
            Some(_) => {
                let dir = tempfile::tempdir()?;
                let fifo = dir.path().join("side");
                let made = Command::new("mkfifo").arg(&fifo).status()?;
                if !made.success() {
                    return Err(std::io::Error::other("mkfifo failed").into());
                }
                cmd.args(["-map", "[main]"]);
                Some((dir, fifo))
            }
            None => None,
        };
        output(&mut cmd);
        cmd.arg("pipe:1");
        if let Some((_, fifo)) = &side_pipe {
            cmd.args(["-map", "[side]"]);
            output(&mut cmd);
            cmd.arg("-y").arg(fifo);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| MediaError::ToolMissing {
            tool: "ffmpeg",
            source,
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = channel();
        let (side_tx, side_pts) = channel();
        let stderr = std::thread::Builder::new()
            .name("ffmpeg-stderr".into())
            .spawn(move || drain_stderr(stderr, tx, side_tx))?;
        let mut frames = Self {
            child,
            stdout,
            frame_len: spec.frame_len,
            pts: spec.timed.then_some(rx),
            stderr: Some(stderr),
            last_pts: 0.0,
            side: None,
        };
        if let (Some(side), Some((dir, fifo))) = (side, side_pipe) {
            let (tx, rx) = channel();
            let path = fifo.clone();
            let len = side.frame_len;
            // Dropping `frames` on failure kills ffmpeg and releases this
            // thread if it still waits for the pipe to open.
            let output = SideOutput {
                frames: Some(rx),
                fifo,
                _dir: dir,
            };
            frames.side = Some(output);
            std::thread::Builder::new()
                .name("ffmpeg-side".into())
                .spawn(move || read_side(&path, len, side_pts, tx))?;
        }
        Ok(frames)
    }

    /// The side output, when the spec asked for one.
    pub(crate) fn side(&mut self) -> Option<&mut SideOutput> {
        self.side.as_mut()
    }

    /// Reads the next frame into `buf` (which must be `frame_len` long) and
    /// returns its presentation time (0 for untimed children), or `None` at
    /// the end of the stream.
    pub(crate) fn next_frame(&mut self, buf: &mut [u8]) -> Result<Option<f64>> {
        debug_assert_eq!(buf.len(), self.frame_len);
        let mut filled = 0;
        while filled < buf.len() {
            match self.stdout.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        if filled < buf.len() {
            // ffmpeg died mid-frame; `finish` reports why.
            return Ok(None);
        }
        // The showinfo line is logged before the frame is written, so it is
        // already on its way.
        let pts = match &self.pts {
            // The timeout only guards against a broken one-to-one pairing of
            // frames and log lines, which would otherwise hang the caller.
            Some(rx) => match rx.recv_timeout(PTS_TIMEOUT) {
                Ok(t) => t,
                Err(RecvTimeoutError::Disconnected) => self.last_pts,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(MediaError::DecodeFailed {
                        at: self.last_pts,
                        detail: "ffmpeg stopped reporting frame times".into(),
                    });
                }
            },
            None => self.last_pts,
        };
        self.last_pts = pts;
        Ok(Some(pts))
    }

    /// Time of the last frame read.
    pub(crate) fn last_pts(&self) -> f64 {
        self.last_pts
    }

    /// Waits for ffmpeg to exit and turns a failure into a clear error.
    pub(crate) fn finish(mut self) -> Result<()> {
        let status = self.child.wait()?;
        self.release_side();
        let tail = self.take_tail();
        if status.success() {
            Ok(())
        } else {
            Err(MediaError::DecodeFailed {
                at: self.last_pts,
                detail: describe_tail(&tail, &format!("ffmpeg exited with {status}")),
            })
        }
    }

    /// The last lines ffmpeg logged (waits for the child to exit).
    pub(crate) fn finish_with_tail(mut self) -> Result<(bool, Vec<String>)> {
        let status = self.child.wait()?;
        self.release_side();
        Ok((status.success(), self.take_tail().into()))
    }

    fn release_side(&self) {
        if let Some(side) = &self.side {
            side.release_reader();
        }
    }

    fn take_tail(&mut self) -> VecDeque<String> {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for RawFrames {
    fn drop(&mut self) {
        // A caller that stops early (an error, a dropped iterator) must not
        // leave ffmpeg running or blocked on a full pipe.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.release_side();
        }
    }
}

/// Reads side frames of `len` bytes from the pipe at `path`, each paired
/// with the next side time, until ffmpeg closes the pipe or the receiver
/// is gone. A short last frame means ffmpeg died; its caller learns why
/// from the main output.
fn read_side(path: &Path, len: usize, pts: Receiver<f64>, frames: Sender<Result<SideFrame>>) {
    // Blocks until ffmpeg opens the pipe, or until `release_reader`.
    let mut pipe = match File::open(path) {
        Ok(pipe) => pipe,
        Err(e) => {
            let _ = frames.send(Err(e.into()));
            return;
        }
    };
    loop {
        let mut frame = vec![0u8; len];
        if let Err(e) = pipe.read_exact(&mut frame) {
            if e.kind() != ErrorKind::UnexpectedEof {
                let _ = frames.send(Err(e.into()));
            }
            return;
        }
        let time = match pts.recv_timeout(PTS_TIMEOUT) {
            Ok(t) => t,
            Err(_) => {
                let _ = frames.send(Err(MediaError::DecodeFailed {
                    at: 0.0,
                    detail: "ffmpeg stopped reporting frame times".into(),
                }));
                return;
            }
        };
        if frames.send(Ok((time, frame))).is_err() {
            return;
        }
    }
}

/// Turns ffmpeg's last log lines into one readable sentence.
pub(crate) fn describe_tail(tail: &VecDeque<String>, fallback: &str) -> String {
    let interesting: Vec<&str> = tail
        .iter()
        .map(String::as_str)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if interesting.is_empty() {
        fallback.to_string()
    } else {
        interesting.join("; ")
    }
}

fn drain_stderr(stderr: impl Read, pts: Sender<f64>, side_pts: Sender<f64>) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES + 1);
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.contains(SIDE_SHOWINFO) {
            if let Some(t) = parse_pts_time(text) {
                let _ = side_pts.send(t);
            }
            continue;
        }
        if text.contains("Parsed_showinfo") {
            if let Some(t) = parse_pts_time(text) {
                // The reader may have stopped early; nothing to do then.
                let _ = pts.send(t);
            }
            continue;
        }
        if is_noise(text) {
            continue;
        }
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text.to_string());
    }
    tail
}

/// Banner-like lines that say nothing about a failure.
fn is_noise(line: &str) -> bool {
    let l = line.trim_start();
    l.is_empty()
        || l.starts_with("Input #")
        || l.starts_with("Output #")
        || l.starts_with("Stream")
        || l.starts_with("Metadata:")
        || l.starts_with("Duration:")
        || l.starts_with("Press [q]")
        || l.starts_with("frame=")
        || l.starts_with("video:")
        || l.starts_with("encoder")
        || line.starts_with(' ')
}

fn parse_pts_time(line: &str) -> Option<f64> {
    let rest = &line[line.find("pts_time:")? + "pts_time:".len()..];
    let value = rest.split_whitespace().next()?;
    value.parse().ok().filter(|t: &f64| t.is_finite())
}

/// Protocols ffmpeg and ffprobe may open: local files and our own pipes.
/// A playlist or concat list disguised as a video must not make them fetch
/// a URL or read another file through a network or device protocol.
pub(crate) const LOCAL_PROTOCOLS_ONLY: [&str; 2] = ["-protocol_whitelist", "file,pipe"];

/// Longest an ffprobe run may take: it reads headers (and, for the keyframe
/// interval, one minute of packets), never the whole file.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `command` to the end like [`Command::output`], but stops it with
/// [`MediaError::Hung`] when it runs past `timeout`, so a file that makes a
/// tool hang fails its job instead of holding the worker forever.
pub(crate) fn output_within(
    mut command: Command,
    tool: &'static str,
    timeout: Duration,
) -> Result<std::process::Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| MediaError::ToolMissing { tool, source })?;
    // Both pipes are drained on their own threads, so a child that writes a
    // lot cannot block on a full pipe while we wait for it.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MediaError::Hung {
                    tool,
                    secs: timeout.as_secs(),
                });
            }
            Err(source) => return Err(MediaError::ToolMissing { tool, source }),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `-i path` with the options every input shares.
pub(crate) fn input_args(path: &Path, seek: Option<f64>) -> Vec<OsString> {
    let mut args: Vec<OsString> = LOCAL_PROTOCOLS_ONLY.iter().map(Into::into).collect();
    if let Some(t) = seek {
        // Before `-i`: a fast keyframe seek followed by an exact decode-skip
        // to `t` (ffmpeg's accurate_seek default).
        args.push("-ss".into());
        args.push(format!("{t:.3}").into());
    }
    args.push("-i".into());
    args.push(path.as_os_str().to_owned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_tool_is_stopped_by_its_watchdog() {
        let started = Instant::now();
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        match output_within(sleeper, "ffprobe", Duration::from_millis(300)) {
            Err(MediaError::Hung { tool, .. }) => assert_eq!(tool, "ffprobe"),
            other => panic!("expected Hung, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));

        let mut echo = Command::new("sh");
        echo.args(["-c", "echo out; echo err >&2"]);
        let output = output_within(echo, "ffprobe", Duration::from_secs(10)).unwrap();
        assert!(output.status.success());
        assert_eq!(
            (output.stdout.as_slice(), output.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn parses_showinfo_pts_time() {
        let line = "[Parsed_showinfo_2 @ 0x55d] n:  12 pts: 6144 pts_time:0.48    duration:512 pos:1 fmt:gray";
        assert_eq!(parse_pts_time(line), Some(0.48));
        assert_eq!(parse_pts_time("[Parsed_showinfo_2 @ 0x1] config in"), None);
    }
}
