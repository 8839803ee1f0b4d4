//! The asset check: every `asset = "assets/…"` a media node names must be a file under the
//! content's assets directory that starts like a media file (its magic bytes are sniffed:
//! MP4/MOV, WebM/Matroska, PNG, JPEG, GIF, WebP, MP3, OGG, WAV). A scene path
//! `assets/x.mp4` is the file `<assets_dir>/x.mp4` (served at `/assets/x.mp4`). Generated
//! assets (a UUID) and absolute URLs are not files here and are not checked.

use std::io::Read;
use std::path::{Component, Path};

use crate::{Problem, SceneFile};

/// The media kind a file's first bytes announce, or `None` when they announce none.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let starts = |m: &[u8]| head.starts_with(m);
    let riff = |kind: &[u8]| starts(b"RIFF") && head.get(8..12) == Some(kind);
    if head.get(4..8) == Some(b"ftyp") {
        Some("mp4")
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("webm")
    } else if starts(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("png")
    } else if starts(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("gif")
    } else if riff(b"WEBP") {
        Some("webp")
    } else if riff(b"WAVE") {
        Some("wav")
    } else if starts(b"OggS") {
        Some("ogg")
    } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) {
        Some("mp3")
    } else {
        None
    }
}

/// Whether a scene's asset reference names a file of the assets directory (not a
/// generated asset's id or a URL).
fn is_file_ref(asset: &str) -> bool {
    !(asset.starts_with("https://") || asset.starts_with("http://") || uuid_like(asset))
}

/// A hyphenated UUID (a generated asset's id).
pub(crate) fn uuid_like(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, ch)| match i {
            8 | 13 | 18 | 23 => ch == '-',
            _ => ch.is_ascii_hexdigit(),
        })
}

/// Why `asset` is not a media file under `dir`, or `None` when it is.
pub fn check_asset(dir: &Path, asset: &str) -> Option<String> {
    let Some(rest) = asset.strip_prefix("assets/") else {
        return Some(format!(
            "asset '{asset}' is not under 'assets/' (the files served at /assets/)"
        ));
    };
    let rel = Path::new(rest);
    if rest.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Some(format!(
            "asset '{asset}' is not a plain path inside 'assets/'"
        ));
    }
    let path = dir.join(rel);
    let mut head = [0u8; 16];
    let read = std::fs::File::open(&path).and_then(|mut f| {
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    });
    match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "asset '{asset}' does not exist ({})",
            path.display()
        )),
        Err(e) => Some(format!(
            "asset '{asset}' cannot be read ({}): {e}",
            path.display()
        )),
        Ok(n) => match sniff(&head[..n]) {
            Some(_) => None,
            None => Some(format!(
                "asset '{asset}' is not a media file ({}: no video, image or audio signature)",
                path.display()
            )),
        },
    }
}

/// The problems of every scene's asset references against `dir`.
pub(crate) fn check(dir: &Path, scenes: &[SceneFile]) -> Vec<Problem> {
    let mut out = Vec::new();
    for sf in scenes {
        for node in &sf.scene.nodes {
            for asset in node.kind.assets() {
                if !is_file_ref(asset) {
                    continue;
                }
                if let Some(reason) = check_asset(dir, asset) {
                    out.push(Problem {
                        file: sf.file.clone(),
                        scene: Some(sf.scene.id.clone()),
                        node: Some(node.id.clone()),
                        reason,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_media_signatures_only() {
        let mp4 = [
            0, 0, 0, 0x20, b'f', b't', b'y', b'p', b'i', b's', b'o', b'm',
        ];
        assert_eq!(sniff(&mp4), Some("mp4"));
        assert_eq!(sniff(&[0x1A, 0x45, 0xDF, 0xA3, 1]), Some("webm"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("jpeg"));
        assert_eq!(sniff(b"GIF89a.."), Some("gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("webp"));
        assert_eq!(sniff(b"ID3\x04"), Some("mp3"));
        assert_eq!(sniff(b"OggS\0"), Some("ogg"));
        assert_eq!(sniff(b"hello world, not media"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI "), None);
    }

    #[test]
    fn urls_and_generated_ids_are_not_files() {
        assert!(!is_file_ref("https://cdn.example/x.mp4"));
        assert!(!is_file_ref("0190b0a4-2222-7000-8000-00000000000b"));
        assert!(is_file_ref("assets/x.mp4"));
        assert!(is_file_ref("x.mp4"));
    }
}
