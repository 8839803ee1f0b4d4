//! Media content: type detection by magic bytes, dimension/duration probing, and the
//! content-addressed store under the media dir.
//!
//! The parsers read untrusted bytes (uploads, provider results) and never panic: every
//! offset is computed with checked arithmetic and every read goes through `get`, so a
//! malformed file yields `None` (fuzzed by `tests/media_fuzz.rs` and `fuzz/`).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::MediaType;

pub mod mp4;

/// Mode of media files.
pub const FILE_MODE: u32 = 0o640;
/// Mode of media directories.
pub const DIR_MODE: u32 = 0o750;

/// Creates `dir` and its missing parents with [`DIR_MODE`].
pub async fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut b = tokio::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(DIR_MODE);
    b.create(dir).await
}

/// Opens a new file for writing with [`FILE_MODE`]; fails if it exists.
pub async fn create_file(path: &Path) -> io::Result<tokio::fs::File> {
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(FILE_MODE);
    o.open(path).await
}

/// What the magic bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub media_type: MediaType,
    pub mime: &'static str,
    pub ext: &'static str,
}

/// `b[from..from + n]`, if all there.
fn bytes(b: &[u8], from: usize, n: usize) -> Option<&[u8]> {
    b.get(from..from.checked_add(n)?)
}

/// Whether `b[from..]` starts with `what`.
fn has(b: &[u8], from: usize, what: &[u8]) -> bool {
    bytes(b, from, what.len()) == Some(what)
}

/// Detects the content type from magic bytes; `None` for anything not a known image,
/// video or audio format.
pub fn sniff(b: &[u8]) -> Option<Sniffed> {
    let s = |media_type, mime, ext| {
        Some(Sniffed {
            media_type,
            mime,
            ext,
        })
    };
    if b.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return s(MediaType::Image, "image/png", "png");
    }
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return s(MediaType::Image, "image/jpeg", "jpg");
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        // Animated GIFs are videos; see `probe`.
        let frames = gif_info(b).map(|g| g.frames).unwrap_or(1);
        let t = if frames > 1 {
            MediaType::Video
        } else {
            MediaType::Image
        };
        return s(t, "image/gif", "gif");
    }
    if has(b, 0, b"RIFF") && has(b, 8, b"WEBP") {
        let animated = has(b, 12, b"VP8X") && b.get(20).is_some_and(|f| f & 0x02 != 0);
        let t = if animated {
            MediaType::Video
        } else {
            MediaType::Image
        };
        return s(t, "image/webp", "webp");
    }
    if has(b, 0, b"RIFF") && has(b, 8, b"WAVE") {
        return s(MediaType::Audio, "audio/wav", "wav");
    }
    if has(b, 4, b"ftyp") && b.len() >= 12 {
        if has(b, 8, b"qt  ") {
            return s(MediaType::Video, "video/quicktime", "mov");
        }
        if has(b, 8, b"M4A") {
            return s(MediaType::Audio, "audio/mp4", "m4a");
        }
        return s(MediaType::Video, "video/mp4", "mp4");
    }
    if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return s(MediaType::Video, "video/webm", "webm");
    }
    if b.starts_with(b"OggS") {
        return s(MediaType::Audio, "audio/ogg", "ogg");
    }
    if b.starts_with(b"fLaC") {
        return s(MediaType::Audio, "audio/flac", "flac");
    }
    if b.starts_with(b"ID3") || matches!(b, [0xFF, second, ..] if second & 0xE0 == 0xE0) {
        return s(MediaType::Audio, "audio/mpeg", "mp3");
    }
    None
}

/// The largest width or height a probe reports. Real media stays far below it (JPEG,
/// GIF and MP4 cannot express more); anything larger is a broken or hostile header.
pub const MAX_DIMENSION: u32 = 65_535;

/// The highest frame rate a probe reports (× 1000): 1000 fps.
pub const MAX_FPS_MILLI: u64 = 1_000_000;

/// The longest duration a probe reports: 30 days, in ms.
pub const MAX_DURATION_MS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Dimensions and duration, where the format tells them cheaply. A probe only reports
/// values in range: width and height in `1..=`[`MAX_DIMENSION`] (both or neither),
/// duration in `0..=`[`MAX_DURATION_MS`]; anything else is left `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    /// Frames of a video track (MP4/MOV).
    pub frames: Option<u64>,
    /// Frame rate × 1000 of a video track (MP4/MOV), in `1..=`[`MAX_FPS_MILLI`].
    pub fps_milli: Option<u64>,
}

impl Probe {
    /// Sets width and height if both are in `1..=`[`MAX_DIMENSION`]; else neither.
    pub(crate) fn set_size(&mut self, w: u32, h: u32) {
        let ok = |v: u32| (1..=MAX_DIMENSION).contains(&v);
        if ok(w) && ok(h) {
            self.width = Some(w);
            self.height = Some(h);
        }
    }

    /// Sets the duration if it is at most [`MAX_DURATION_MS`].
    pub(crate) fn set_duration(&mut self, ms: u64) {
        if ms <= MAX_DURATION_MS {
            self.duration_ms = Some(ms);
        }
    }

    /// The width as the `assets.width` column (`integer`) stores it.
    pub fn width_i32(&self) -> Option<i32> {
        self.width.and_then(|v| i32::try_from(v).ok())
    }

    /// The height as the `assets.height` column (`integer`) stores it.
    pub fn height_i32(&self) -> Option<i32> {
        self.height.and_then(|v| i32::try_from(v).ok())
    }

    /// Frames per second (as the `assets.fps` column stores it).
    pub fn fps(&self) -> Option<f32> {
        self.fps_milli.map(|f| f as f32 / 1000.0)
    }

    /// The duration as the `assets.duration_ms` column (`bigint`) stores it.
    pub fn duration_ms_i64(&self) -> Option<i64> {
        self.duration_ms.and_then(|v| i64::try_from(v).ok())
    }
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(bytes(b, at, 2)?.try_into().ok()?).into())
}
fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(bytes(b, at, 2)?.try_into().ok()?).into())
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes(b, at, 4)?.try_into().ok()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes(b, at, 4)?.try_into().ok()?))
}
fn le24(b: &[u8], at: usize) -> Option<u32> {
    let [x, y, z]: [u8; 3] = bytes(b, at, 3)?.try_into().ok()?;
    Some(u32::from_le_bytes([x, y, z, 0]))
}

/// Probes width, height and duration for PNG, GIF, JPEG, WebP and MP4/MOV (only values
/// in range; see [`Probe`]).
pub fn probe(b: &[u8], kind: &Sniffed) -> Probe {
    let mut p = Probe::default();
    match kind.mime {
        "image/png" => {
            if has(b, 12, b"IHDR")
                && let (Some(w), Some(h)) = (be32(b, 16), be32(b, 20))
            {
                p.set_size(w, h);
            }
        }
        "image/gif" => {
            if let Some(g) = gif_info(b) {
                p.set_size(g.width, g.height);
                if g.frames > 1 {
                    p.set_duration(g.duration_ms);
                }
            }
        }
        "image/jpeg" => {
            if let Some((w, h)) = jpeg_size(b) {
                p.set_size(w, h);
            }
        }
        "image/webp" => {
            if let Some((w, h)) = webp_size(b) {
                p.set_size(w, h);
            }
        }
        "video/mp4" | "video/quicktime" => mp4_info(b, &mut p),
        _ => {}
    }
    p
}

/// What a GIF walk finds (as the file says: `probe` range-checks it).
#[derive(Debug, Clone, Copy)]
pub struct GifInfo {
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub duration_ms: u64,
}

/// The bytes of a GIF color table, from the packed flags that announce it.
fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 << ((flags & 0x07) + 1)
    } else {
        0
    }
}

/// Walks a GIF's blocks: logical size, frame count, total delay.
pub fn gif_info(b: &[u8]) -> Option<GifInfo> {
    gif_walk(&mut &b[..])
}

/// [`gif_info`] over a reader, from the GIF's first byte: one pass, front to back,
/// holding at most one sub-block, so a file streams through it
/// ([`crate::incoming`]) exactly as a slice does.
pub fn gif_walk(r: &mut impl Read) -> Option<GifInfo> {
    fn byte(r: &mut impl Read) -> Option<u8> {
        let mut b = [0u8; 1];
        r.read_exact(&mut b).ok()?;
        Some(b[0])
    }
    fn skip(r: &mut impl Read, mut n: usize) -> Option<()> {
        let mut buf = [0u8; 256];
        while n > 0 {
            let k = n.min(buf.len());
            r.read_exact(&mut buf[..k]).ok()?;
            n -= k;
        }
        Some(())
    }
    // Data sub-blocks, through their terminator.
    fn skip_sub_blocks(r: &mut impl Read) -> Option<()> {
        loop {
            match byte(r)? {
                0 => return Some(()),
                n => skip(r, usize::from(n))?,
            }
        }
    }
    let mut hdr = [0u8; 13];
    r.read_exact(&mut hdr).ok()?;
    let width = u32::from(u16::from_le_bytes([hdr[6], hdr[7]]));
    let height = u32::from(u16::from_le_bytes([hdr[8], hdr[9]]));
    skip(r, color_table_len(hdr[10]))?;
    let (mut frames, mut delay_cs) = (0u32, 0u64);
    loop {
        match byte(r)? {
            0x21 => {
                if byte(r)? == 0xF9 {
                    // Graphic control: its first sub-block holds flags, the delay
                    // (le16) and the transparent index.
                    let n = usize::from(byte(r)?);
                    let mut gc = [0u8; 255];
                    r.read_exact(&mut gc[..n]).ok()?;
                    if n >= 3 {
                        delay_cs =
                            delay_cs.saturating_add(u16::from_le_bytes([gc[1], gc[2]]).into());
                    }
                    if n > 0 {
                        skip_sub_blocks(r)?;
                    }
                } else {
                    skip_sub_blocks(r)?;
                }
            }
            0x2C => {
                frames = frames.saturating_add(1);
                let mut desc = [0u8; 9];
                r.read_exact(&mut desc).ok()?;
                skip(r, color_table_len(desc[8]))?;
                // The LZW minimum code size, then the image data.
                byte(r)?;
                skip_sub_blocks(r)?;
            }
            0x3B => break,
            _ => return None,
        }
    }
    Some(GifInfo {
        width,
        height,
        frames,
        duration_ms: delay_cs.saturating_mul(10),
    })
}

/// A JPEG's size from its first frame header (SOFn).
fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2usize;
    while i.checked_add(9)? < b.len() {
        if *b.get(i)? != 0xFF {
            i = i.checked_add(1)?;
            continue;
        }
        let marker = *b.get(i.checked_add(1)?)?;
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) || marker == 0xFF {
            i = i.checked_add(if marker == 0xFF { 1 } else { 2 })?;
            continue;
        }
        let len = usize::try_from(be16(b, i.checked_add(2)?)?).ok()?;
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Some((be16(b, i.checked_add(7)?)?, be16(b, i.checked_add(5)?)?));
        }
        i = i.checked_add(2)?.checked_add(len)?;
    }
    None
}

/// A WebP's canvas (VP8X) or frame (VP8, VP8L) size.
fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8X" => Some((le24(b, 24)?.checked_add(1)?, le24(b, 27)?.checked_add(1)?)),
        b"VP8 " => Some((le16(b, 26)? & 0x3FFF, le16(b, 28)? & 0x3FFF)),
        b"VP8L" => {
            let bits = le32(b, 21)?;
            Some((
                (bits & 0x3FFF).checked_add(1)?,
                ((bits >> 14) & 0x3FFF).checked_add(1)?,
            ))
        }
        _ => None,
    }
}

/// MP4/MOV: duration from `moov/mvhd`; size, frames and rate from the first video
/// track (see [`mp4`]); nothing from a file that does not parse.
fn mp4_info(b: &[u8], p: &mut Probe) {
    let Ok(info) = mp4::parse(b) else { return };
    if let Some(ms) = info.duration_ms {
        p.set_duration(ms);
    }
    if let Some(v) = info.video {
        p.set_size(v.width, v.height);
        if v.frames > 0 {
            p.frames = Some(v.frames);
        }
        p.fps_milli = v.fps_milli.filter(|f| (1..=MAX_FPS_MILLI).contains(f));
    }
}

/// sha256 hex of content.
pub fn content_hash(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A file in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub hash: String,
    /// Relative to the store root, e.g. `ab/cd/abcd….gif`.
    pub rel_path: String,
    pub size: u64,
}

/// Content-addressed files under a root dir: `ab/cd/<sha256>.<ext>`, written once
/// (atomically, via a temp file and rename) and shared by every asset with that content.
#[derive(Debug, Clone)]
pub struct MediaStore {
    root: PathBuf,
}

impl MediaStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        MediaStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores bytes; returns where.
    pub async fn put(&self, bytes: &[u8], ext: &str) -> io::Result<StoredFile> {
        let hash = content_hash(bytes);
        let rel_path = format!("{}/{}/{hash}.{ext}", &hash[0..2], &hash[2..4]);
        let path = self.root.join(&rel_path);
        if tokio::fs::metadata(&path).await.is_err() {
            if let Some(dir) = path.parent() {
                create_dirs(dir).await?;
            }
            let tmp = path.with_extension(format!("{ext}.tmp{}", uuid::Uuid::new_v4().simple()));
            let mut f = create_file(&tmp).await?;
            tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
            drop(f);
            tokio::fs::rename(&tmp, &path).await?;
        }
        Ok(StoredFile {
            hash,
            rel_path,
            size: bytes.len() as u64,
        })
    }

    /// The absolute path of a stored file; refuses paths leaving the root.
    pub fn path(&self, rel_path: &str) -> io::Result<PathBuf> {
        let rel = Path::new(rel_path);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a media path outside the store",
            ));
        }
        Ok(self.root.join(rel))
    }

    pub async fn read(&self, rel_path: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(rel_path)?).await
    }
}

/// The asset of a file just stored: its kind, content and what its probe read, with a
/// new id and no provenance (no provider, generation, operation or prompt: the caller
/// sets what applies).
pub fn file_asset(
    owner_id: uuid::Uuid,
    kind: &Sniffed,
    p: &Probe,
    stored: StoredFile,
    thumbnail_path: Option<String>,
    origin: crate::model::AssetOrigin,
) -> store::generation::assets::NewAsset {
    store::generation::assets::NewAsset {
        id: uuid::Uuid::now_v7(),
        owner_id,
        media_type: kind.media_type,
        mime: kind.mime.into(),
        content_hash: stored.hash,
        size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
        width: p.width_i32(),
        height: p.height_i32(),
        duration_ms: p.duration_ms_i64(),
        path: stored.rel_path,
        thumbnail_path,
        origin,
        provider: None,
        remote_id: None,
        remote_url: None,
        source_generation_id: None,
        operation: None,
        prompt: None,
        fps: p.fps(),
    }
}
