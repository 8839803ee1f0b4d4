//! The built-in visual embedder: no model, no network. A picture (an image, or frames
//! sampled from a video, each scaled to cover [`SIDE`]×[`SIDE`]) becomes four
//! descriptions, each normalised, weighted and concatenated, then normalised as a
//! whole (compare with cosine distance):
//!
//! - **colour**: a soft 4×4×4 RGB histogram (each channel's value shared between its two
//!   nearest bins, so a re-encode's small shifts move weight, not whole pixels);
//! - **layout**: the mean colour of each cell of a 6×6 grid;
//! - **structure**: the 8×8 lowest-frequency DCT coefficients of the 16×16 luma
//!   (DC left out), the picture's coarse shapes;
//! - **texture**: gradient orientations (8 directions) per quadrant, by magnitude.
//!
//! A video's description is the mean over its sampled frames. What it captures:
//! re-encodes, rescales, small crops and colour-preserving edits of the same picture stay
//! near each other; pictures of different colour, layout or structure lie far apart.
//! What it cannot: meaning. Two photographs of the same subject in different light or
//! framing are different pictures to it, and a text cannot be embedded (use an
//! embeddings server for that).

/// Frames are scaled to this square (covering it; the overflow is cropped).
pub const SIDE: usize = 48;
/// Dimensions the embedder produces (before padding to the column's 1024).
pub const DIMS: usize = 64 + 108 + 63 + 32;

const GRID: usize = 6;
const LUMA: usize = 16;
const DCT: usize = 8;

const W_COLOUR: f32 = 1.0;
const W_LAYOUT: f32 = 1.0;
const W_STRUCTURE: f32 = 0.7;
const W_TEXTURE: f32 = 0.5;

/// One frame's description (unnormalised blocks), or `None` for a frame of the wrong
/// size.
fn describe(rgb: &[u8]) -> Option<[Vec<f32>; 4]> {
    if rgb.len() != SIDE * SIDE * 3 {
        return None;
    }
    let px = |x: usize, y: usize| {
        let i = (y * SIDE + x) * 3;
        [
            f32::from(rgb[i]) / 255.0,
            f32::from(rgb[i + 1]) / 255.0,
            f32::from(rgb[i + 2]) / 255.0,
        ]
    };
    // Colour: soft 4 bins per channel (centres at 1/8, 3/8, 5/8, 7/8).
    let mut colour = vec![0f32; 64];
    let soft = |v: f32| -> [(usize, f32); 2] {
        let p = (v * 4.0 - 0.5).clamp(0.0, 3.0);
        let lo = p.floor() as usize;
        let hi = (lo + 1).min(3);
        let t = p - lo as f32;
        [(lo, 1.0 - t), (hi, t)]
    };
    // Layout: 6×6 cells.
    let mut layout = vec![0f32; GRID * GRID * 3];
    let cell = SIDE / GRID;
    // Luma for structure and texture.
    let mut luma = vec![0f32; SIDE * SIDE];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let [r, g, b] = px(x, y);
            for (ri, rw) in soft(r) {
                for (gi, gw) in soft(g) {
                    for (bi, bw) in soft(b) {
                        colour[ri * 16 + gi * 4 + bi] += rw * gw * bw;
                    }
                }
            }
            let c = ((y / cell) * GRID + x / cell) * 3;
            layout[c] += r;
            layout[c + 1] += g;
            layout[c + 2] += b;
            luma[y * SIDE + x] = 0.299 * r + 0.587 * g + 0.114 * b;
        }
    }
    let per_cell = (cell * cell) as f32;
    for v in &mut layout {
        *v /= per_cell;
    }
    // Structure: 16×16 luma (3×3 box means), its 2-D DCT-II, the 8×8 low corner.
    let step = SIDE / LUMA;
    let mut small = [[0f32; LUMA]; LUMA];
    for (by, row) in small.iter_mut().enumerate() {
        for (bx, v) in row.iter_mut().enumerate() {
            let mut s = 0.0;
            for y in by * step..(by + 1) * step {
                for x in bx * step..(bx + 1) * step {
                    s += luma[y * SIDE + x];
                }
            }
            *v = s / (step * step) as f32 - 0.5;
        }
    }
    let n = LUMA as f32;
    let basis =
        |k: usize, i: usize| ((std::f32::consts::PI / n) * (i as f32 + 0.5) * k as f32).cos();
    let mut structure = Vec::with_capacity(DCT * DCT - 1);
    for u in 0..DCT {
        for v in 0..DCT {
            if u == 0 && v == 0 {
                continue;
            }
            let mut s = 0.0;
            for (y, row) in small.iter().enumerate() {
                for (x, val) in row.iter().enumerate() {
                    s += val * basis(u, y) * basis(v, x);
                }
            }
            structure.push(s);
        }
    }
    // Texture: gradient orientation histograms, 8 bins, per quadrant.
    let mut texture = vec![0f32; 32];
    let half = SIDE / 2;
    for y in 1..SIDE - 1 {
        for x in 1..SIDE - 1 {
            let gx = luma[y * SIDE + x + 1] - luma[y * SIDE + x - 1];
            let gy = luma[(y + 1) * SIDE + x] - luma[(y - 1) * SIDE + x];
            let mag = (gx * gx + gy * gy).sqrt();
            if mag < 1e-3 {
                continue;
            }
            // Orientation modulo π: 8 bins.
            let a = gy.atan2(gx).rem_euclid(std::f32::consts::PI);
            let bin = ((a / std::f32::consts::PI * 8.0) as usize).min(7);
            let q = usize::from(y >= half) * 2 + usize::from(x >= half);
            texture[q * 8 + bin] += mag;
        }
    }
    Some([colour, layout, structure, texture])
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 1e-12 {
        for x in v.iter_mut() {
            *x /= n;
        }
    }
}

/// The embedding of frames (RGB, [`SIDE`]×[`SIDE`] each): [`DIMS`] values, unit length.
/// `None` when no frame has the right size.
pub fn embed_frames<'a>(frames: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<f32>> {
    let mut sum: Option<[Vec<f32>; 4]> = None;
    let mut count = 0usize;
    for f in frames {
        let Some(d) = describe(f) else { continue };
        count += 1;
        match &mut sum {
            None => sum = Some(d),
            Some(s) => {
                for (acc, part) in s.iter_mut().zip(d) {
                    for (a, p) in acc.iter_mut().zip(part) {
                        *a += p;
                    }
                }
            }
        }
    }
    let mut blocks = sum?;
    if count == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(DIMS);
    for (block, w) in blocks
        .iter_mut()
        .zip([W_COLOUR, W_LAYOUT, W_STRUCTURE, W_TEXTURE])
    {
        normalise(block);
        out.extend(block.iter().map(|x| x * w));
    }
    normalise(&mut out);
    Some(out)
}

/// Cosine distance of two unit vectors (0: same direction, 2: opposite).
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A test picture: a two-colour gradient with a disc at (cx, cy).
    fn picture(c1: [u8; 3], c2: [u8; 3], cx: f32, cy: f32) -> Vec<u8> {
        let mut v = Vec::with_capacity(SIDE * SIDE * 3);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let t = x as f32 / SIDE as f32;
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                for ch in 0..3 {
                    let g = f32::from(c1[ch]) * (1.0 - t) + f32::from(c2[ch]) * t;
                    let value = if d < 8.0 { 255.0 - g } else { g };
                    v.push(value.clamp(0.0, 255.0) as u8);
                }
            }
        }
        v
    }

    fn noisy(p: &[u8], amount: i32) -> Vec<u8> {
        // Deterministic "re-encode" noise.
        p.iter()
            .enumerate()
            .map(|(i, v)| {
                let n = ((i * 7919) % (2 * amount as usize + 1)) as i32 - amount;
                (i32::from(*v) + n).clamp(0, 255) as u8
            })
            .collect()
    }

    #[test]
    fn a_re_encode_stays_near_and_a_different_picture_lies_far() {
        let a = picture([200, 40, 40], [40, 40, 200], 16.0, 20.0);
        let a_noisy = noisy(&a, 6);
        let a_moved = picture([200, 40, 40], [40, 40, 200], 30.0, 28.0);
        let b = picture([30, 200, 90], [240, 230, 20], 30.0, 10.0);
        let ea = embed_frames([a.as_slice()]).unwrap();
        let en = embed_frames([a_noisy.as_slice()]).unwrap();
        let em = embed_frames([a_moved.as_slice()]).unwrap();
        let eb = embed_frames([b.as_slice()]).unwrap();
        assert_eq!(ea.len(), DIMS);
        let len: f32 = ea.iter().map(|x| x * x).sum();
        assert!((len - 1.0).abs() < 1e-4, "{len}");
        let (dn, dm, db) = (
            cosine_distance(&ea, &en),
            cosine_distance(&ea, &em),
            cosine_distance(&ea, &eb),
        );
        assert!(dn < dm && dm < db, "noise {dn}, moved {dm}, other {db}");
        assert!(dn < 0.05 && dn * 4.0 < db, "noise {dn}, other {db}");
    }

    #[test]
    fn frames_average_and_bad_frames_are_skipped() {
        let a = picture([200, 40, 40], [40, 40, 200], 16.0, 20.0);
        let one = embed_frames([a.as_slice()]).unwrap();
        let two = embed_frames([a.as_slice(), a.as_slice(), &[1, 2, 3][..]]).unwrap();
        assert!(cosine_distance(&one, &two) < 1e-5);
        assert!(embed_frames([&[0u8; 10][..]]).is_none());
        assert!(embed_frames(std::iter::empty::<&[u8]>()).is_none());
    }
}
