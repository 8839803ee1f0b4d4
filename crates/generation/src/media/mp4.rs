//! An ISO-BMFF (MP4/MOV) box parser for what an asset records: the movie's duration
//! (`moov/mvhd`) and its first video track's size (`stsd` sample entry, else `tkhd`),
//! timescale and duration (`mdia/mdhd`), frame count and rate (`stbl/stts`).
//!
//! Every offset is checked: a truncated or hostile file is an [`Mp4Error`], never a
//! panic, and no allocation depends on a length read from the file.

/// Why a file is no readable MP4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp4Error {
    /// A box header or body reaches past the end of its parent (or the file).
    #[error("truncated `{kind}` box at byte {at}")]
    Truncated { kind: String, at: usize },
    /// A box's fields are shorter than its version requires.
    #[error("`{0}` box too short for its fields")]
    Short(&'static str),
    #[error("no `moov` box")]
    NoMoov,
    #[error("no `mvhd` box in `moov`")]
    NoMvhd,
    #[error("boxes nested deeper than {MAX_DEPTH}")]
    TooDeep,
}

/// Deepest box nesting walked (moov/trak/mdia/minf/stbl/stsd is 6).
pub const MAX_DEPTH: u32 = 8;

/// What the boxes say (as stored: callers range-check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mp4Info {
    /// `mvhd` duration, ms.
    pub duration_ms: Option<u64>,
    /// The first track whose handler is `vide`.
    pub video: Option<VideoTrack>,
}

/// A video track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VideoTrack {
    /// The sample entry's codec, e.g. `avc1`.
    pub codec: [u8; 4],
    /// Coded size from the visual sample entry (`tkhd`'s when there is none).
    pub width: u32,
    pub height: u32,
    pub timescale: u32,
    /// `mdhd` duration in `timescale` units.
    pub duration: u64,
    /// Samples (frames), summed over `stts`.
    pub frames: u64,
    /// Frame rate × 1000 (frames over the summed sample deltas), if any frames.
    pub fps_milli: Option<u64>,
}

impl VideoTrack {
    /// The track's duration, ms.
    pub fn duration_ms(&self) -> Option<u64> {
        scaled_ms(self.duration, self.timescale)
    }
}

/// `duration` in `timescale` units per second, as ms (exact, in 128 bits).
pub fn scaled_ms(duration: u64, timescale: u32) -> Option<u64> {
    if timescale == 0 {
        return None;
    }
    u64::try_from(u128::from(duration) * 1000 / u128::from(timescale)).ok()
}

/// A box: its kind and body.
struct Boxed<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

fn field<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
fn u16_at(b: &[u8], at: usize) -> Option<u32> {
    field::<2>(b, at).map(|x| u16::from_be_bytes(x).into())
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    field::<4>(b, at).map(u32::from_be_bytes)
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    field::<8>(b, at).map(u64::from_be_bytes)
}

/// The boxes of `b`, in order; an error for a box that does not fit.
fn boxes(b: &[u8]) -> Result<Vec<Boxed<'_>>, Mp4Error> {
    let mut out = Vec::new();
    walk(b, &mut out)?;
    Ok(out)
}

/// The whole boxes of `b` before the first one that does not fit.
fn boxes_prefix(b: &[u8]) -> Vec<Boxed<'_>> {
    let mut out = Vec::new();
    let _ = walk(b, &mut out);
    out
}

fn walk<'a>(b: &'a [u8], out: &mut Vec<Boxed<'a>>) -> Result<(), Mp4Error> {
    let mut at = 0usize;
    while at < b.len() {
        let truncated = |kind: &[u8]| Mp4Error::Truncated {
            kind: String::from_utf8_lossy(kind).into_owned(),
            at,
        };
        let (Some(size32), Some(kind)) = (u32_at(b, at), field::<4>(b, at + 4)) else {
            return Err(truncated(b"????"));
        };
        let (header, size) = match size32 {
            1 => {
                let big = u64_at(b, at + 8).ok_or_else(|| truncated(&kind))?;
                (16, usize::try_from(big).map_err(|_| truncated(&kind))?)
            }
            0 => (8, b.len() - at),
            s => (8, s as usize),
        };
        let end = at.checked_add(size).ok_or_else(|| truncated(&kind))?;
        if size < header || end > b.len() {
            return Err(truncated(&kind));
        }
        out.push(Boxed {
            kind,
            body: &b[at + header..end],
        });
        at = end;
    }
    Ok(())
}

/// Parses an MP4/MOV (or just its `moov` box).
pub fn parse(b: &[u8]) -> Result<Mp4Info, Mp4Error> {
    // Top-level boxes after `moov` (a truncated `mdat`) do not matter.
    let moov = top_level_moov(b)?;
    // Lenient inside `moov`: the boxes before a broken one still count.
    let children = boxes_prefix(moov);
    let mvhd = children
        .iter()
        .find(|c| &c.kind == b"mvhd")
        .ok_or(Mp4Error::NoMvhd)?;
    let (ts, dur) = if mvhd.body.first() == Some(&1) {
        (u32_at(mvhd.body, 20), u64_at(mvhd.body, 24))
    } else {
        (u32_at(mvhd.body, 12), u32_at(mvhd.body, 16).map(u64::from))
    };
    let (ts, dur) = ts.zip(dur).ok_or(Mp4Error::Short("mvhd"))?;
    let mut video = None;
    // A track that does not parse is skipped, as a track that is not video.
    for trak in children.iter().filter(|c| &c.kind == b"trak") {
        if let Ok(Some(v)) = video_track(trak.body) {
            video = Some(v);
            break;
        }
    }
    Ok(Mp4Info {
        duration_ms: scaled_ms(dur, ts),
        video,
    })
}

/// The body of the first top-level `moov`, walking headers only.
fn top_level_moov(b: &[u8]) -> Result<&[u8], Mp4Error> {
    let mut at = 0usize;
    while let (Some(size32), Some(kind)) = (u32_at(b, at), field::<4>(b, at + 4)) {
        let (header, size) = match size32 {
            1 => match u64_at(b, at + 8).and_then(|s| usize::try_from(s).ok()) {
                Some(s) => (16, s),
                None => break,
            },
            0 => (8, b.len() - at),
            s => (8, s as usize),
        };
        let end = at.checked_add(size);
        if &kind == b"moov" {
            return match end {
                Some(end) if size >= header && end <= b.len() => Ok(&b[at + header..end]),
                _ => Err(Mp4Error::Truncated {
                    kind: "moov".into(),
                    at,
                }),
            };
        }
        match end {
            // A box running past the end: nothing follows it (and `at` never goes where
            // `at + 4` could overflow).
            Some(end) if size >= header && end <= b.len() => at = end,
            _ => break,
        }
    }
    Err(Mp4Error::NoMoov)
}

/// The box of `kind` at `path` under `b` (e.g. `mdia`, `minf`, `stbl`).
fn find<'a>(b: &'a [u8], path: &[&[u8; 4]]) -> Result<Option<&'a [u8]>, Mp4Error> {
    if path.len() > MAX_DEPTH as usize {
        return Err(Mp4Error::TooDeep);
    }
    let mut cur = b;
    for kind in path {
        match boxes(cur)?.into_iter().find(|c| &c.kind == *kind) {
            Some(c) => cur = c.body,
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// A `trak`'s video description; `None` for a track whose handler is not `vide` (a
/// track without a handler is taken as video, as players do with a lone track).
fn video_track(trak: &[u8]) -> Result<Option<VideoTrack>, Mp4Error> {
    if let Some(hdlr) = find(trak, &[b"mdia", b"hdlr"])?
        && field::<4>(hdlr, 8).ok_or(Mp4Error::Short("hdlr"))? != *b"vide"
    {
        return Ok(None);
    }
    let mut v = VideoTrack::default();
    if let Some(tkhd) = find(trak, &[b"tkhd"])? {
        let at = if tkhd.first() == Some(&1) { 88 } else { 76 };
        let (w, h) = u32_at(tkhd, at)
            .zip(u32_at(tkhd, at + 4))
            .ok_or(Mp4Error::Short("tkhd"))?;
        // 16.16 fixed point.
        (v.width, v.height) = (w >> 16, h >> 16);
    }
    if let Some(mdhd) = find(trak, &[b"mdia", b"mdhd"])? {
        let (ts, dur) = if mdhd.first() == Some(&1) {
            (u32_at(mdhd, 20), u64_at(mdhd, 24))
        } else {
            (u32_at(mdhd, 12), u32_at(mdhd, 16).map(u64::from))
        };
        (v.timescale, v.duration) = ts.zip(dur).ok_or(Mp4Error::Short("mdhd"))?;
    }
    if let Some(stbl) = find(trak, &[b"mdia", b"minf", b"stbl"])? {
        sample_entry(stbl, &mut v)?;
        sample_times(stbl, &mut v)?;
    }
    Ok(Some(v))
}

/// `stsd`: the first sample entry's codec and (visual entry) coded size.
fn sample_entry(stbl: &[u8], v: &mut VideoTrack) -> Result<(), Mp4Error> {
    let Some(stsd) = find(stbl, &[b"stsd"])? else {
        return Ok(());
    };
    // version/flags, entry count, then the entries as boxes.
    let entries = stsd.get(8..).ok_or(Mp4Error::Short("stsd"))?;
    if let Some(entry) = boxes(entries)?.first() {
        v.codec = entry.kind;
        // reserved[6], data_reference_index, pre_defined/reserved (16), width, height.
        if let (Some(w), Some(h)) = (u16_at(entry.body, 24), u16_at(entry.body, 26))
            && w > 0
            && h > 0
        {
            (v.width, v.height) = (w, h);
        }
    }
    Ok(())
}

/// `stts`: frames and frame rate.
fn sample_times(stbl: &[u8], v: &mut VideoTrack) -> Result<(), Mp4Error> {
    let Some(stts) = find(stbl, &[b"stts"])? else {
        return Ok(());
    };
    let count = u32_at(stts, 4).ok_or(Mp4Error::Short("stts"))?;
    let (mut frames, mut ticks) = (0u64, 0u128);
    for i in 0..count as usize {
        // Bounded by the box: a huge count stops at the first missing entry.
        let at = 8 + i * 8;
        let (Some(n), Some(delta)) = (u32_at(stts, at), u32_at(stts, at + 4)) else {
            return Err(Mp4Error::Short("stts"));
        };
        frames = frames.saturating_add(u64::from(n));
        ticks += u128::from(n) * u128::from(delta);
    }
    v.frames = frames;
    if frames > 0 && ticks > 0 {
        let fps = u128::from(frames) * u128::from(v.timescale) * 1000 / ticks;
        v.fps_milli = u64::try_from(fps).ok();
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    /// A 64-bit box size near `usize::MAX` (found by tests/media_fuzz.rs) once moved the
    /// walk past the end of the input, where the next header's offset overflowed.
    #[test]
    fn a_huge_largesize_box_ends_the_walk() {
        let mut b = Vec::new();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(b"ftyp");
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        b.extend_from_slice(b"isommp41");
        b.extend_from_slice(&[0; 16]);
        assert!(parse(&b).is_err());
    }

    use super::*;

    fn mk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    /// A minimal MP4: ftyp, moov (mvhd, one avc1 video trak), a small mdat.
    fn sample() -> Vec<u8> {
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&2000u32.to_be_bytes());
        let mut tkhd = vec![0u8; 84];
        tkhd[76..80].copy_from_slice(&(320u32 << 16).to_be_bytes());
        tkhd[80..84].copy_from_slice(&(180u32 << 16).to_be_bytes());
        let mut mdhd = vec![0u8; 24];
        mdhd[12..16].copy_from_slice(&12288u32.to_be_bytes());
        mdhd[16..20].copy_from_slice(&(48u32 * 512).to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"vide");
        let mut avc1 = vec![0u8; 78];
        avc1[24..26].copy_from_slice(&640u16.to_be_bytes());
        avc1[26..28].copy_from_slice(&360u16.to_be_bytes());
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(mk(b"avc1", &avc1));
        let mut stts = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stts.extend_from_slice(&48u32.to_be_bytes());
        stts.extend_from_slice(&512u32.to_be_bytes());
        let stbl = mk(b"stbl", &[mk(b"stsd", &stsd), mk(b"stts", &stts)].concat());
        let mdia = mk(
            b"mdia",
            &[mk(b"mdhd", &mdhd), mk(b"hdlr", &hdlr), mk(b"minf", &stbl)].concat(),
        );
        let trak = mk(b"trak", &[mk(b"tkhd", &tkhd), mdia].concat());
        let moov = mk(b"moov", &[mk(b"mvhd", &mvhd), trak].concat());
        [
            mk(b"ftyp", b"isom\0\0\x02\0"),
            moov,
            mk(b"mdat", &[0u8; 64]),
        ]
        .concat()
    }

    #[test]
    fn reads_duration_size_frames_and_rate() {
        let info = parse(&sample()).expect("parses");
        assert_eq!(info.duration_ms, Some(2000));
        let v = info.video.expect("video");
        assert_eq!(&v.codec, b"avc1");
        assert_eq!((v.width, v.height), (640, 360));
        assert_eq!((v.frames, v.fps_milli), (48, Some(24_000)));
        assert_eq!(v.duration_ms(), Some(2000));
    }

    #[test]
    fn every_truncation_is_an_error_or_a_partial_answer_never_a_panic() {
        let b = sample();
        let moov_end = b.len() - 72;
        for cut in 0..b.len() {
            let r = parse(&b[..cut]);
            if cut < moov_end {
                assert!(r.is_err(), "cut at {cut} parsed: {r:?}");
            }
        }
    }

    #[test]
    fn garbage_and_hostile_lengths_are_errors() {
        assert_eq!(parse(b""), Err(Mp4Error::NoMoov));
        assert_eq!(parse(&[0xFF; 64]), Err(Mp4Error::NoMoov));
        // A moov claiming 4 GiB.
        let mut evil = 0xFFFF_FFF0u32.to_be_bytes().to_vec();
        evil.extend_from_slice(b"moov");
        evil.extend_from_slice(&[0u8; 32]);
        assert!(matches!(parse(&evil), Err(Mp4Error::Truncated { .. })));
        // A 64-bit size overflowing the offset.
        let mut big = 1u32.to_be_bytes().to_vec();
        big.extend_from_slice(b"moov");
        big.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(parse(&big).is_err());
        // An stts announcing 2^32-1 entries in a few bytes: that track is skipped.
        let mut b = sample();
        let at = b.windows(4).position(|w| w == b"stts").expect("stts") + 8;
        b[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let info = parse(&b).expect("the movie parses");
        assert_eq!((info.duration_ms, info.video), (Some(2000), None));
        // Random bytes after a valid ftyp never panic.
        let mut rng = crate::render::SplitMix::new(7);
        for _ in 0..500 {
            let mut b = sample();
            for _ in 0..4 {
                let i = (rng.next_u64() % b.len() as u64) as usize;
                b[i] = rng.next_u64() as u8;
            }
            let _ = parse(&b);
        }
    }
}
