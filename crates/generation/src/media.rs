//! Media content: type detection by magic bytes, dimension/duration probing, and the
//! content-addressed store under the media dir.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::MediaType;

/// What the magic bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sniffed {
    pub media_type: MediaType,
    pub mime: &'static str,
    pub ext: &'static str,
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
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        let animated = b.len() >= 21 && &b[12..16] == b"VP8X" && b[20] & 0x02 != 0;
        let t = if animated {
            MediaType::Video
        } else {
            MediaType::Image
        };
        return s(t, "image/webp", "webp");
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        return s(MediaType::Audio, "audio/wav", "wav");
    }
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        if &b[8..12] == b"qt  " {
            return s(MediaType::Video, "video/quicktime", "mov");
        }
        if &b[8..11] == b"M4A" {
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
    if b.starts_with(b"ID3") || (b.len() >= 2 && b[0] == 0xFF && (b[1] & 0xE0) == 0xE0) {
        return s(MediaType::Audio, "audio/mpeg", "mp3");
    }
    None
}

/// Dimensions and duration, where the format tells them cheaply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probe {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]) as u32)
}
fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]) as u32)
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}
fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        0,
    ]))
}

/// Probes width, height and duration for PNG, GIF, JPEG, WebP and MP4/MOV.
pub fn probe(b: &[u8], kind: &Sniffed) -> Probe {
    let mut p = Probe::default();
    match kind.mime {
        "image/png" => {
            p.width = be32(b, 16);
            p.height = be32(b, 20);
        }
        "image/gif" => {
            if let Some(g) = gif_info(b) {
                p.width = Some(g.width);
                p.height = Some(g.height);
                if g.frames > 1 {
                    p.duration_ms = Some(g.duration_ms);
                }
            }
        }
        "image/jpeg" => {
            if let Some((w, h)) = jpeg_size(b) {
                p.width = Some(w);
                p.height = Some(h);
            }
        }
        "image/webp" => {
            if let Some((w, h)) = webp_size(b) {
                p.width = Some(w);
                p.height = Some(h);
            }
        }
        "video/mp4" | "video/quicktime" => {
            let m = mp4_info(b);
            p.width = m.width;
            p.height = m.height;
            p.duration_ms = m.duration_ms;
        }
        _ => {}
    }
    p
}

/// What a GIF walk finds.
#[derive(Debug, Clone, Copy)]
pub struct GifInfo {
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub duration_ms: u64,
}

/// Walks a GIF's blocks: logical size, frame count, total delay.
pub fn gif_info(b: &[u8]) -> Option<GifInfo> {
    let width = le16(b, 6)?;
    let height = le16(b, 8)?;
    let flags = *b.get(10)?;
    let mut i = 13;
    if flags & 0x80 != 0 {
        i += 3 * (1usize << ((flags & 0x07) + 1));
    }
    let skip_sub_blocks = |mut i: usize| -> Option<usize> {
        loop {
            let n = *b.get(i)? as usize;
            i += 1;
            if n == 0 {
                return Some(i);
            }
            i += n;
        }
    };
    let (mut frames, mut delay_cs) = (0u32, 0u64);
    loop {
        match *b.get(i)? {
            0x21 => {
                let label = *b.get(i + 1)?;
                if label == 0xF9 {
                    delay_cs += le16(b, i + 4)? as u64;
                }
                i = skip_sub_blocks(i + 2)?;
            }
            0x2C => {
                frames += 1;
                let f = *b.get(i + 9)?;
                i += 10;
                if f & 0x80 != 0 {
                    i += 3 * (1usize << ((f & 0x07) + 1));
                }
                i = skip_sub_blocks(i + 1)?;
            }
            0x3B => break,
            _ => return None,
        }
    }
    Some(GifInfo {
        width,
        height,
        frames,
        duration_ms: delay_cs * 10,
    })
}

fn jpeg_size(b: &[u8]) -> Option<(u32, u32)> {
    let mut i = 2;
    while i + 9 < b.len() {
        if b[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = b[i + 1];
        if marker == 0xD8 || marker == 0x01 || (0xD0..=0xD7).contains(&marker) || marker == 0xFF {
            i += if marker == 0xFF { 1 } else { 2 };
            continue;
        }
        let len = be16(b, i + 2)? as usize;
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Some((be16(b, i + 7)?, be16(b, i + 5)?));
        }
        i += 2 + len;
    }
    None
}

fn webp_size(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        b"VP8 " => Some((le16(b, 26)? & 0x3FFF, le16(b, 28)? & 0x3FFF)),
        b"VP8L" => {
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => None,
    }
}

/// MP4/MOV: duration from `moov/mvhd`, size from the first `trak/tkhd` with one.
fn mp4_info(b: &[u8]) -> Probe {
    let mut p = Probe::default();
    fn walk(b: &[u8], p: &mut Probe, depth: u32) {
        let mut i = 0usize;
        while i + 8 <= b.len() {
            let Some(size32) = be32(b, i) else { return };
            let kind = &b[i + 4..i + 8];
            let (header, size) = match size32 {
                1 => match be64(b, i + 8) {
                    Some(s) => (16usize, s as usize),
                    None => return,
                },
                0 => (8, b.len() - i),
                s => (8, s as usize),
            };
            if size < header || i + size > b.len() {
                return;
            }
            let body = &b[i + header..i + size];
            match kind {
                b"moov" | b"trak" if depth < 4 => walk(body, p, depth + 1),
                b"mvhd" => {
                    let v = body.first().copied().unwrap_or(0);
                    let (ts, dur) = if v == 1 {
                        (be32(body, 20), be64(body, 24))
                    } else {
                        (be32(body, 12), be32(body, 16).map(u64::from))
                    };
                    if let (Some(ts), Some(d)) = (ts, dur)
                        && ts > 0
                    {
                        p.duration_ms = Some(d * 1000 / ts as u64);
                    }
                }
                b"tkhd" if p.width.is_none() => {
                    let v = body.first().copied().unwrap_or(0);
                    let at = if v == 1 { 88 } else { 76 };
                    if let (Some(w), Some(h)) = (be32(body, at), be32(body, at + 4))
                        && w > 0
                        && h > 0
                    {
                        p.width = Some(w >> 16);
                        p.height = Some(h >> 16);
                    }
                }
                _ => {}
            }
            i += size;
        }
    }
    walk(b, &mut p, 0);
    p
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
                tokio::fs::create_dir_all(dir).await?;
            }
            let tmp = path.with_extension(format!("{ext}.tmp{}", uuid::Uuid::new_v4().simple()));
            tokio::fs::write(&tmp, bytes).await?;
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
