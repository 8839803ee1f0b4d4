//! Local renderer benchmark: the wall time of each operation rendering a 5 s 640×360
//! 24 fps clip (120 frames, H.264/MP4 through ffmpeg with 2 threads, inputs decoded by
//! ffmpeg as in production), against the target of 2 s per clip.
//!
//! `cargo bench -p generation --bench render`. Environment: `BENCH_RUNS` (5) renders per
//! operation, after one warm-up; the figures are the median and the slowest.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use generation::model::{InputRole, Operation};
use generation::render::stills::encode_png_rgb;
use generation::render::{DEFAULT_CRF, Ffmpeg, RenderInput, RenderSpec, render};

const W: u32 = 640;
const H: u32 = 360;
const FPS: u32 = 24;
const SECS: u32 = 5;
const TARGET: Duration = Duration::from_secs(2);

fn spec(op: Operation, inputs: Vec<RenderInput>) -> RenderSpec {
    RenderSpec {
        operation: op,
        prompt: "a lighthouse at dusk, waves rolling in".into(),
        seed: 42,
        width: W,
        height: H,
        fps: FPS,
        frames: SECS * FPS,
        fast: false,
        crf: DEFAULT_CRF,
        inputs,
    }
}

fn input(role: InputRole, bytes: Vec<u8>) -> RenderInput {
    RenderInput {
        role,
        bytes: Arc::new(bytes),
    }
}

/// A 1280×720 photo-like PNG (gradients and bands), seeded.
fn picture(seed: u32) -> Vec<u8> {
    let (w, h) = (1280u32, 720u32);
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let v = x.wrapping_mul(seed + 3) / 7 + y * (seed + 1) / 3;
            rgb.extend_from_slice(&[(v % 251) as u8, (x * 255 / w) as u8, (y * 255 / h) as u8]);
        }
    }
    encode_png_rgb(&rgb, w, h).unwrap()
}

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let ff = Ffmpeg::locate().expect("ffmpeg");
    let clip = render(&ff, &spec(Operation::TextToVideo, Vec::new()))
        .unwrap()
        .mp4;
    let clip2 = render(
        &ff,
        &RenderSpec {
            seed: 7,
            ..spec(Operation::TextToVideo, Vec::new())
        },
    )
    .unwrap()
    .mp4;
    let cases = [
        (Operation::TextToVideo, Vec::new()),
        (
            Operation::ImageToVideo,
            vec![input(InputRole::SourceImage, picture(1))],
        ),
        (
            Operation::VideoExtend,
            vec![input(InputRole::SourceVideo, clip.clone())],
        ),
        (
            Operation::VideoTransition,
            vec![
                input(InputRole::TransitionInput, clip),
                input(InputRole::TransitionInput, clip2),
            ],
        ),
        (
            Operation::Fusion,
            vec![
                input(InputRole::Background, picture(2)),
                input(InputRole::Subject, picture(3)),
                input(InputRole::Subject, picture(4)),
            ],
        ),
    ];
    println!(
        "render: {SECS} s {W}x{H} {FPS} fps ({} frames), crf {DEFAULT_CRF}, {runs} runs \
         after a warm-up; target ≤ {:.1} s",
        SECS * FPS,
        TARGET.as_secs_f64()
    );
    println!(
        "{:<18} {:>10} {:>10} {:>10}  target",
        "operation", "median ms", "max ms", "KiB"
    );
    let mut all_ok = true;
    for (op, inputs) in cases {
        let s = spec(op, inputs);
        let size = render(&ff, &s).unwrap().mp4.len();
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                render(&ff, &s).unwrap();
                t.elapsed()
            })
            .collect();
        times.sort();
        let (median, max) = (times[times.len() / 2], times[times.len() - 1]);
        let ok = median <= TARGET;
        all_ok &= ok;
        println!(
            "{:<18} {:>10.0} {:>10.0} {:>10.1}  {}",
            op.as_str(),
            median.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            size as f64 / 1024.0,
            if ok { "ok" } else { "MISSED" }
        );
    }
    println!(
        "render target (median ≤ {:.1} s per operation): {}",
        TARGET.as_secs_f64(),
        if all_ok { "met" } else { "MISSED" }
    );
}
