//! What each frame shows, drawn into RGB24 buffers with integer math (a few floats per
//! frame or row, none per pixel): the procedural look of a prompt and the pan, zoom,
//! blend and composite of input pictures.

use sha2::{Digest, Sha256};

use super::{Frame, SplitMix};

const TAU: f32 = std::f32::consts::TAU;

/// A moving disc or square of the procedural look.
struct Shape {
    color: [u8; 3],
    /// Radius (half side) in pixels.
    r: i32,
    square: bool,
    /// Orbit frequencies (turns per second) and phase.
    fx: f32,
    fy: f32,
    phase: f32,
}

/// The procedural look of a prompt and seed: a scrolling gradient and shapes on orbits.
pub(super) struct Look {
    /// The gradient, a triangle wave over 512 steps.
    lut: Vec<[u8; 3]>,
    ax: u32,
    ay: u32,
    /// Gradient steps per frame.
    step: u32,
    shapes: Vec<Shape>,
    /// Pan direction of warps, in thousandths of the frame per second.
    pub(super) pan: (f32, f32),
    /// Motion multiplier (`motion_mode = fast`: 2).
    pub(super) speed: f32,
}

fn hsv(h: f32, s: f32, v: f32) -> [u8; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let c = match i as i32 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    };
    c.map(|x| (x.clamp(0.0, 1.0) * 255.0).round() as u8)
}

impl Look {
    /// Everything follows from the prompt, the seed and the operation's name: the
    /// palette from the prompt and operation alone (as a model keeps a prompt's
    /// colours across seeds), the shapes, their orbits and the motion from the seed
    /// too.
    pub(super) fn new(prompt: &str, seed: u64, op: &str, h: u32, fast: bool) -> Self {
        let digest = Sha256::digest(format!("{prompt}|{op}").as_bytes());
        let mut bits = [0u8; 8];
        bits.copy_from_slice(&digest[..8]);
        let prompt_bits = u64::from_le_bytes(bits);
        let mut palette = SplitMix::new(prompt_bits);
        let hue = palette.unit();
        let c1 = hsv(hue, 0.55, 0.95);
        let c2 = hsv(hue + 0.35 + palette.unit() * 0.2, 0.7, 0.3);
        let mut rng = SplitMix::new(seed ^ prompt_bits);
        let lut = (0..512u32)
            .map(|i| {
                let g = if i < 256 { i } else { 511 - i };
                let mix =
                    |a: u8, b: u8| ((u32::from(a) * g + u32::from(b) * (255 - g)) / 255) as u8;
                [mix(c1[0], c2[0]), mix(c1[1], c2[1]), mix(c1[2], c2[2])]
            })
            .collect();
        let shapes = (0..3 + rng.next_u64() % 4)
            .map(|_| Shape {
                color: hsv(hue + rng.unit() * 0.2 - 0.1, 0.8, 1.0),
                r: ((0.06 + rng.unit() * 0.1) * h as f32).max(2.0) as i32,
                square: rng.next_u64().is_multiple_of(3),
                fx: 0.1 + rng.unit() * 0.25,
                fy: 0.1 + rng.unit() * 0.25,
                phase: rng.unit() * TAU,
            })
            .collect();
        let angle = rng.unit() * TAU;
        Look {
            lut,
            ax: 1 + (rng.next_u64() % 3) as u32,
            ay: 1 + (rng.next_u64() % 3) as u32,
            step: 5 + (rng.next_u64() % 4) as u32,
            shapes,
            pan: (angle.cos(), angle.sin()),
            speed: if fast { 2.0 } else { 1.0 },
        }
    }

    /// The gradient background of frame `k`.
    pub(super) fn background(&self, k: u32, w: u32, out: &mut [u8]) {
        let off = k.wrapping_mul(self.step).wrapping_mul(self.speed as u32);
        for (y, row) in out.chunks_exact_mut(w as usize * 3).enumerate() {
            let base = (y as u32) * self.ay;
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let i = (((base + x as u32 * self.ax) >> 1).wrapping_add(off) & 511) as usize;
                px.copy_from_slice(&self.lut[i]);
            }
        }
    }

    /// The shapes at `secs` seconds, blended with `alpha` (0..=256).
    pub(super) fn shapes(&self, secs: f32, w: u32, h: u32, alpha: u32, out: &mut [u8]) {
        if alpha == 0 {
            return;
        }
        for s in &self.shapes {
            let a = secs * TAU * self.speed;
            let cx = w as f32 * (0.5 + 0.36 * (a * s.fx + s.phase).sin());
            let cy = h as f32 * (0.5 + 0.34 * (a * s.fy + s.phase * 1.3).cos());
            let (cx, cy) = (cx as i32, cy as i32);
            for dy in -s.r..=s.r {
                let half = if s.square {
                    s.r
                } else {
                    ((s.r * s.r - dy * dy) as f32).sqrt() as i32
                };
                fill_span(out, w, h, cy + dy, cx - half, cx + half, s.color, alpha);
            }
        }
    }
}

/// Blends `color` over row `y` from `x0` to `x1` (inclusive), clipped to the frame.
#[allow(clippy::too_many_arguments)]
fn fill_span(out: &mut [u8], w: u32, h: u32, y: i32, x0: i32, x1: i32, color: [u8; 3], alpha: u32) {
    if y < 0 || y >= h as i32 {
        return;
    }
    let (x0, x1) = (x0.max(0) as usize, x1.min(w as i32 - 1));
    if x1 < 0 || x0 > x1 as usize {
        return;
    }
    let row = y as usize * w as usize * 3;
    let keep = 256 - alpha;
    for px in out[row + x0 * 3..row + (x1 as usize + 1) * 3].chunks_exact_mut(3) {
        for c in 0..3 {
            px[c] = ((u32::from(px[c]) * keep + u32::from(color[c]) * alpha) >> 8) as u8;
        }
    }
}

/// Column and row source offsets of a zoom (≥ 1, about the centre) and a pan (in
/// fractions of the frame); zoom 1 and no pan is the identity.
pub(super) struct Warp {
    xs: Vec<usize>,
    ys: Vec<usize>,
}

impl Warp {
    pub(super) fn new(w: u32, h: u32) -> Self {
        Warp {
            xs: vec![0; w as usize],
            ys: vec![0; h as usize],
        }
    }

    /// Copies `src` (same size as the output) zoomed and panned into `out`.
    pub(super) fn apply(&mut self, src: &Frame, zoom: f32, pan: (f32, f32), out: &mut [u8]) {
        let (w, h) = (src.width as f32, src.height as f32);
        let map = |n: f32, i: usize, pan: f32| -> usize {
            let v = (i as f32 + 0.5 - n / 2.0) / zoom + n / 2.0 + pan * n;
            v.floor().clamp(0.0, n - 1.0) as usize
        };
        for (i, x) in self.xs.iter_mut().enumerate() {
            *x = map(w, i, pan.0) * 3;
        }
        for (i, y) in self.ys.iter_mut().enumerate() {
            *y = map(h, i, pan.1) * src.width as usize * 3;
        }
        let stride = src.width as usize * 3;
        for (row, &sy) in out.chunks_exact_mut(stride).zip(&self.ys) {
            let srow = &src.px[sy..sy + stride];
            for (px, &sx) in row.chunks_exact_mut(3).zip(&self.xs) {
                px.copy_from_slice(&srow[sx..sx + 3]);
            }
        }
    }
}

/// `out = a × (256 − k) + b × k` (k in 0..=256), per byte.
pub(super) fn blend(a: &[u8], b: &[u8], k: u32, out: &mut [u8]) {
    let keep = 256 - k;
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = ((u32::from(x) * keep + u32::from(y) * k) >> 8) as u8;
    }
}

/// Draws an RGBA sprite with its top-left corner at (`left`, `top`), clipped.
pub(super) fn sprite(sprite: &Frame, left: i32, top: i32, w: u32, h: u32, out: &mut [u8]) {
    let (sw, sh) = (sprite.width as i32, sprite.height as i32);
    for sy in 0..sh {
        let y = top + sy;
        if y < 0 || y >= h as i32 {
            continue;
        }
        for sx in 0..sw {
            let x = left + sx;
            if x < 0 || x >= w as i32 {
                continue;
            }
            let si = ((sy * sw + sx) * 4) as usize;
            let a = u32::from(sprite.px[si + 3]);
            if a == 0 {
                continue;
            }
            let di = (y as usize * w as usize + x as usize) * 3;
            for c in 0..3 {
                let d = u32::from(out[di + c]);
                out[di + c] = ((d * (255 - a) + u32::from(sprite.px[si + c]) * a) / 255) as u8;
            }
        }
    }
}
