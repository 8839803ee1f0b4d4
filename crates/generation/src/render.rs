//! The local provider's renderer: a real, small animated GIF plus a PNG thumbnail,
//! deterministic for the same parameters, seed and inputs.

use sha2::{Digest, Sha256};

use crate::model::{InputRole, Operation};

/// An RGBA8 image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    pub w: u32,
    pub h: u32,
    pub px: Vec<u8>,
}

impl Rgba {
    pub fn new(w: u32, h: u32) -> Self {
        Rgba {
            w,
            h,
            px: vec![0; (w * h * 4) as usize],
        }
    }
    fn get(&self, x: u32, y: u32) -> [u8; 4] {
        let i = ((y * self.w + x) * 4) as usize;
        [self.px[i], self.px[i + 1], self.px[i + 2], self.px[i + 3]]
    }
}

/// Errors of rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("gif encoding: {0}")]
    Gif(#[from] gif::EncodingError),
    #[error("png encoding: {0}")]
    Png(#[from] png::EncodingError),
    #[error("bad render size {0}x{1}")]
    Size(u32, u32),
}

/// Most pixels [`decode_frames`] keeps in all its frames together (64 MiB as RGBA).
pub const MAX_DECODED_PIXELS: u64 = 16 * 1024 * 1024;

/// Decodes a PNG (one frame) or GIF (its frames, composited, at most 64 and at most
/// [`MAX_DECODED_PIXELS`] in all) to RGBA. `None` for other formats or broken files.
pub fn decode_frames(bytes: &[u8]) -> Option<Vec<Rgba>> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G']) {
        let mut dec = png::Decoder::new(bytes);
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = dec.read_info().ok()?;
        let (iw, ih) = (reader.info().width, reader.info().height);
        if iw > 8192 || ih > 8192 || u64::from(iw) * u64::from(ih) > MAX_DECODED_PIXELS {
            return None;
        }
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).ok()?;
        if info.width > 8192 || info.height > 8192 {
            return None;
        }
        let mut img = Rgba::new(info.width, info.height);
        let n = (info.width * info.height) as usize;
        for i in 0..n {
            let px = match info.color_type {
                png::ColorType::Rgba => {
                    [buf[i * 4], buf[i * 4 + 1], buf[i * 4 + 2], buf[i * 4 + 3]]
                }
                png::ColorType::Rgb => [buf[i * 3], buf[i * 3 + 1], buf[i * 3 + 2], 255],
                png::ColorType::GrayscaleAlpha => {
                    [buf[i * 2], buf[i * 2], buf[i * 2], buf[i * 2 + 1]]
                }
                png::ColorType::Grayscale => [buf[i], buf[i], buf[i], 255],
                png::ColorType::Indexed => return None,
            };
            img.px[i * 4..i * 4 + 4].copy_from_slice(&px);
        }
        return Some(vec![img]);
    }
    if bytes.starts_with(b"GIF8") {
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(bytes).ok()?;
        let (w, h) = (dec.width() as u32, dec.height() as u32);
        if w == 0 || h == 0 || w > 4096 || h > 4096 {
            return None;
        }
        // Every kept frame is a full canvas: keep as many as the pixel budget allows,
        // so a small crafted GIF cannot make the worker hold gigabytes.
        let max_frames = (MAX_DECODED_PIXELS / (u64::from(w) * u64::from(h))).clamp(1, 64) as usize;
        let mut canvas = Rgba::new(w, h);
        let mut frames = Vec::new();
        while let Ok(Some(f)) = dec.read_next_frame() {
            for y in 0..f.height as u32 {
                for x in 0..f.width as u32 {
                    let (cx, cy) = (x + f.left as u32, y + f.top as u32);
                    if cx >= w || cy >= h {
                        continue;
                    }
                    let si = ((y * f.width as u32 + x) * 4) as usize;
                    if f.buffer.get(si + 3).copied().unwrap_or(0) == 0 {
                        continue;
                    }
                    let di = ((cy * w + cx) * 4) as usize;
                    canvas.px[di..di + 4].copy_from_slice(&f.buffer[si..si + 4]);
                }
            }
            frames.push(canvas.clone());
            if frames.len() >= max_frames {
                break;
            }
        }
        return if frames.is_empty() {
            None
        } else {
            Some(frames)
        };
    }
    None
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

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderSpec {
    pub operation: Operation,
    pub prompt: String,
    pub seed: u64,
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: u32,
    pub fast: bool,
    /// Decoded inputs with their roles, in order.
    pub inputs: Vec<(InputRole, Vec<Rgba>)>,
}

/// The rendered clip.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub gif: Vec<u8>,
    pub thumbnail_png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub duration_ms: u64,
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = (h.rem_euclid(1.0)) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Samples an image with "cover" fit and a zoom/pan, nearest neighbour.
fn sample_cover(
    img: &Rgba,
    x: f32,
    y: f32,
    w: u32,
    h: u32,
    zoom: f32,
    pan: (f32, f32),
) -> [f32; 3] {
    let scale = (img.w as f32 / w as f32).min(img.h as f32 / h as f32) / zoom;
    let cx = img.w as f32 / 2.0 + (x - w as f32 / 2.0) * scale + pan.0 * img.w as f32;
    let cy = img.h as f32 / 2.0 + (y - h as f32 / 2.0) * scale + pan.1 * img.h as f32;
    let sx = (cx.max(0.0) as u32).min(img.w - 1);
    let sy = (cy.max(0.0) as u32).min(img.h - 1);
    let p = img.get(sx, sy);
    [
        p[0] as f32 / 255.0,
        p[1] as f32 / 255.0,
        p[2] as f32 / 255.0,
    ]
}

struct Blob {
    color: [f32; 3],
    radius: f32,
    fx: f32,
    fy: f32,
    phase: f32,
}

/// What a clip is drawn from: its colours, blobs and input images.
struct Scene<'a> {
    c1: [f32; 3],
    c2: [f32; 3],
    blobs: Vec<Blob>,
    speed: f32,
    images: Vec<&'a Vec<Rgba>>,
    background: Option<&'a Rgba>,
    subjects: Vec<&'a Rgba>,
}

impl<'a> Scene<'a> {
    /// The colours and blobs follow from the seed, the prompt and the operation.
    fn new(spec: &'a RenderSpec) -> Self {
        let digest = Sha256::digest(format!("{}|{}", spec.prompt, spec.operation).as_bytes());
        let mut prompt_bits = [0u8; 8];
        prompt_bits.copy_from_slice(&digest[..8]);
        let mut rng = SplitMix::new(spec.seed ^ u64::from_le_bytes(prompt_bits));
        let hue = rng.unit();
        let c1 = hsv(hue, 0.6, 0.9);
        let c2 = hsv(hue + 0.35 + rng.unit() * 0.2, 0.7, 0.35);
        let h = spec.height;
        let blobs: Vec<Blob> = (0..3 + (rng.next_u64() % 4) as usize)
            .map(|_| Blob {
                color: hsv(hue + rng.unit() * 0.5 - 0.25, 0.8, 1.0),
                radius: (0.08 + rng.unit() * 0.12) * h as f32,
                fx: 1.0 + (rng.next_u64() % 3) as f32,
                fy: 1.0 + (rng.next_u64() % 3) as f32,
                phase: rng.unit() * std::f32::consts::TAU,
            })
            .collect();
        Scene {
            c1,
            c2,
            blobs,
            speed: if spec.fast { 2.0 } else { 1.0 },
            images: spec.inputs.iter().map(|(_, f)| f).collect(),
            background: spec
                .inputs
                .iter()
                .find(|(r, _)| *r == InputRole::Background)
                .and_then(|(_, f)| f.first()),
            subjects: spec
                .inputs
                .iter()
                .filter(|(r, _)| *r == InputRole::Subject)
                .filter_map(|(_, f)| f.first())
                .collect(),
        }
    }

    /// One frame at time `t` (0..1).
    fn frame(&self, spec: &RenderSpec, t: f32) -> Vec<[f32; 3]> {
        let (w, h) = (spec.width, spec.height);
        let mut buf = vec![[0f32; 3]; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                buf[(y * w + x) as usize] = self.base_pixel(spec, x, y, t);
            }
        }
        // Fusion subjects as moving sprites; otherwise glowing blobs.
        if spec.operation == Operation::Fusion && !self.subjects.is_empty() {
            self.draw_subjects(&mut buf, w, h, t);
        } else {
            self.draw_blobs(&mut buf, w, h, t);
        }
        buf
    }

    /// The gradient, or the operation's input image, at one pixel.
    fn base_pixel(&self, spec: &RenderSpec, x: u32, y: u32, t: f32) -> [f32; 3] {
        let (w, h) = (spec.width, spec.height);
        let (c1, c2, speed, images) = (self.c1, self.c2, self.speed, &self.images);
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let g = ((fx + fy) * 0.5 + t * 0.5 * speed).fract();
        let g = (g * std::f32::consts::TAU).sin() * 0.5 + 0.5;
        let mut c = [
            c1[0] * g + c2[0] * (1.0 - g),
            c1[1] * g + c2[1] * (1.0 - g),
            c1[2] * g + c2[2] * (1.0 - g),
        ];
        match spec.operation {
            Operation::ImageToVideo => {
                if let Some(img) = images.first().and_then(|f| f.first()) {
                    let zoom = 1.0 + 0.2 * t * speed;
                    c = sample_cover(img, x as f32, y as f32, w, h, zoom, (0.0, 0.0));
                }
            }
            Operation::VideoExtend => {
                if let Some(img) = images.first().and_then(|f| f.last()) {
                    let pan = (0.08 * t * speed, 0.03 * (t * 3.0).sin());
                    c = sample_cover(img, x as f32, y as f32, w, h, 1.05, pan);
                }
            }
            Operation::VideoTransition if images.len() >= 2 => {
                let segs = (images.len() - 1) as f32;
                let pos = (t * segs).min(segs - 0.0001);
                let i = pos.floor() as usize;
                let a = pos - i as f32;
                if let (Some(ia), Some(ib)) =
                    (images[i].first(), images.get(i + 1).and_then(|f| f.first()))
                {
                    let pa = sample_cover(ia, x as f32, y as f32, w, h, 1.0, (0.0, 0.0));
                    let pb = sample_cover(ib, x as f32, y as f32, w, h, 1.0, (0.0, 0.0));
                    c = [
                        pa[0] * (1.0 - a) + pb[0] * a,
                        pa[1] * (1.0 - a) + pb[1] * a,
                        pa[2] * (1.0 - a) + pb[2] * a,
                    ];
                }
            }
            Operation::Fusion => {
                if let Some(bg) = self.background {
                    let zoom = 1.0 + 0.1 * t;
                    c = sample_cover(bg, x as f32, y as f32, w, h, zoom, (0.0, 0.0));
                }
            }
            Operation::TextToVideo | Operation::VideoTransition => {}
        }
        c
    }

    /// Fusion subjects as sprites moving along the frame.
    #[allow(clippy::needless_range_loop)]
    fn draw_subjects(&self, buf: &mut [[f32; 3]], w: u32, h: u32, t: f32) {
        let n = self.subjects.len() as f32;
        for (i, img) in self.subjects.iter().enumerate() {
            let sh = (h as f32 * 0.5) as u32;
            let sw = ((img.w as f32 / img.h as f32) * sh as f32).max(1.0) as u32;
            let cx = w as f32 * (i as f32 + 0.5) / n
                + (t * std::f32::consts::TAU * self.speed + i as f32).sin() * w as f32 * 0.05;
            let cy = h as f32 * 0.55;
            for sy in 0..sh {
                for sx in 0..sw {
                    let px = cx as i64 - sw as i64 / 2 + sx as i64;
                    let py = cy as i64 - sh as i64 / 2 + sy as i64;
                    if px < 0 || py < 0 || px >= w as i64 || py >= h as i64 {
                        continue;
                    }
                    let p = img.get(
                        (sx * img.w / sw).min(img.w - 1),
                        (sy * img.h / sh).min(img.h - 1),
                    );
                    let a = p[3] as f32 / 255.0;
                    let d = &mut buf[(py as u32 * w + px as u32) as usize];
                    for ch in 0..3 {
                        d[ch] = d[ch] * (1.0 - a) + p[ch] as f32 / 255.0 * a;
                    }
                }
            }
        }
    }

    /// Glowing blobs circling the frame (fainter over input images).
    #[allow(clippy::needless_range_loop)]
    fn draw_blobs(&self, buf: &mut [[f32; 3]], w: u32, h: u32, t: f32) {
        let strength = if self.images.is_empty() { 0.9 } else { 0.35 };
        for b in &self.blobs {
            let ang = t * std::f32::consts::TAU * self.speed;
            let bx = w as f32 * (0.5 + 0.38 * (ang * b.fx + b.phase).sin());
            let by = h as f32 * (0.5 + 0.38 * (ang * b.fy + b.phase * 1.3).cos());
            let r = b.radius;
            let (x0, x1) = ((bx - r).max(0.0) as u32, ((bx + r) as u32).min(w - 1));
            let (y0, y1) = ((by - r).max(0.0) as u32, ((by + r) as u32).min(h - 1));
            for y in y0..=y1 {
                for x in x0..=x1 {
                    let d = ((x as f32 - bx).powi(2) + (y as f32 - by).powi(2)).sqrt() / r;
                    if d < 1.0 {
                        let a = (1.0 - d * d) * strength;
                        let p = &mut buf[(y * w + x) as usize];
                        for ch in 0..3 {
                            p[ch] = p[ch] * (1.0 - a) + b.color[ch] * a;
                        }
                    }
                }
            }
        }
    }
}

/// Renders the clip.
pub fn render(spec: &RenderSpec) -> Result<Rendered, RenderError> {
    let (w, h) = (spec.width, spec.height);
    if w == 0 || h == 0 || w > 2048 || h > 2048 || spec.frames == 0 {
        return Err(RenderError::Size(w, h));
    }
    let scene = Scene::new(spec);
    let frames_rgb: Vec<Vec<[f32; 3]>> = (0..spec.frames)
        .map(|k| scene.frame(spec, k as f32 / spec.frames.max(2) as f32))
        .collect();
    let gif_bytes = encode_gif(&frames_rgb, w, h, spec.fps)?;
    let png_bytes = encode_png(&frames_rgb[frames_rgb.len() / 2], w, h)?;
    Ok(Rendered {
        gif: gif_bytes,
        thumbnail_png: png_bytes,
        width: w,
        height: h,
        duration_ms: spec.frames as u64 * (100 / spec.fps.max(1)) as u64 * 10,
    })
}

/// The frames as an endless GIF: a fixed 6×7×6 colour cube with ordered dithering
/// (fast and deterministic).
fn encode_gif(
    frames_rgb: &[Vec<[f32; 3]>],
    w: u32,
    h: u32,
    fps: u32,
) -> Result<Vec<u8>, RenderError> {
    let mut palette = Vec::with_capacity(256 * 3);
    for r in 0..6u32 {
        for g in 0..7u32 {
            for b in 0..6u32 {
                palette.extend_from_slice(&[(r * 51) as u8, (g * 255 / 6) as u8, (b * 51) as u8]);
            }
        }
    }
    palette.resize(256 * 3, 0);
    const BAYER: [f32; 16] = [
        0.0, 8.0, 2.0, 10.0, 12.0, 4.0, 14.0, 6.0, 3.0, 11.0, 1.0, 9.0, 15.0, 7.0, 13.0, 5.0,
    ];
    let mut gif_bytes = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut gif_bytes, w as u16, h as u16, &palette)?;
        enc.set_repeat(gif::Repeat::Infinite)?;
        let delay = (100 / fps.max(1)) as u16;
        for buf in frames_rgb {
            let mut idx = Vec::with_capacity(buf.len());
            for (i, c) in buf.iter().enumerate() {
                let (x, y) = (i as u32 % w, i as u32 / w);
                let d = BAYER[((y % 4) * 4 + x % 4) as usize] / 16.0 - 0.5;
                let q = |v: f32, levels: f32| -> u8 {
                    ((v.clamp(0.0, 1.0) * (levels - 1.0) + d).round()).clamp(0.0, levels - 1.0)
                        as u8
                };
                idx.push(q(c[0], 6.0) * 42 + q(c[1], 7.0) * 6 + q(c[2], 6.0));
            }
            let mut frame = gif::Frame::from_indexed_pixels(w as u16, h as u16, idx, None);
            frame.delay = delay;
            enc.write_frame(&frame)?;
        }
    }
    Ok(gif_bytes)
}

/// One frame as an RGB PNG (the thumbnail).
fn encode_png(frame: &[[f32; 3]], w: u32, h: u32) -> Result<Vec<u8>, RenderError> {
    let mut rgb = Vec::with_capacity(frame.len() * 3);
    for c in frame {
        for ch in c {
            rgb.push((ch.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut png_bytes, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&rgb)?;
        writer.finish()?;
    }
    Ok(png_bytes)
}

/// Output size for a quality and aspect ratio (small: the local provider is a stand-in).
pub fn output_size(quality: &str, aspect: &str) -> (u32, u32) {
    let short = match quality {
        "540p" => 108,
        "720p" => 144,
        "1080p" => 216,
        _ => 72,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF of a few hundred bytes: a 4096x4096 canvas and 64 one-pixel frames.
    fn bomb() -> Vec<u8> {
        let mut out = Vec::new();
        {
            let palette = [0u8, 0, 0, 255, 255, 255];
            let mut enc = gif::Encoder::new(&mut out, 4096, 4096, &palette).expect("encoder");
            for i in 0..64u8 {
                let f = gif::Frame {
                    width: 1,
                    height: 1,
                    buffer: std::borrow::Cow::Owned(vec![i % 2]),
                    ..Default::default()
                };
                enc.write_frame(&f).expect("frame");
            }
        }
        out
    }

    #[test]
    fn a_small_gif_cannot_make_the_decoder_hold_gigabytes() {
        let b = bomb();
        assert!(b.len() < 4096, "{} bytes", b.len());
        let frames = decode_frames(&b).expect("decodes");
        let pixels: u64 = frames.iter().map(|f| u64::from(f.w) * u64::from(f.h)).sum();
        // Before the budget: 64 canvases of 16 Mpx, 4 GiB.
        assert!(pixels <= MAX_DECODED_PIXELS, "{pixels} pixels kept");
        assert!(!frames.is_empty());
    }
}
