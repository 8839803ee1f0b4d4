//! Still images without ffmpeg: a bounded GIF/PNG decoder (untrusted input) and small
//! deterministic GIF/PNG samples for the provider fakes.

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

/// A small animated GIF (a scrolling gradient, `frames` frames of `w`×`h`), deterministic
/// per seed: the fakes' stand-in for a provider's video.
pub fn sample_gif(seed: u64, w: u16, h: u16, frames: u16, fps: u16) -> Vec<u8> {
    let mut palette = Vec::with_capacity(256 * 3);
    for i in 0..256u32 {
        palette.extend_from_slice(&[i as u8, (255 - i) as u8, (i * 7 % 256) as u8]);
    }
    let mut out = Vec::new();
    let Ok(mut enc) = gif::Encoder::new(&mut out, w, h, &palette) else {
        return Vec::new();
    };
    if enc.set_repeat(gif::Repeat::Infinite).is_err() {
        return Vec::new();
    }
    let base = (seed % 256) as u32;
    for k in 0..u32::from(frames) {
        let idx: Vec<u8> = (0..u32::from(w) * u32::from(h))
            .map(|i| {
                let (x, y) = (i % u32::from(w), i / u32::from(w));
                ((base + x * 4 + y * 2 + k * 16) % 256) as u8
            })
            .collect();
        let mut f = gif::Frame::from_indexed_pixels(w, h, idx, None);
        f.delay = 100 / fps.max(1);
        if enc.write_frame(&f).is_err() {
            return Vec::new();
        }
    }
    drop(enc);
    out
}

/// A small RGB PNG (a gradient), deterministic per seed.
pub fn sample_png(seed: u64, w: u32, h: u32) -> Vec<u8> {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let v = (seed as u32).wrapping_add(x * 8 + y * 4);
            rgb.extend_from_slice(&[v as u8, (v >> 1) as u8, 255 - v as u8]);
        }
    }
    encode_png_rgb(&rgb, w, h).unwrap_or_default()
}

/// RGB24 pixels as a PNG.
pub fn encode_png_rgb(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
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
