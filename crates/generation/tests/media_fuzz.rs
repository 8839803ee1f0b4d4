//! Media parsing never panics: crafted inputs that once did, and a bounded fuzz run over
//! every media parser (`sniff`, `probe` of each format, `gif_info`, the renderer's
//! decoder) on stable Rust, as part of `cargo test`.
//!
//! Each parser gets `MEDIA_FUZZ_SECS` seconds (default 3) of inputs mutated from valid
//! seed files by a deterministic mutator (bit flips, boundary bytes, length fields
//! overwritten with huge values, truncation, splicing, ...). The run's seed is printed;
//! `MEDIA_FUZZ_SEED=<seed>` replays it. A panic fails the test with the input in hex.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use generation::media::{MAX_DIMENSION, MAX_DURATION_MS, Probe, Sniffed, gif_info, probe, sniff};
use generation::model::MediaType;
use generation::render::{SplitMix, decode_frames};

// --- seeds -------------------------------------------------------------------------

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(8 + body.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// A box with a 64-bit size (`size` = 1, then the real size).
fn mp4_box64(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = 1u32.to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(&(16 + body.len() as u64).to_be_bytes());
    b.extend_from_slice(body);
    b
}

fn ftyp(brand: &[u8; 4]) -> Vec<u8> {
    let mut body = brand.to_vec();
    body.extend_from_slice(&[0, 0, 2, 0]);
    body.extend_from_slice(brand);
    body.extend_from_slice(b"mp41");
    mp4_box(b"ftyp", &body)
}

fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
    let mut body = vec![0u8; 100];
    body[12..16].copy_from_slice(&timescale.to_be_bytes());
    body[16..20].copy_from_slice(&duration.to_be_bytes());
    mp4_box(b"mvhd", &body)
}

fn mvhd_v1(timescale: u32, duration: u64) -> Vec<u8> {
    let mut body = vec![0u8; 112];
    body[0] = 1;
    body[20..24].copy_from_slice(&timescale.to_be_bytes());
    body[24..32].copy_from_slice(&duration.to_be_bytes());
    mp4_box(b"mvhd", &body)
}

/// `w`, `h` in pixels (stored as 16.16 fixed point).
fn tkhd(version: u8, w: u32, h: u32) -> Vec<u8> {
    let at = if version == 1 { 88 } else { 76 };
    let mut body = vec![0u8; at + 8];
    body[0] = version;
    body[at..at + 4].copy_from_slice(&(w << 16).to_be_bytes());
    body[at + 4..at + 8].copy_from_slice(&(h << 16).to_be_bytes());
    mp4_box(b"tkhd", &body)
}

fn mp4(brand: &[u8; 4], mvhd: Vec<u8>, tkhd: Vec<u8>, large: bool) -> Vec<u8> {
    let trak = mp4_box(b"trak", &tkhd);
    let mut moov_body = mvhd;
    moov_body.extend_from_slice(&trak);
    let mut b = ftyp(brand);
    if large {
        b.extend_from_slice(&mp4_box64(b"free", &[0; 8]));
        b.extend_from_slice(&mp4_box64(b"moov", &moov_body));
    } else {
        b.extend_from_slice(&mp4_box(b"moov", &moov_body));
    }
    b.extend_from_slice(&mp4_box(b"mdat", &[0xAB; 24]));
    b
}

fn mp4_seeds() -> Vec<Vec<u8>> {
    vec![
        mp4(b"isom", mvhd_v0(1000, 5000), tkhd(0, 640, 360), false),
        mp4(b"mp42", mvhd_v1(90_000, 450_000), tkhd(1, 1920, 1080), true),
        mp4(b"qt  ", mvhd_v0(600, 3000), tkhd(0, 320, 240), true),
        mp4(b"isom", mvhd_v1(1, 60), tkhd(0, 16, 16), false),
    ]
}

fn jpeg(sof: u8, w: u16, h: u16) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8];
    // APP0 JFIF
    b.extend_from_slice(&[0xFF, 0xE0, 0, 16]);
    b.extend_from_slice(b"JFIF\0");
    b.extend_from_slice(&[1, 1, 0, 0, 1, 0, 1, 0, 0]);
    // DQT
    b.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    b.extend_from_slice(&[1; 64]);
    // fill bytes and a restart marker before the frame header
    b.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xD0]);
    // SOFn
    b.extend_from_slice(&[0xFF, sof, 0, 17, 8]);
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    // DHT
    b.extend_from_slice(&[0xFF, 0xC4, 0, 20, 0]);
    b.extend_from_slice(&[0; 16]);
    b.push(0);
    // SOS, entropy-coded data, EOI
    b.extend_from_slice(&[0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
    b.extend_from_slice(&[0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD1, 0x78]);
    b.extend_from_slice(&[0xFF, 0xD9]);
    b
}

fn jpeg_seeds() -> Vec<Vec<u8>> {
    vec![jpeg(0xC0, 640, 480), jpeg(0xC2, 1, 65535)]
}

fn riff_webp(chunk: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = chunk.to_vec();
    c.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    c.extend_from_slice(body);
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&u32::try_from(4 + c.len()).unwrap().to_le_bytes());
    b.extend_from_slice(b"WEBP");
    b.extend_from_slice(&c);
    b
}

fn webp_seeds() -> Vec<Vec<u8>> {
    // VP8X: flags (animated), reserved, width-1 and height-1 as 24-bit LE; then ANIM.
    let mut vp8x = vec![0x02, 0, 0, 0];
    vp8x.extend_from_slice(&(400u32 - 1).to_le_bytes()[..3]);
    vp8x.extend_from_slice(&(300u32 - 1).to_le_bytes()[..3]);
    let mut x = riff_webp(b"VP8X", &vp8x);
    x.extend_from_slice(b"ANIM\x06\0\0\0\0\0\0\0\0\0");
    // VP8: frame tag, start code, 14-bit width and height.
    let mut vp8 = vec![0x50, 0x02, 0x00, 0x9D, 0x01, 0x2A];
    vp8.extend_from_slice(&320u16.to_le_bytes());
    vp8.extend_from_slice(&200u16.to_le_bytes());
    vp8.extend_from_slice(&[0; 8]);
    // VP8L: signature, then (w-1) and (h-1) in 14 bits each.
    let bits: u32 = (64 - 1) | ((48 - 1) << 14);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 6]);
    vec![x, riff_webp(b"VP8 ", &vp8), riff_webp(b"VP8L", &vp8l)]
}

fn gif_seeds() -> Vec<Vec<u8>> {
    vec![
        generation::fakes::sample_gif(1),
        generation::fakes::sample_gif(7),
    ]
}

fn png_seeds() -> Vec<Vec<u8>> {
    vec![generation::fakes::sample_png(1)]
}

fn other_seeds() -> Vec<Vec<u8>> {
    let mut wav = b"RIFF\x24\0\0\0WAVEfmt ".to_vec();
    wav.extend_from_slice(&[16, 0, 0, 0, 1, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0]);
    vec![
        wav,
        vec![0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01],
        b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec(),
        b"fLaC\0\0\0\x22".to_vec(),
        b"ID3\x04\0\0\0\0\0\0".to_vec(),
        vec![0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0],
        ftyp(b"M4A "),
    ]
}

// --- the parsers under test -----------------------------------------------------------

fn kind(mime: &'static str, ext: &'static str, media_type: MediaType) -> Sniffed {
    Sniffed {
        media_type,
        mime,
        ext,
    }
}

/// What every probe must hold to: nothing that does not fit the asset columns.
fn check_probe(p: &Probe) {
    assert_eq!(p.width.is_some(), p.height.is_some(), "{p:?}");
    for v in [p.width, p.height].into_iter().flatten() {
        assert!(
            (1..=MAX_DIMENSION).contains(&v),
            "dimension {v} out of range"
        );
    }
    if let Some(d) = p.duration_ms {
        assert!(d <= MAX_DURATION_MS, "duration {d} ms out of range");
    }
    assert_eq!(p.width_i32().is_some(), p.width.is_some());
    assert_eq!(p.height_i32().is_some(), p.height.is_some());
    assert_eq!(p.duration_ms_i64().is_some(), p.duration_ms.is_some());
    assert!(p.width_i32().unwrap_or(1) > 0 && p.height_i32().unwrap_or(1) > 0);
    assert!(p.duration_ms_i64().unwrap_or(0) >= 0);
}

/// Sniffs, then probes as the sniffed type and as `forced` (so a mutation that breaks
/// the magic bytes still exercises the format's parser).
fn sniff_and_probe(data: &[u8], forced: Option<Sniffed>) {
    if let Some(k) = sniff(data) {
        check_probe(&probe(data, &k));
    }
    if let Some(k) = forced {
        check_probe(&probe(data, &k));
    }
}

// --- the mutator ----------------------------------------------------------------------

const MAX_LEN: usize = 4096;

struct Mutator {
    rng: SplitMix,
}

impl Mutator {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next_u64() % n as u64) as usize
        }
    }

    /// An offset, aligned to 4 half of the time (box and chunk headers are).
    fn offset(&mut self, len: usize) -> usize {
        let at = self.below(len);
        if self.rng.next_u64() & 1 == 0 {
            at & !3
        } else {
            at
        }
    }

    fn interesting(&mut self, len: usize) -> u64 {
        const VALUES: [u64; 16] = [
            0,
            1,
            7,
            8,
            16,
            0x7F,
            0xFF,
            0xFFFF,
            0x7FFF_FFFF,
            0x8000_0000,
            0xFFFF_FFFF,
            0xFFFF_FFF8,
            i64::MAX as u64,
            1 << 63,
            u64::MAX - 7,
            u64::MAX,
        ];
        match self.below(VALUES.len() + 2) {
            i if i < VALUES.len() => VALUES[i],
            i if i == VALUES.len() => len as u64 + self.below(16) as u64,
            _ => self.rng.next_u64(),
        }
    }

    fn mutate(&mut self, data: &mut Vec<u8>, seeds: &[Vec<u8>]) {
        let len = data.len();
        match self.below(10) {
            // Flip a bit.
            0 if len > 0 => {
                let at = self.below(len);
                data[at] ^= 1 << self.below(8);
            }
            // A byte to a boundary value.
            1 if len > 0 => {
                const B: [u8; 8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, 0x20, 0x10];
                let at = self.below(len);
                data[at] = B[self.below(B.len())];
            }
            // A random byte.
            2 if len > 0 => {
                let at = self.below(len);
                data[at] = self.rng.next_u64() as u8;
            }
            // A length field (2, 3, 4 or 8 bytes, either endianness) to a huge or
            // boundary value.
            3 | 4 => {
                let width = [2, 3, 4, 8][self.below(4)];
                let value = self.interesting(len);
                let bytes = if self.rng.next_u64() & 1 == 0 {
                    value.to_be_bytes()[8 - width..].to_vec()
                } else {
                    value.to_le_bytes()[..width].to_vec()
                };
                let at = self.offset(len);
                for (i, v) in bytes.into_iter().enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = v;
                    }
                }
            }
            // Truncate.
            5 => {
                let at = self.below(len + 1);
                data.truncate(at);
            }
            // Splice in a piece of a seed, replacing or inserting.
            6 => {
                let other = &seeds[self.below(seeds.len())];
                let from = self.below(other.len());
                let n = self.below(other.len() - from + 1).min(64);
                let piece = other[from..from + n].to_vec();
                let at = self.below(len + 1);
                if self.rng.next_u64() & 1 == 0 {
                    data.splice(at..at, piece);
                } else {
                    let end = (at + n).min(len);
                    data.splice(at..end, piece);
                }
            }
            // Duplicate a range.
            7 if len > 0 => {
                let from = self.below(len);
                let n = self.below(len - from + 1).min(64);
                let piece = data[from..from + n].to_vec();
                let at = self.below(len + 1);
                data.splice(at..at, piece);
            }
            // Delete a range.
            8 if len > 0 => {
                let from = self.below(len);
                let n = self.below(len - from + 1).min(32);
                data.drain(from..from + n);
            }
            // Insert random bytes.
            _ => {
                let at = self.below(len + 1);
                let n = 1 + self.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
        }
        data.truncate(MAX_LEN);
    }
}

// --- the run ----------------------------------------------------------------------------

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The run's seed: `MEDIA_FUZZ_SEED`, else the clock.
fn base_seed() -> u64 {
    match std::env::var("MEDIA_FUZZ_SEED") {
        Ok(s) => s.trim().parse().expect("MEDIA_FUZZ_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    }
}

/// Each parser's own stream from the run's seed.
fn stream_seed(base: u64, name: &str) -> u64 {
    let mut h = SplitMix::new(base);
    name.bytes().fold(h.next_u64(), |acc, c| {
        SplitMix::new(acc ^ u64::from(c)).next_u64()
    })
}

fn budget() -> Duration {
    let secs: f64 = std::env::var("MEDIA_FUZZ_SECS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs.max(0.0))
}

/// Runs `target` on every seed, then on mutated seeds until the time budget is spent.
/// Fails on the first panic, with the input in hex and how to replay the run.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: fn(&[u8])) {
    let base = base_seed();
    let seed = stream_seed(base, name);
    assert!(seeds.iter().all(|s| !s.is_empty()));
    let budget = budget();
    let start = Instant::now();
    let mut m = Mutator {
        rng: SplitMix::new(seed),
    };
    let mut n = 0u64;
    let check = |input: &[u8], n: u64| {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            panic!(
                "media fuzz {name}: input #{n} panicked (replay with \
                 MEDIA_FUZZ_SEED={base}); input ({} bytes): {}",
                input.len(),
                hex(input)
            );
        }
    };
    for s in &seeds {
        check(s, n);
        n += 1;
    }
    while start.elapsed() < budget {
        // Batches between clock reads.
        for _ in 0..64 {
            let mut data = seeds[m.below(seeds.len())].clone();
            let rounds = 1 + m.below(4) + m.below(4) * m.below(2);
            for _ in 0..rounds {
                m.mutate(&mut data, &seeds);
            }
            check(&data, n);
            n += 1;
        }
    }
    println!(
        "media fuzz {name}: {n} inputs in {:.1} s (replay with MEDIA_FUZZ_SEED={base})",
        start.elapsed().as_secs_f64()
    );
}

// --- crafted inputs -------------------------------------------------------------------

const MP4: Sniffed = Sniffed {
    media_type: MediaType::Video,
    mime: "video/mp4",
    ext: "mp4",
};

/// A 64-bit box size near `u64::MAX` made `i + size` wrap (a panic, or in release a
/// backwards slice) in the box walk.
#[test]
fn mp4_box_size_near_u64_max_is_refused() {
    for size in [u64::MAX, u64::MAX - 7, u64::MAX - 15, 1 << 63] {
        let mut b = ftyp(b"isom");
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(b"free");
        b.extend_from_slice(&size.to_be_bytes());
        b.extend_from_slice(&mvhd_v0(1000, 5000));
        assert_eq!(sniff(&b), Some(MP4));
        assert_eq!(probe(&b, &MP4), Probe::default(), "size {size:#x}");
    }
    // Nested: the moov box is fine, the trak inside it is not.
    let mut trak = 1u32.to_be_bytes().to_vec();
    trak.extend_from_slice(b"trak");
    trak.extend_from_slice(&(u64::MAX - 7).to_be_bytes());
    trak.extend_from_slice(&tkhd(0, 640, 360));
    let mut moov_body = mvhd_v0(1000, 5000);
    moov_body.extend_from_slice(&trak);
    let mut b = ftyp(b"isom");
    b.extend_from_slice(&mp4_box(b"moov", &moov_body));
    let p = probe(&b, &MP4);
    assert_eq!((p.width, p.duration_ms), (None, Some(5000)));
}

/// A 64-bit `mvhd` duration overflowed `d * 1000`; the math is exact now and a result
/// out of range is left out.
#[test]
fn mp4_huge_duration_is_refused_not_wrapped() {
    let with = |mvhd: Vec<u8>| mp4(b"isom", mvhd, tkhd(0, 640, 360), false);
    let p = probe(&with(mvhd_v1(1, u64::MAX)), &MP4);
    assert_eq!(p.duration_ms, None);
    assert_eq!((p.width, p.height), (Some(640), Some(360)));
    // Exact: 2^40 units at 2^32-1 per second.
    let p = probe(&with(mvhd_v1(u32::MAX, 1 << 40)), &MP4);
    assert_eq!(
        p.duration_ms,
        Some((1u64 << 40) * 1000 / u64::from(u32::MAX))
    );
    // 31 days: beyond MAX_DURATION_MS.
    let p = probe(&with(mvhd_v1(1, 31 * 24 * 3600)), &MP4);
    assert_eq!(p.duration_ms, None);
    let p = probe(&with(mvhd_v1(90_000, 450_000)), &MP4);
    assert_eq!(p.duration_ms, Some(5000));
    // A zero timescale says nothing.
    let p = probe(&with(mvhd_v0(0, 5000)), &MP4);
    assert_eq!(p.duration_ms, None);
}

/// Sizes that do not fit `assets.width`/`height` (`integer`), or are 0, are left out
/// instead of being stored negative or as nonsense.
#[test]
fn out_of_range_sizes_are_refused() {
    let png = |w: u32, h: u32| {
        let mut b = generation::fakes::sample_png(1);
        b[16..20].copy_from_slice(&w.to_be_bytes());
        b[20..24].copy_from_slice(&h.to_be_bytes());
        let k = sniff(&b).unwrap();
        probe(&b, &k)
    };
    assert_eq!(
        (png(16, 16).width, png(16, 16).height),
        (Some(16), Some(16))
    );
    for (w, h) in [
        (0, 16),
        (16, 0),
        (0x8000_0000, 16),
        (16, u32::MAX),
        (65_536, 1),
    ] {
        assert_eq!(png(w, h), Probe::default(), "{w}x{h}");
    }
    assert_eq!(png(65_535, 1).width_i32(), Some(65_535));

    let mut gif = generation::fakes::sample_gif(1);
    gif[6..10].copy_from_slice(&[0, 0, 0, 0]);
    let p = probe(&gif, &sniff(&gif).unwrap());
    assert_eq!((p.width, p.height), (None, None));
    assert!(p.duration_ms.is_some(), "{p:?}");

    // MP4 tkhd widths are 16.16 fixed point: 0x8000 is half a pixel.
    let b = mp4(b"isom", mvhd_v0(1000, 1), tkhd(0, 0, 0), false);
    assert_eq!(probe(&b, &MP4).width, None);

    let mut webp = webp_seeds().remove(1);
    webp[26..28].copy_from_slice(&0xC000u16.to_le_bytes()); // 14 bits of zero
    assert_eq!(probe(&webp, &sniff(&webp).unwrap()).width, None);
}

/// The seeds parse as what they are (so the fuzz run starts from valid files).
#[test]
fn seeds_probe_as_built() {
    let jpg = jpeg_seeds();
    let k = sniff(&jpg[0]).unwrap();
    assert_eq!(k.mime, "image/jpeg");
    let p = probe(&jpg[0], &k);
    assert_eq!((p.width, p.height), (Some(640), Some(480)));
    let p = probe(&jpg[1], &k);
    assert_eq!((p.width, p.height), (Some(1), Some(65535)));

    let sizes: Vec<_> = webp_seeds()
        .iter()
        .map(|b| {
            let k = sniff(b).unwrap();
            (k.media_type, probe(b, &k).width, probe(b, &k).height)
        })
        .collect();
    assert_eq!(
        sizes,
        [
            (MediaType::Video, Some(400), Some(300)),
            (MediaType::Image, Some(320), Some(200)),
            (MediaType::Image, Some(64), Some(48)),
        ]
    );

    let m = mp4_seeds();
    let got: Vec<_> = m
        .iter()
        .map(|b| {
            let k = sniff(b).unwrap();
            let p = probe(b, &k);
            (k.mime, p.width, p.height, p.duration_ms)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("video/mp4", Some(640), Some(360), Some(5000)),
            ("video/mp4", Some(1920), Some(1080), Some(5000)),
            ("video/quicktime", Some(320), Some(240), Some(5000)),
            ("video/mp4", Some(16), Some(16), Some(60_000)),
        ]
    );

    let g = gif_seeds();
    let k = sniff(&g[0]).unwrap();
    assert_eq!((k.mime, k.media_type), ("image/gif", MediaType::Video));
    let p = probe(&g[0], &k);
    assert_eq!((p.width, p.height), (Some(16), Some(16)));
    assert!(p.duration_ms.unwrap() > 0);

    let kinds: Vec<_> = other_seeds()
        .iter()
        .map(|b| sniff(b).map(|k| k.mime))
        .collect();
    assert_eq!(
        kinds,
        [
            Some("audio/wav"),
            Some("video/webm"),
            Some("audio/ogg"),
            Some("audio/flac"),
            Some("audio/mpeg"),
            Some("audio/mpeg"),
            Some("audio/mp4"),
        ]
    );
}

// --- the fuzz targets -------------------------------------------------------------------

fn all_seeds() -> Vec<Vec<u8>> {
    let mut s = Vec::new();
    s.extend(gif_seeds());
    s.extend(png_seeds());
    s.extend(jpeg_seeds());
    s.extend(webp_seeds());
    s.extend(mp4_seeds());
    s.extend(other_seeds());
    s
}

#[test]
fn fuzz_sniff() {
    fuzz("sniff", all_seeds(), |d| sniff_and_probe(d, None));
}

#[test]
fn fuzz_gif() {
    fuzz("gif", gif_seeds(), |d| {
        sniff_and_probe(d, Some(kind("image/gif", "gif", MediaType::Image)));
        let _ = gif_info(d);
    });
}

#[test]
fn fuzz_png() {
    fuzz("png", png_seeds(), |d| {
        sniff_and_probe(d, Some(kind("image/png", "png", MediaType::Image)));
    });
}

#[test]
fn fuzz_jpeg() {
    fuzz("jpeg", jpeg_seeds(), |d| {
        sniff_and_probe(d, Some(kind("image/jpeg", "jpg", MediaType::Image)));
    });
}

#[test]
fn fuzz_webp() {
    fuzz("webp", webp_seeds(), |d| {
        sniff_and_probe(d, Some(kind("image/webp", "webp", MediaType::Image)));
    });
}

#[test]
fn fuzz_mp4() {
    fuzz("mp4", mp4_seeds(), |d| {
        sniff_and_probe(d, Some(kind("video/mp4", "mp4", MediaType::Video)));
        sniff_and_probe(d, Some(kind("video/quicktime", "mov", MediaType::Video)));
    });
}

/// The local renderer's decoder of input images (PNG, GIF).
#[test]
fn fuzz_render_decode() {
    let mut seeds = gif_seeds();
    seeds.extend(png_seeds());
    fuzz("render_decode", seeds, |d| {
        // `decode_frames` keeps a full canvas per frame (up to 4096x4096, 64 frames:
        // 4 GiB); this run looks for panics, so it skips canvases over 512x512.
        if d.starts_with(b"GIF8")
            && let (Some(w), Some(h)) = (d.get(6..8), d.get(8..10))
            && u16::from_le_bytes([w[0], w[1]]) as u32 * u16::from_le_bytes([h[0], h[1]]) as u32
                > 512 * 512
        {
            return;
        }
        let _ = decode_frames(d);
    });
}

/// The file probes of streamed uploads (`generation::incoming::probe_file`: MP4 boxes
/// walked by seeking, GIF blocks walked as a stream) over the same mutated seeds.
#[test]
fn fuzz_probe_file() {
    let mut seeds = mp4_seeds();
    seeds.extend(gif_seeds());
    seeds.extend(png_seeds());
    fuzz("probe_file", seeds, |d| {
        let head = &d[..d.len().min(generation::incoming::HEAD_LEN)];
        for size in [d.len() as u64, d.len() as u64 / 2, u64::MAX] {
            if let Some((_, p)) =
                generation::incoming::probe_file(&mut std::io::Cursor::new(d), head, size)
            {
                check_probe(&p);
            }
        }
    });
}
