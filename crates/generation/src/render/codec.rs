//! ffmpeg as a subprocess: encoding RGB24 frames to H.264/MP4 (frames are piped to its
//! stdin from a writer thread while the next one is drawn), decoding any media to raw
//! RGB24/RGBA frames, and still thumbnails.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::{Frame, RenderError};

/// The ffmpeg binary to run.
#[derive(Debug, Clone)]
pub struct Ffmpeg {
    path: PathBuf,
}

impl Ffmpeg {
    /// `PIXSIM_FFMPEG`, or the wheel's binary (fetched on first use; blocking).
    pub fn locate() -> Result<Self, RenderError> {
        Ok(Ffmpeg {
            path: embedded::ffmpeg::ffmpeg()?,
        })
    }

    /// A given binary.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Ffmpeg { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        c.args(["-hide_banner", "-loglevel", "error", "-nostdin"]);
        c
    }
}

/// How encoded frames are laid out.
#[derive(Debug, Clone, Copy)]
pub struct EncodeSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
    /// libx264 constant rate factor (lower: better and larger).
    pub crf: u8,
}

fn spawn_error(what: &'static str, e: std::io::Error) -> RenderError {
    RenderError::Io { what, source: e }
}

/// Reads a child's stderr to the end on a thread (so the child never blocks on it).
fn drain_stderr(child: &mut Child) -> Option<JoinHandle<String>> {
    let mut err = child.stderr.take()?;
    Some(std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    }))
}

fn stderr_of(h: Option<JoinHandle<String>>) -> String {
    h.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Encodes `spec.frames` frames drawn by `draw(k, rgb24)` into H.264 (yuv420p) in MP4 with
/// `moov` first. Returns the file's bytes. The frame buffers are recycled between the
/// drawing thread (the caller's) and the writer thread.
pub fn encode(
    ff: &Ffmpeg,
    spec: EncodeSpec,
    mut draw: impl FnMut(u32, &mut [u8]),
) -> Result<Vec<u8>, RenderError> {
    let dir = tempfile::tempdir().map_err(|e| spawn_error("create a temporary directory", e))?;
    let out = dir.path().join("out.mp4");
    let size = format!("{}x{}", spec.width, spec.height);
    let (fps, gop, crf) = (
        spec.fps.to_string(),
        (spec.fps * 2).to_string(),
        spec.crf.to_string(),
    );
    let mut cmd = ff.command();
    cmd.args([
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size, "-r", &fps,
    ])
    .args(["-i", "-", "-an", "-c:v", "libx264", "-preset", "veryfast"])
    .args([
        "-crf", &crf, "-g", &gop, "-threads", "2", "-pix_fmt", "yuv420p",
    ])
    .args(["-movflags", "+faststart", "-fflags", "+bitexact"])
    .args(["-map_metadata", "-1", "-f", "mp4"])
    .arg(&out)
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error("start ffmpeg", e))?;
    let err = drain_stderr(&mut child);
    let stdin = child.stdin.take();
    let written = match stdin {
        Some(stdin) => pipe_frames(stdin, spec, &mut draw),
        None => Ok(()),
    };
    let status = child
        .wait()
        .map_err(|e| spawn_error("wait for ffmpeg", e))?;
    let stderr = stderr_of(err);
    if !status.success() {
        return Err(RenderError::Ffmpeg {
            what: "encode",
            status: status.to_string(),
            stderr,
        });
    }
    written.map_err(|e| spawn_error("write frames to ffmpeg", e))?;
    std::fs::read(&out).map_err(|e| spawn_error("read the encoded file", e))
}

/// Draws every frame on this thread and writes them on another.
fn pipe_frames(
    mut stdin: ChildStdin,
    spec: EncodeSpec,
    draw: &mut impl FnMut(u32, &mut [u8]),
) -> std::io::Result<()> {
    let len = spec.width as usize * spec.height as usize * 3;
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 0..3 {
        let _ = free_tx.send(vec![0u8; len]);
    }
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for buf in full_rx {
            stdin.write_all(&buf)?;
            // The drawer may be gone after its last frame: nothing to recycle for.
            let _ = free_tx.send(buf);
        }
        stdin.flush()
        // stdin drops here: ffmpeg sees the end of its input.
    });
    for k in 0..spec.frames {
        let Ok(mut buf) = free_rx.recv() else { break };
        draw(k, &mut buf);
        if full_tx.send(buf).is_err() {
            break;
        }
    }
    drop(full_tx);
    writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("frame writer panicked")))
}

/// How a decoded picture is fitted to the wanted size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Scaled to cover the size, the overflow cropped (centred).
    Cover,
    /// Scaled to fit inside, the rest transparent (use with [`Pixels::Rgba`]).
    Contain,
    /// As stored: the size must be the file's own.
    Native,
}

/// Which frames to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    First,
    /// The last frame (a video is sought to near its end first).
    Last,
    /// Up to this many frames from the start.
    All(usize),
}

/// Bytes per pixel of decoded frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pixels {
    Rgb24,
    Rgba,
}

impl Pixels {
    fn bytes(self) -> usize {
        match self {
            Pixels::Rgb24 => 3,
            Pixels::Rgba => 4,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Pixels::Rgb24 => "rgb24",
            Pixels::Rgba => "rgba",
        }
    }
}

/// What to decode and how.
#[derive(Debug, Clone, Copy)]
pub struct DecodeSpec {
    pub width: u32,
    pub height: u32,
    pub fit: Fit,
    pub pick: Pick,
    pub pixels: Pixels,
    /// Seek to about a second before the end before decoding (videos only).
    pub near_end: bool,
}

/// Decodes the media file at `input` to raw frames of `spec.width`×`spec.height`.
pub fn decode_file(ff: &Ffmpeg, input: &Path, spec: DecodeSpec) -> Result<Vec<Frame>, RenderError> {
    let (w, h) = (spec.width, spec.height);
    let filter = match spec.fit {
        Fit::Cover => Some(format!(
            "scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}"
        )),
        Fit::Contain => Some(format!(
            "scale={w}:{h}:force_original_aspect_ratio=decrease,\
             pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black@0"
        )),
        Fit::Native => None,
    };
    let mut cmd = ff.command();
    if spec.near_end && spec.pick == Pick::Last {
        cmd.args(["-sseof", "-1"]);
    }
    cmd.arg("-i").arg(input).args(["-an", "-sn"]);
    if spec.pick == Pick::First {
        cmd.args(["-frames:v", "1"]);
    }
    if let Some(f) = &filter {
        cmd.args(["-vf", f]);
    }
    run_decode(cmd, spec)
}

/// Runs a decoding `cmd` (its input and filters set) to raw frames of `spec`: the output
/// arguments, the frames read, ffmpeg stopped once `spec.pick` has enough; an error
/// naming ffmpeg's complaint when no frame came.
fn run_decode(mut cmd: Command, spec: DecodeSpec) -> Result<Vec<Frame>, RenderError> {
    cmd.args(["-f", "rawvideo", "-pix_fmt", spec.pixels.name(), "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error("start ffmpeg", e))?;
    let err = drain_stderr(&mut child);
    let frames = read_frames(&mut child, spec);
    if frames
        .as_ref()
        .is_ok_and(|f| matches!(spec.pick, Pick::All(n) if f.len() >= n))
    {
        // Enough: do not wait for the rest of a long file.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| spawn_error("wait for ffmpeg", e))?;
    let stderr = stderr_of(err);
    let frames = frames.map_err(|e| spawn_error("read decoded frames", e))?;
    if frames.is_empty() {
        return Err(RenderError::Ffmpeg {
            what: "decode",
            status: status.to_string(),
            stderr,
        });
    }
    Ok(frames)
}

/// Frames of the image or video at `input`, each scaled to cover `side`×`side` (RGB):
/// a video sampled `per_second` times a second, at most `max` frames; an image once.
pub fn decode_sampled(
    ff: &Ffmpeg,
    input: &Path,
    side: u32,
    per_second: Option<f32>,
    max: usize,
) -> Result<Vec<Frame>, RenderError> {
    let scale =
        format!("scale={side}:{side}:force_original_aspect_ratio=increase,crop={side}:{side}");
    let filter = match per_second {
        Some(fps) => format!("fps={fps},{scale}"),
        None => scale,
    };
    let spec = DecodeSpec {
        width: side,
        height: side,
        fit: Fit::Cover,
        pick: Pick::All(max.max(1)),
        pixels: Pixels::Rgb24,
        near_end: false,
    };
    let mut cmd = ff.command();
    cmd.arg("-i")
        .arg(input)
        .args(["-an", "-sn", "-vf", &filter])
        .args(["-frames:v", &max.max(1).to_string()]);
    run_decode(cmd, spec)
}

/// Reads whole frames from the child's stdout, keeping what `spec.pick` asks for.
fn read_frames(child: &mut Child, spec: DecodeSpec) -> std::io::Result<Vec<Frame>> {
    let Some(mut out) = child.stdout.take() else {
        return Ok(Vec::new());
    };
    let len = spec.width as usize * spec.height as usize * spec.pixels.bytes();
    let mut frames: Vec<Frame> = Vec::new();
    let mut buf = vec![0u8; len];
    loop {
        match out.read_exact(&mut buf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let frame = Frame {
            width: spec.width,
            height: spec.height,
            px: buf.clone(),
        };
        match spec.pick {
            Pick::First => return Ok(vec![frame]),
            Pick::Last => frames = vec![frame],
            Pick::All(n) => {
                frames.push(frame);
                if frames.len() >= n {
                    break;
                }
            }
        }
    }
    Ok(frames)
}

/// [`decode_file`] over bytes (written to a temporary file: MP4 needs seeking).
pub fn decode_bytes(
    ff: &Ffmpeg,
    bytes: &[u8],
    spec: DecodeSpec,
) -> Result<Vec<Frame>, RenderError> {
    let dir = tempfile::tempdir().map_err(|e| spawn_error("create a temporary directory", e))?;
    let input = dir.path().join("input");
    std::fs::write(&input, bytes).map_err(|e| spawn_error("write the input file", e))?;
    decode_file(ff, &input, spec)
}

/// Longest side of a thumbnail.
pub const THUMBNAIL_MAX: u32 = 320;

/// A PNG thumbnail (at most [`THUMBNAIL_MAX`] on its longest side, never enlarged) of
/// the image or video at `input`; a video's frame is taken at `at_ms`.
pub fn thumbnail_file(
    ff: &Ffmpeg,
    input: &Path,
    at_ms: Option<u64>,
) -> Result<Vec<u8>, RenderError> {
    let m = THUMBNAIL_MAX;
    let mut cmd = ff.command();
    if let Some(ms) = at_ms {
        cmd.args(["-ss", &format!("{}.{:03}", ms / 1000, ms % 1000)]);
    }
    cmd.arg("-i")
        .arg(input)
        .args(["-an", "-sn", "-frames:v", "1", "-vf"])
        .arg(format!(
            "scale='min({m},iw)':'min({m},ih)':force_original_aspect_ratio=decrease"
        ))
        .args(["-c:v", "png", "-f", "image2pipe", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error("start ffmpeg", e))?;
    let err = drain_stderr(&mut child);
    let mut png = Vec::new();
    let read = child
        .stdout
        .take()
        .map(|mut o| o.read_to_end(&mut png))
        .transpose();
    let status = child
        .wait()
        .map_err(|e| spawn_error("wait for ffmpeg", e))?;
    let stderr = stderr_of(err);
    read.map_err(|e| spawn_error("read the thumbnail", e))?;
    if !status.success() || png.is_empty() {
        return Err(RenderError::Ffmpeg {
            what: "thumbnail",
            status: status.to_string(),
            stderr,
        });
    }
    Ok(png)
}

/// What [`transcode_file`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// H.264 (yuv420p) in MP4 with `moov` first; AAC audio when the input has sound.
    Mp4,
    /// One frame as PNG.
    Png,
}

/// A cut and/or rendition of the media at `input`.
#[derive(Debug, Clone, Copy)]
pub struct Transcode {
    pub output: Output,
    /// Where the output starts in the input (a still's frame time).
    pub start_ms: u64,
    /// Where it ends (`None`: the input's end); ignored for a still.
    pub end_ms: Option<u64>,
    /// At most this many lines (scaled down keeping the aspect ratio, to even sizes;
    /// never enlarged). `None`: the input's size.
    pub max_height: Option<u32>,
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Writes the cut or rendition `t` of `input` to `output` (replacing it). The video is
/// re-encoded, so a cut starts and ends on the requested frames, not on the input's
/// keyframes.
pub fn transcode_file(
    ff: &Ffmpeg,
    input: &Path,
    output: &Path,
    t: &Transcode,
) -> Result<(), RenderError> {
    let mut cmd = ff.command();
    if t.start_ms > 0 {
        cmd.args(["-ss", &seconds(t.start_ms)]);
    }
    cmd.arg("-i").arg(input);
    let scale = t
        .max_height
        .map(|h| format!("scale=-2:'trunc(min({h},ih)/2)*2'"));
    match t.output {
        Output::Mp4 => {
            if let Some(end) = t.end_ms {
                cmd.args(["-t", &seconds(end.saturating_sub(t.start_ms))]);
            }
            cmd.args(["-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn"]);
            // Even sizes for yuv420p even without a scale.
            let vf = scale.unwrap_or_else(|| "scale=trunc(iw/2)*2:trunc(ih/2)*2".into());
            cmd.args(["-vf", &vf]);
            cmd.args([
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-crf",
                "23",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "128k",
                "-movflags",
                "+faststart",
                "-f",
                "mp4",
                "-y",
            ]);
        }
        Output::Png => {
            cmd.args(["-an", "-sn", "-frames:v", "1"]);
            if let Some(vf) = &scale {
                cmd.args(["-vf", vf]);
            }
            cmd.args(["-c:v", "png", "-f", "image2", "-update", "1", "-y"]);
        }
    }
    cmd.arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| spawn_error("start ffmpeg", e))?;
    let err = drain_stderr(&mut child);
    let status = child
        .wait()
        .map_err(|e| spawn_error("wait for ffmpeg", e))?;
    let stderr = stderr_of(err);
    let written = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    if !status.success() || written == 0 {
        return Err(RenderError::Ffmpeg {
            what: "transcode",
            status: status.to_string(),
            stderr,
        });
    }
    Ok(())
}
