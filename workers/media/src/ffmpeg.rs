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
//! One decode can feed several consumers: a `-filter_complex` graph split
//! into a main output (stdout) and named side outputs, each written to a
//! named pipe and read on its own thread, so that no output can stall
//! ffmpeg while the caller works on another. A side chain ends in
//! [`side_showinfo`] with the side's name, whose log lines carry that
//! side's frame times.

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
/// Without checksums: by default it sums every plane of every frame (for
/// checksums, means and deviations nobody reads), on the one thread that
/// runs the whole filter graph.
pub(crate) const SHOWINFO: &str = "showinfo=checksum=0";

/// The same filter at the end of the side output `name`'s chain; its
/// instance name ([`side_label`]) tells its log lines from the other
/// outputs'.
pub(crate) fn side_showinfo(name: &str) -> String {
    SHOWINFO.replacen("showinfo", &side_label(name), 1)
}

/// The instance name of [`side_showinfo`]`(name)`, which its log lines carry.
fn side_label(name: &str) -> String {
    format!("showinfo@{name}")
}

/// Pipe buffer asked for a side output: a few frames of the sampling grid
/// (455x256 RGB is 350 kB), so ffmpeg writes a frame in one go instead of
/// waiting for the reader every 64 kB (Linux's default), which stalls the
/// thread that filters every output. Linux lets anyone ask for up to
/// 1 MiB (`/proc/sys/fs/pipe-max-size`); the default stays if it refuses.
const SIDE_PIPE_BYTES: usize = 1 << 20;

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
    sides: Vec<SideOutput>,
    /// Holds the side outputs' named pipes until ffmpeg and the readers
    /// are done.
    _pipes: Option<tempfile::TempDir>,
}

/// A side output's frame: its time in seconds and its pixels.
pub(crate) type SideFrame = (f64, Vec<u8>);

/// Another rawvideo output of the same ffmpeg: frames with their times,
/// read from a named pipe by a thread as soon as ffmpeg writes them.
pub(crate) struct SideOutput {
    name: &'static str,
    frames: Option<Receiver<Result<SideFrame>>>,
    fifo: PathBuf,
}

impl SideOutput {
    /// The frames read so far (and, once ffmpeg is done, the end of them);
    /// `None` for a side with a sink of its own.
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

/// Where a side output's frames go: to a sink of the caller's, or (with
/// `None`) to an unbounded queue read through [`SideOutput::frames`]. A
/// sink may block, holding ffmpeg back; its consumer must then never wait
/// for the main output's.
pub(crate) type SideSink = Box<dyn FnMut(Result<SideFrame>) + Send>;

/// What one side output of a split graph looks like.
pub(crate) struct SideSpec {
    /// The graph's output label, `[name]`, whose chain ends in
    /// [`side_showinfo`]`(name)`.
    pub name: &'static str,
    /// Its rawvideo pixel format (`rgb24`, `yuv444p`, ...).
    pub pix_fmt: &'static str,
    /// Bytes per side frame.
    pub frame_len: usize,
    /// Where its frames go.
    pub sink: Option<SideSink>,
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
        Self::spawn_split(spec, Vec::new())
    }

    /// Starts ffmpeg with the given side outputs: with any, `spec.filter`
    /// is a complex graph with outputs `[main]` (ending in [`SHOWINFO`])
    /// and one `[name]` per side (ending in [`side_showinfo`]`(name)`).
    pub(crate) fn spawn_split(spec: RawFramesSpec<'_>, sides: Vec<SideSpec>) -> Result<Self> {
        let mut cmd = Command::new("ffmpeg");
        // `info` is the level showinfo logs at; `-nostats` keeps the progress
        // line (which uses `\r`) out of the error tail.
        cmd.args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]);
        cmd.args(&spec.input_args);
        cmd.arg(if spec.complex || !sides.is_empty() {
            "-filter_complex"
        } else {
            "-vf"
        });
        cmd.arg(spec.filter);
        let output = |cmd: &mut Command, pix_fmt: &str| {
            // Passthrough: without it the rawvideo muxer duplicates frames to
            // keep a constant rate, so sparse `select` output would yield more
            // frames than showinfo lines and the reader would wait forever.
            cmd.args(["-fps_mode", "passthrough"]);
            cmd.args(["-an", "-sn", "-dn", "-f", "rawvideo", "-pix_fmt", pix_fmt]);
        };
        let pipes = if sides.is_empty() {
            None
        } else {
            let dir = tempfile::tempdir()?;
            for side in &sides {
                let made = Command::new("mkfifo")
                    .arg(dir.path().join(side.name))
                    .status()?;
                if !made.success() {
                    return Err(std::io::Error::other("mkfifo failed").into());
                }
            }
            cmd.args(["-map", "[main]"]);
            Some(dir)
        };
        output(&mut cmd, spec.pix_fmt);
        cmd.arg("pipe:1");
        if let Some(dir) = &pipes {
            for side in &sides {
                cmd.args(["-map", &format!("[{}]", side.name)]);
                output(&mut cmd, side.pix_fmt);
                cmd.arg("-y").arg(dir.path().join(side.name));
            }
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
        let mut side_times = Vec::new();
        let mut side_pts = Vec::new();
        for side in &sides {
            let (tx, rx) = channel();
            side_times.push((side_label(side.name), tx));
            side_pts.push(rx);
        }
        let stderr = std::thread::Builder::new()
            .name("ffmpeg-stderr".into())
            .spawn(move || drain_stderr(stderr, tx, side_times))?;
        let mut frames = Self {
            child,
            stdout,
            frame_len: spec.frame_len,
            pts: spec.timed.then_some(rx),
            stderr: Some(stderr),
            last_pts: 0.0,
            sides: Vec::new(),
            _pipes: None,
        };
        if let Some(dir) = &pipes {
            for (side, pts) in sides.into_iter().zip(side_pts) {
                let fifo = dir.path().join(side.name);
                let (sink, queue): (SideSink, _) = match side.sink {
                    Some(sink) => (sink, None),
                    None => {
                        let (tx, rx) = channel();
                        (
                            Box::new(move |frame| {
                                // The caller may have stopped reading.
                                let _ = tx.send(frame);
                            }),
                            Some(rx),
                        )
                    }
                };
                // Dropping `frames` on failure kills ffmpeg and releases
                // this thread if it still waits for the pipe to open.
                frames.sides.push(SideOutput {
                    name: side.name,
                    frames: queue,
                    fifo: fifo.clone(),
                });
                let len = side.frame_len;
                std::thread::Builder::new()
                    .name(format!("ffmpeg-{}", side.name))
                    .spawn(move || read_side(&fifo, len, pts, sink))?;
            }
        }
        frames._pipes = pipes;
        Ok(frames)
    }

    /// The side output `name`, when the spec asked for one.
    pub(crate) fn side(&mut self, name: &str) -> Option<&mut SideOutput> {
        self.sides.iter_mut().find(|side| side.name == name)
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
        for side in &self.sides {
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
/// with the next side time, into `sink` until ffmpeg closes the pipe. It
/// reads to the end even when nobody wants the frames any more: a pipe
/// closed early would fail the whole decode. A short last frame means
/// ffmpeg died; its caller learns why from the main output.
fn read_side(path: &Path, len: usize, pts: Receiver<f64>, mut sink: SideSink) {
    // Blocks until ffmpeg opens the pipe, or until `release_reader`.
    let mut pipe = match File::open(path) {
        Ok(pipe) => pipe,
        Err(e) => {
            sink(Err(e.into()));
            return;
        }
    };
    let _ = rustix::pipe::fcntl_setpipe_size(&pipe, SIDE_PIPE_BYTES);
    loop {
        let mut frame = vec![0u8; len];
        if let Err(e) = pipe.read_exact(&mut frame) {
            if e.kind() != ErrorKind::UnexpectedEof {
                sink(Err(e.into()));
            }
            return;
        }
        let time = match pts.recv_timeout(PTS_TIMEOUT) {
            Ok(t) => t,
            Err(_) => {
                sink(Err(MediaError::DecodeFailed {
                    at: 0.0,
                    detail: "ffmpeg stopped reporting frame times".into(),
                }));
                return;
            }
        };
        sink(Ok((time, frame)));
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

/// Keeps the last lines of ffmpeg's log and sends each showinfo time to
/// its output's channel: `pts` for the main output, `sides` by their
/// showinfo instance names.
fn drain_stderr(
    stderr: impl Read,
    pts: Sender<f64>,
    sides: Vec<(String, Sender<f64>)>,
) -> VecDeque<String> {
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
        if let Some((_, side)) = sides.iter().find(|(name, _)| text.contains(name.as_str())) {
            if let Some(t) = parse_pts_time(text) {
                let _ = side.send(t);
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
        assert_eq!(side_showinfo("grid"), "showinfo@grid=checksum=0");
    }
}
