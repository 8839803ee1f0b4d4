//! Embedding time per asset (issue #23): the built-in visual embedder
//! ([`generation::embed::VisualEmbedder`]) on a 5 s 640×360 24 fps clip rendered by the
//! local renderer (ffmpeg samples 2 frames a second, at most 16, at 48×48), and on its
//! 640×360 PNG poster.
//!
//! `cargo bench -p generation --bench embed`. Environment: `BENCH_RUNS` (10) after one
//! warm-up; the figures are the median and the slowest.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use generation::embed::VisualEmbedder;
use generation::model::{MediaType, Operation};
use generation::render::{DEFAULT_CRF, Ffmpeg, RenderSpec, render};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[t.len() / 2], t[t.len() - 1])
}

fn main() {
    let runs = env_num("BENCH_RUNS", 10) as usize;
    let ff = Ffmpeg::locate().unwrap();
    let clip = render(
        &ff,
        &RenderSpec {
            operation: Operation::TextToVideo,
            prompt: "a lighthouse at dusk, waves rolling in".into(),
            seed: 42,
            width: 640,
            height: 360,
            fps: 24,
            frames: 120,
            fast: false,
            crf: DEFAULT_CRF,
            inputs: Vec::new(),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("clip.mp4");
    let poster = dir.path().join("poster.png");
    std::fs::write(&video, &clip.mp4).unwrap();
    std::fs::write(&poster, &clip.poster_png).unwrap();
    let e = VisualEmbedder::with_ffmpeg(ff.path());
    let (vm, vx) = time(runs, || {
        assert!(e.embed_path(&video, MediaType::Video).unwrap().is_some());
    });
    let (im, ix) = time(runs, || {
        assert!(e.embed_path(&poster, MediaType::Image).unwrap().is_some());
    });
    println!(
        "== visual embedder ({}), {runs} runs ==",
        VisualEmbedder::ID
    );
    println!(
        "5 s 640×360 clip: median {:.0} ms (slowest {:.0} ms)",
        vm.as_secs_f64() * 1e3,
        vx.as_secs_f64() * 1e3
    );
    println!(
        "640×360 PNG: median {:.0} ms (slowest {:.0} ms)",
        im.as_secs_f64() * 1e3,
        ix.as_secs_f64() * 1e3
    );
}
