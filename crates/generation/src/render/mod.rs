//! The local provider's renderer: H.264 in MP4 (yuv420p, `moov` first) plus a PNG
//! poster, deterministic for the same parameters, seed and inputs (same bytes).
//!
//! Rust draws every frame (`scene.rs`) as RGB24 and pipes it to ffmpeg (`codec.rs`),
//! which also decodes the inputs. `stills.rs` holds what needs no ffmpeg: the bounded
//! GIF/PNG decoder and the fakes' small samples.

use std::sync::Arc;

use sha2::Digest;

use crate::media::sniff;
use crate::model::{InputRole, MediaType, Operation};

pub mod codec;
mod scene;
pub mod stills;

pub use codec::{DecodeSpec, EncodeSpec, Ffmpeg, Fit, Pick, Pixels, THUMBNAIL_MAX};
pub use stills::{MAX_DECODED_PIXELS, Rgba, decode_frames, sample_gif, sample_png};

use scene::{Look, Warp, blend, sprite};

/// Raw pixels (RGB24 or RGBA, as decoded or drawn), row-major without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub px: Vec<u8>,
}

/// Errors of rendering, naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "cannot render {width}x{height} at {fps} fps, {frames} frames (sizes: even, \
         16 to 4096; 1 to 60 fps; 1 to 1200 frames)"
    )]
    Spec {
        width: u32,
        height: u32,
        fps: u32,
        frames: u32,
    },
    #[error("no ffmpeg: {0}")]
    Locate(#[from] embedded::ffmpeg::FfmpegError),
    #[error("cannot {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("ffmpeg {what} failed ({status}): {stderr}")]
    Ffmpeg {
        what: &'static str,
        status: String,
        stderr: String,
    },
    #[error("poster png: {0}")]
    Png(#[from] png::EncodingError),
}

/// splitmix64: a tiny PRNG whose output never changes across library versions.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// An input picture or clip with its role.
#[derive(Debug, Clone)]
pub struct RenderInput {
    pub role: InputRole,
    pub bytes: Arc<Vec<u8>>,
}

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderSpec {
    pub operation: Operation,
    pub prompt: String,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
    /// `motion_mode = fast`: twice the motion.
    pub fast: bool,
    /// libx264 constant rate factor.
    pub crf: u8,
    /// In order.
    pub inputs: Vec<RenderInput>,
}

/// The rendered clip.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub mp4: Vec<u8>,
    /// The middle frame as a PNG.
    pub poster_png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
}

impl Rendered {
    pub fn duration_ms(&self) -> u64 {
        u64::from(self.frames) * 1000 / u64::from(self.fps.max(1))
    }
}

/// The default constant rate factor of local renders.
pub const DEFAULT_CRF: u8 = 23;

/// What the frames are drawn from, with the inputs decoded at the output size.
enum Plan {
    /// The prompt's look alone.
    Text,
    /// Pan and zoom over an image.
    Animate(Frame),
    /// Starts exactly on a clip's last frame, then pans, zooms and brings the look in.
    Extend(Frame),
    /// (first, last) frame of each input: blends each input's last into the next's first.
    Transition(Vec<(Frame, Frame)>),
    /// A background (or the look) with RGBA subject sprites moving over it.
    Fusion {
        background: Option<Frame>,
        subjects: Vec<Frame>,
    },
}

/// Renders the clip (CPU-bound and blocking: call from a blocking thread).
pub fn render(ff: &Ffmpeg, spec: &RenderSpec) -> Result<Rendered, RenderError> {
    render_with_progress(ff, spec, |_| {})
}

/// [`render`], calling `frames_done` with the number of frames drawn so far after each
/// frame (1 to `spec.frames`; ffmpeg may still be encoding the last ones). The output
/// does not depend on it.
pub fn render_with_progress(
    ff: &Ffmpeg,
    spec: &RenderSpec,
    mut frames_done: impl FnMut(u32),
) -> Result<Rendered, RenderError> {
    let (w, h, fps, frames) = (spec.width, spec.height, spec.fps, spec.frames);
    let size_ok = |v: u32| (16..=4096).contains(&v) && v.is_multiple_of(2);
    if !size_ok(w) || !size_ok(h) || !(1..=60).contains(&fps) || !(1..=1200).contains(&frames) {
        return Err(RenderError::Spec {
            width: w,
            height: h,
            fps,
            frames,
        });
    }
    let look = Look::new(
        &spec.prompt,
        spec.seed,
        spec.operation.as_str(),
        h,
        spec.fast,
    );
    let plan = plan(ff, spec);
    let mut warp = Warp::new(w, h);
    let mut poster = Vec::new();
    let last = (frames - 1).max(1) as f32;
    let mp4 = codec::encode(
        ff,
        EncodeSpec {
            width: w,
            height: h,
            fps,
            frames,
            crf: spec.crf,
        },
        |k, out| {
            let t = k as f32 / last;
            let secs = k as f32 / fps as f32;
            draw(&plan, &look, &mut warp, (k, t, secs), (w, h), out);
            if k == frames / 2 {
                poster = out.to_vec();
            }
            frames_done(k + 1);
        },
    )?;
    let poster_png = stills::encode_png_rgb(&poster, w, h)?;
    Ok(Rendered {
        mp4,
        poster_png,
        width: w,
        height: h,
        fps,
        frames,
    })
}

/// One frame: `k` its index, `t` its place in the clip (0..=1), `secs` its time.
fn draw(
    plan: &Plan,
    look: &Look,
    warp: &mut Warp,
    (k, t, secs): (u32, f32, f32),
    (w, h): (u32, u32),
    out: &mut [u8],
) {
    let s = look.speed;
    let pan = |amount: f32| (look.pan.0 * amount * t * s, look.pan.1 * amount * t * s);
    match plan {
        Plan::Text => {
            look.background(k, w, out);
            look.shapes(secs, w, h, 210, out);
        }
        Plan::Animate(img) => warp.apply(img, 1.0 + 0.18 * t * s, pan(0.04), out),
        Plan::Extend(img) => {
            warp.apply(img, 1.0 + 0.12 * t * s, pan(0.05), out);
            look.shapes(secs, w, h, (t * 110.0) as u32, out);
        }
        Plan::Transition(keys) => {
            let segs = keys.len().saturating_sub(1).max(1);
            let pos = (t * segs as f32 * 256.0).round() as usize;
            let i = (pos / 256).min(segs - 1);
            let a = (pos - i * 256).min(256) as u32;
            match (keys.get(i), keys.get(i + 1)) {
                (Some((_, from)), Some((to, _))) => blend(&from.px, &to.px, a, out),
                (Some((_, only)), None) => warp.apply(only, 1.0 + 0.1 * t, (0.0, 0.0), out),
                (None, _) => look.background(k, w, out),
            }
        }
        Plan::Fusion {
            background,
            subjects,
        } => {
            match background {
                Some(bg) => warp.apply(bg, 1.0 + 0.08 * t * s, pan(0.02), out),
                None => look.background(k, w, out),
            }
            let n = subjects.len().max(1) as f32;
            for (i, sub) in subjects.iter().enumerate() {
                let wobble = (secs * std::f32::consts::TAU * 0.3 * s + i as f32).sin();
                let cx = w as f32 * ((i as f32 + 0.5) / n + 0.06 * wobble);
                let cy = h as f32 * 0.55 + h as f32 * 0.03 * wobble;
                let left = cx as i32 - sub.width as i32 / 2;
                let top = cy as i32 - sub.height as i32 / 2;
                sprite(sub, left, top, w, h, out);
            }
        }
    }
}

/// Decodes what the operation works on (an input that does not decode becomes a flat
/// colour from its bytes, so the output still depends on it).
fn plan(ff: &Ffmpeg, spec: &RenderSpec) -> Plan {
    let (w, h) = (spec.width, spec.height);
    let cover =
        |input: &RenderInput, pick: Pick| picture(ff, input, w, h, Fit::Cover, pick, Pixels::Rgb24);
    match spec.operation {
        Operation::TextToVideo => Plan::Text,
        Operation::ImageToVideo => match spec.inputs.first() {
            Some(i) => Plan::Animate(cover(i, Pick::First)),
            None => Plan::Text,
        },
        Operation::VideoExtend => match spec.inputs.first() {
            Some(i) => Plan::Extend(cover(i, Pick::Last)),
            None => Plan::Text,
        },
        Operation::VideoTransition => Plan::Transition(
            spec.inputs
                .iter()
                .map(|i| (cover(i, Pick::First), cover(i, Pick::Last)))
                .collect(),
        ),
        Operation::Fusion => {
            let background = spec
                .inputs
                .iter()
                .find(|i| i.role == InputRole::Background)
                .map(|i| cover(i, Pick::First));
            let (sw, sh) = ((h * 2 / 5).max(2) & !1, (h / 2).max(2) & !1);
            let subjects = spec
                .inputs
                .iter()
                .filter(|i| i.role != InputRole::Background)
                .map(|i| picture(ff, i, sw, sh, Fit::Contain, Pick::First, Pixels::Rgba))
                .collect();
            Plan::Fusion {
                background,
                subjects,
            }
        }
    }
}

/// One decoded frame of an input, or a flat colour from its bytes.
fn picture(
    ff: &Ffmpeg,
    input: &RenderInput,
    width: u32,
    height: u32,
    fit: Fit,
    pick: Pick,
    pixels: Pixels,
) -> Frame {
    let video = sniff(&input.bytes)
        .is_some_and(|s| s.media_type == MediaType::Video && s.mime != "image/gif");
    let spec = DecodeSpec {
        width,
        height,
        fit,
        pick,
        pixels,
        near_end: video,
    };
    match codec::decode_bytes(ff, &input.bytes, spec) {
        Ok(mut frames) if !frames.is_empty() => frames.swap_remove(frames.len() - 1),
        Ok(_) | Err(_) => {
            let b = sha2::Sha256::digest(input.bytes.as_slice());
            let mut px = Vec::with_capacity((width * height) as usize * 4);
            for _ in 0..width * height {
                px.extend_from_slice(&[b[0], b[1], b[2]]);
                if pixels == Pixels::Rgba {
                    px.push(255);
                }
            }
            Frame { width, height, px }
        }
    }
}

/// Output size for a quality and aspect ratio: the quality names the short side.
pub fn output_size(quality: &str, aspect: &str) -> (u32, u32) {
    let short = match quality {
        "540p" => 540,
        "720p" => 720,
        "1080p" => 1080,
        _ => 360,
    };
    let (a, b) = match aspect {
        "4:3" => (4, 3),
        "1:1" => (1, 1),
        "3:4" => (3, 4),
        "9:16" => (9, 16),
        _ => (16, 9),
    };
    if a >= b {
        ((short * a / b) & !1, short)
    } else {
        (short, (short * b / a) & !1)
    }
}
