//! The local renderer's output, decoded: each operation makes H.264/MP4 of the asked
//! size, frame count and rate (read by the MP4 parser), does its work on its inputs,
//! and renders the same bytes for the same inputs.

use std::sync::Arc;

use generation::media::mp4;
use generation::model::{InputRole, Operation};
use generation::render::codec::{decode_bytes, thumbnail_file};
use generation::render::stills::encode_png_rgb;
use generation::render::{
    DEFAULT_CRF, DecodeSpec, Ffmpeg, Fit, Frame, Pick, Pixels, RenderInput, RenderSpec, Rendered,
    render,
};

const W: u32 = 320;
const H: u32 = 180;
const FPS: u32 = 24;
const FRAMES: u32 = 48;

fn ff() -> Ffmpeg {
    Ffmpeg::locate().expect("ffmpeg")
}

fn spec(op: Operation, seed: u64, inputs: Vec<RenderInput>) -> RenderSpec {
    RenderSpec {
        operation: op,
        prompt: "a lighthouse at dusk".into(),
        seed,
        width: W,
        height: H,
        fps: FPS,
        frames: FRAMES,
        fast: false,
        crf: DEFAULT_CRF,
        inputs,
    }
}

fn run(op: Operation, seed: u64, inputs: Vec<RenderInput>) -> Rendered {
    render(&ff(), &spec(op, seed, inputs)).expect("render")
}

fn input(role: InputRole, bytes: Vec<u8>) -> RenderInput {
    RenderInput {
        role,
        bytes: Arc::new(bytes),
    }
}

/// A PNG of `w`×`h` filled by `f(x, y)`.
fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut rgb = Vec::new();
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&f(x, y));
        }
    }
    encode_png_rgb(&rgb, w, h).expect("png")
}

/// Every frame, at the size the file itself says.
fn decode(mp4_bytes: &[u8]) -> Vec<Frame> {
    let v = mp4::parse(mp4_bytes).expect("mp4").video.expect("video");
    decode_bytes(
        &ff(),
        mp4_bytes,
        DecodeSpec {
            width: v.width,
            height: v.height,
            fit: Fit::Native,
            pick: Pick::All(10_000),
            pixels: Pixels::Rgb24,
            near_end: false,
        },
    )
    .expect("decode")
}

/// Mean absolute difference per byte.
fn diff(a: &Frame, b: &Frame) -> f64 {
    assert_eq!(a.px.len(), b.px.len());
    let sum: u64 =
        a.px.iter()
            .zip(&b.px)
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
    sum as f64 / a.px.len() as f64
}

/// The mean colour of a frame.
fn mean(f: &Frame) -> [f64; 3] {
    let mut s = [0u64; 3];
    for px in f.px.chunks_exact(3) {
        for c in 0..3 {
            s[c] += u64::from(px[c]);
        }
    }
    let n = (f.px.len() / 3) as f64;
    s.map(|v| v as f64 / n)
}

/// The file's boxes say what was asked for, and it decodes to that many frames.
fn check_shape(out: &Rendered) -> Vec<Frame> {
    let info = mp4::parse(&out.mp4).expect("parses");
    let v = info.video.expect("a video track");
    assert_eq!(&v.codec, b"avc1");
    assert_eq!((v.width, v.height), (W, H));
    assert_eq!(v.frames, u64::from(FRAMES));
    assert_eq!(v.fps_milli, Some(u64::from(FPS) * 1000));
    assert_eq!(info.duration_ms, Some(2000));
    // moov before mdat: a browser starts at once.
    let moov = out.mp4.windows(4).position(|w| w == b"moov").expect("moov");
    let mdat = out.mp4.windows(4).position(|w| w == b"mdat").expect("mdat");
    assert!(moov < mdat, "moov at {moov}, mdat at {mdat}");
    assert!(out.poster_png.starts_with(b"\x89PNG"));
    let frames = decode(&out.mp4);
    assert_eq!(frames.len(), FRAMES as usize);
    frames
}

#[test]
fn text_to_video_moves_and_is_deterministic_per_seed() {
    let a = run(Operation::TextToVideo, 5, Vec::new());
    let frames = check_shape(&a);
    let motion = diff(&frames[0], &frames[FRAMES as usize - 1]);
    eprintln!(
        "text_to_video: first/last differ by {motion:.2}; {} bytes",
        a.mp4.len()
    );
    assert!(motion > 8.0, "first and last frames too alike: {motion}");
    let again = run(Operation::TextToVideo, 5, Vec::new());
    assert!(a.mp4 == again.mp4, "same seed, different bytes");
    assert_eq!(a.poster_png, again.poster_png);
    let other = run(Operation::TextToVideo, 6, Vec::new());
    assert!(a.mp4 != other.mp4, "another seed, same bytes");
}

#[test]
fn image_to_video_starts_on_the_image_and_zooms_into_it() {
    // Left half red, right half blue, a white bar at the top.
    let img = png(W, H, |x, y| match (y < 20, x < W / 2) {
        (true, _) => [255, 255, 255],
        (false, true) => [220, 30, 30],
        (false, false) => [30, 30, 220],
    });
    let out = run(
        Operation::ImageToVideo,
        1,
        vec![input(InputRole::SourceImage, img.clone())],
    );
    let frames = check_shape(&out);
    let still = decode_bytes(
        &ff(),
        &img,
        DecodeSpec {
            width: W,
            height: H,
            fit: Fit::Native,
            pick: Pick::First,
            pixels: Pixels::Rgb24,
            near_end: false,
        },
    )
    .expect("png decodes")
    .remove(0);
    let start = diff(&frames[0], &still);
    let end = diff(&frames[FRAMES as usize - 1], &still);
    eprintln!("image_to_video: start {start:.2}, end {end:.2}");
    assert!(start < 4.0, "the first frame is not the image: {start}");
    assert!(
        end > start + 4.0,
        "no zoom or pan: start {start}, end {end}"
    );
}

#[test]
fn video_extend_starts_on_the_inputs_last_frame() {
    let source = run(Operation::TextToVideo, 9, Vec::new());
    let src = decode(&source.mp4);
    let out = run(
        Operation::VideoExtend,
        2,
        vec![input(InputRole::SourceVideo, source.mp4.clone())],
    );
    let frames = check_shape(&out);
    let last = src.last().expect("frames");
    let at_seam = diff(&frames[0], last);
    let from_start = diff(&frames[0], &src[0]);
    eprintln!("extend: seam {at_seam:.2}, against the input's first frame {from_start:.2}");
    assert!(
        at_seam < 4.0,
        "first frame is not the input's last: {at_seam}"
    );
    assert!(
        from_start > at_seam + 4.0,
        "the input's first frame matches as well ({from_start}): the check proves nothing"
    );
}

#[test]
fn video_transition_blends_one_input_into_the_next() {
    let red = png(64, 36, |_, _| [230, 20, 20]);
    let blue = png(64, 36, |_, _| [20, 20, 230]);
    let out = run(
        Operation::VideoTransition,
        3,
        vec![
            input(InputRole::TransitionInput, red),
            input(InputRole::TransitionInput, blue),
        ],
    );
    let frames = check_shape(&out);
    let [r0, _, b0] = mean(&frames[0]);
    let [r1, _, b1] = mean(&frames[FRAMES as usize - 1]);
    assert!(r0 > 200.0 && b0 < 50.0, "starts red: {r0} {b0}");
    assert!(r1 < 50.0 && b1 > 200.0, "ends blue: {r1} {b1}");
    let [rm, _, bm] = mean(&frames[FRAMES as usize / 2]);
    eprintln!(
        "transition: first r {r0:.0} b {b0:.0}, middle r {rm:.0} b {bm:.0}, last r {r1:.0} b {b1:.0}"
    );
    for v in [rm, bm] {
        assert!(
            (80.0..=170.0).contains(&v),
            "middle frame no mix: r {rm}, b {bm}"
        );
    }
}

#[test]
fn fusion_composites_subjects_over_the_background() {
    let green = png(W, H, |_, _| [20, 200, 20]);
    let magenta = png(40, 80, |_, _| [230, 20, 230]);
    let out = run(
        Operation::Fusion,
        4,
        vec![
            input(InputRole::Background, green),
            input(InputRole::Subject, magenta),
        ],
    );
    let frames = check_shape(&out);
    for f in [&frames[0], &frames[FRAMES as usize / 2]] {
        let px = |x: u32, y: u32| {
            let i = ((y * W + x) * 3) as usize;
            [f.px[i], f.px[i + 1], f.px[i + 2]]
        };
        let corner = px(4, 4);
        assert!(corner[1] > 150 && corner[0] < 80, "background: {corner:?}");
        let magenta_pixels = (0..W * H)
            .filter(|i| {
                let p = px(i % W, i / W);
                p[0] > 180 && p[2] > 180 && p[1] < 80
            })
            .count();
        eprintln!("fusion: {magenta_pixels} subject pixels");
        assert!(
            magenta_pixels > 1000,
            "subject not drawn: {magenta_pixels} px"
        );
    }
}

#[test]
fn thumbnails_are_small_pngs_of_a_frame() {
    let out = run(Operation::TextToVideo, 8, Vec::new());
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("clip.mp4");
    std::fs::write(&path, &out.mp4).expect("write");
    let thumb = thumbnail_file(&ff(), &path, Some(1000)).expect("thumbnail");
    assert!(thumb.starts_with(b"\x89PNG"));
    let w = u32::from_be_bytes(thumb[16..20].try_into().expect("w"));
    let h = u32::from_be_bytes(thumb[20..24].try_into().expect("h"));
    assert_eq!((w, h), (W, H), "a 320-wide clip is not enlarged");
    let big = png(1280, 720, |x, _| [x as u8, 0, 0]);
    let path = dir.path().join("big.png");
    std::fs::write(&path, big).expect("write");
    let thumb = thumbnail_file(&ff(), &path, None).expect("thumbnail");
    let w = u32::from_be_bytes(thumb[16..20].try_into().expect("w"));
    let h = u32::from_be_bytes(thumb[20..24].try_into().expect("h"));
    assert_eq!((w, h), (320, 180));
}
