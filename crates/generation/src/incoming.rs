//! Files that stream into the media store: an upload is hashed and written to a
//! temporary file as it is read, never held in memory, then probed from the file and
//! moved to its content-addressed place.
//!
//! Probing a file reads at most [`HEAD_LEN`] bytes from its start (enough for every
//! image header), walks an MP4/MOV's top-level boxes by seeking and reads only its
//! `moov` box (at most [`MAX_MOOV`]), and walks a GIF's blocks in a buffered stream
//! (with [`crate::media::gif_walk`], the walk `gif_info` does on a slice).
//! So a 90 MiB upload costs a few hundred KiB of memory whatever its format.
//!
//! Files and directories are created owner-writable, group-readable (see
//! [`crate::media::FILE_MODE`]).

use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::media::{
    MediaStore, Probe, Sniffed, StoredFile, create_dirs, create_file, gif_walk, probe, sniff,
};
use crate::model::MediaType;

/// Bytes kept from the start of an upload for sniffing and header probes.
pub const HEAD_LEN: usize = 256 * 1024;
/// Largest `moov` box read when probing an MP4/MOV file.
pub const MAX_MOOV: u64 = 16 * 1024 * 1024;

/// An upload being written. Dropped without [`Incoming::commit`], its temporary file
/// is removed.
#[derive(Debug)]
pub struct Incoming {
    root: PathBuf,
    tmp: PathBuf,
    file: Option<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl MediaStore {
    /// Starts an upload: a temporary file under `<root>/incoming/`.
    pub async fn incoming(&self) -> io::Result<Incoming> {
        let dir = self.root().join("incoming");
        create_dirs(&dir).await?;
        let tmp = dir.join(format!("{}.part", uuid::Uuid::new_v4().simple()));
        let file = create_file(&tmp).await?;
        Ok(Incoming {
            root: self.root().to_owned(),
            tmp,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
        })
    }
}

/// What [`Incoming::finish`] found out about the bytes.
#[derive(Debug, Clone)]
pub struct Received {
    pub kind: Sniffed,
    pub probe: Probe,
    pub size: u64,
}

impl Incoming {
    /// Appends a chunk: hashed, written, and its start kept for sniffing.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(io::Error::other("the upload is closed"));
        };
        f.write_all(chunk).await?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the file and probes it: `None` when the bytes are no known media type.
    pub async fn finish(&mut self) -> io::Result<Option<Received>> {
        if let Some(mut f) = self.file.take() {
            f.flush().await?;
            f.sync_all().await?;
        }
        let head = std::mem::take(&mut self.head);
        let path = self.tmp.clone();
        let size = self.size;
        let found = tokio::task::spawn_blocking(move || -> io::Result<Option<Received>> {
            let mut f = std::fs::File::open(&path)?;
            Ok(probe_file(&mut f, &head, size).map(|(kind, probe)| Received { kind, probe, size }))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(found)
    }

    /// Where the file is being written (a temporary file, removed when `self` drops
    /// uncommitted).
    pub fn temp_path(&self) -> &std::path::Path {
        &self.tmp
    }

    /// Moves the finished file to its content-addressed place (kept if already
    /// there) and returns where.
    pub async fn commit(mut self, ext: &str) -> io::Result<StoredFile> {
        if let Some(mut f) = self.file.take() {
            f.flush().await?;
        }
        let hash = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let rel_path = format!("{}/{}/{hash}.{ext}", &hash[0..2], &hash[2..4]);
        let path = self.root.join(&rel_path);
        if tokio::fs::metadata(&path).await.is_err() {
            if let Some(dir) = path.parent() {
                create_dirs(dir).await?;
            }
            tokio::fs::rename(&self.tmp, &path).await?;
        } else {
            tokio::fs::remove_file(&self.tmp).await?;
        }
        // Nothing left to clean up.
        self.tmp = PathBuf::new();
        Ok(StoredFile {
            hash,
            rel_path,
            size: self.size,
        })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Sniffs and probes a file whose first bytes are `head`, reading little of it (see
/// the module docs). `None` when it is no known media type.
pub fn probe_file<F: Read + Seek>(f: &mut F, head: &[u8], size: u64) -> Option<(Sniffed, Probe)> {
    let mut kind = sniff(head)?;
    let p = match kind.mime {
        "video/mp4" | "video/quicktime" => match read_moov(f, size) {
            Some(moov) => probe(&moov, &kind),
            None => Probe::default(),
        },
        "image/gif" => {
            let g = f
                .seek(SeekFrom::Start(0))
                .ok()
                .and_then(|_| gif_walk(&mut io::BufReader::with_capacity(64 * 1024, f)));
            // The logical screen size is in the header; the slice probe would walk
            // the whole file, which the head is not.
            let le16 = |at: usize| {
                head.get(at..at + 2)
                    .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
            };
            let mut p = Probe::default();
            if let (Some(w), Some(h)) = (le16(6), le16(8)) {
                p.set_size(w, h);
            }
            if let Some(g) = g {
                kind.media_type = if g.frames > 1 {
                    MediaType::Video
                } else {
                    MediaType::Image
                };
                if g.frames > 1 {
                    p.set_duration(g.duration_ms);
                }
            }
            p
        }
        _ => probe(head, &kind),
    };
    Some((kind, p))
}

/// Reads an MP4's `moov` box (header included) by walking the top-level boxes.
fn read_moov<F: Read + Seek>(f: &mut F, size: u64) -> Option<Vec<u8>> {
    let mut at = 0u64;
    // A file of billions of tiny boxes is not a video: give up after this many.
    for _ in 0..4096 {
        if at.checked_add(8)? > size {
            return None;
        }
        f.seek(SeekFrom::Start(at)).ok()?;
        let mut h = [0u8; 16];
        f.read_exact(&mut h[..8]).ok()?;
        let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let box_len = match size32 {
            0 => size - at,
            1 => {
                f.read_exact(&mut h[8..16]).ok()?;
                u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]])
            }
            n => u64::from(n),
        };
        if box_len < 8 || at.checked_add(box_len)? > size {
            return None;
        }
        if &h[4..8] == b"moov" {
            if box_len > MAX_MOOV {
                return None;
            }
            let mut moov = vec![0u8; usize::try_from(box_len).ok()?];
            f.seek(SeekFrom::Start(at)).ok()?;
            f.read_exact(&mut moov).ok()?;
            return Some(moov);
        }
        at += box_len;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::media::gif_info;

    fn mp4(moov_last: bool, mdat_len: usize) -> Vec<u8> {
        let mut ftyp = b"\0\0\0\x14ftypisom\0\0\0\0isom".to_vec();
        // mvhd v0: version/flags, created, modified, timescale 1000, duration 4200.
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        mvhd[16..20].copy_from_slice(&4200u32.to_be_bytes());
        let mvhd_box = [&(8 + mvhd.len() as u32).to_be_bytes()[..], b"mvhd", &mvhd].concat();
        let moov = [
            &(8 + mvhd_box.len() as u32).to_be_bytes()[..],
            b"moov",
            &mvhd_box,
        ]
        .concat();
        let mdat = [
            &(8 + mdat_len as u32).to_be_bytes()[..],
            b"mdat",
            &vec![7u8; mdat_len],
        ]
        .concat();
        if moov_last {
            ftyp.extend_from_slice(&mdat);
            ftyp.extend_from_slice(&moov);
        } else {
            ftyp.extend_from_slice(&moov);
            ftyp.extend_from_slice(&mdat);
        }
        ftyp
    }

    #[test]
    fn an_mp4_whose_moov_follows_a_large_mdat_is_probed_from_the_file() {
        for moov_last in [true, false] {
            let b = mp4(moov_last, 3 * HEAD_LEN);
            let head = &b[..HEAD_LEN];
            let (kind, p) = probe_file(&mut Cursor::new(&b), head, b.len() as u64).expect("mp4");
            assert_eq!(kind.mime, "video/mp4");
            assert_eq!(p.duration_ms, Some(4200), "moov last: {moov_last}");
        }
    }

    #[test]
    fn a_gif_walked_from_the_file_agrees_with_the_slice_parser() {
        for seed in 0..4 {
            let gif = crate::render::sample_gif(seed, 24, 16, 2 + seed as u16, 10);
            let whole = gif_info(&gif).expect("gif");
            let head = &gif[..gif.len().min(64)];
            let (kind, p) =
                probe_file(&mut Cursor::new(&gif), head, gif.len() as u64).expect("gif");
            assert_eq!(kind.media_type, MediaType::Video);
            assert_eq!((p.width, p.height), (Some(24), Some(16)));
            assert_eq!(p.duration_ms, Some(whole.duration_ms));
        }
    }

    #[test]
    fn truncated_or_hostile_files_probe_to_nothing_without_panicking() {
        let b = mp4(true, 1000);
        for cut in [0, 4, 8, 20, 30, b.len() - 1] {
            let part = &b[..cut];
            let _ = probe_file(&mut Cursor::new(part), part, part.len() as u64);
        }
        // A 64-bit box length that overflows the offset.
        let mut evil = b"\0\0\0\x14ftypisom\0\0\0\0isom".to_vec();
        evil.extend_from_slice(&[0, 0, 0, 1]);
        evil.extend_from_slice(b"free");
        evil.extend_from_slice(&u64::MAX.to_be_bytes());
        let (_, p) =
            probe_file(&mut Cursor::new(&evil), &evil, evil.len() as u64).expect("sniffed");
        assert_eq!(p, Probe::default());
        // The size the caller gives may be a lie: reads past the end fail cleanly.
        let _ = probe_file(&mut Cursor::new(&evil), &evil, u64::MAX);
        // GIF with a global colour table larger than the file.
        let gif = b"GIF89a\x10\0\x10\0\xF7\0\0".to_vec();
        let _ = probe_file(&mut Cursor::new(&gif), &gif, gif.len() as u64);
    }

    #[tokio::test]
    async fn an_upload_streams_to_a_0640_file_in_0750_directories() {
        let root =
            std::env::temp_dir().join(format!("pixsim-inc-{}", uuid::Uuid::new_v4().simple()));
        let store = MediaStore::new(&root);
        let b = mp4(true, 100_000);
        let mut up = store.incoming().await.expect("incoming");
        for c in b.chunks(7000) {
            up.write(c).await.expect("write");
        }
        let got = up.finish().await.expect("finish").expect("media");
        assert_eq!((got.kind.mime, got.size), ("video/mp4", b.len() as u64));
        let stored = up.commit("mp4").await.expect("commit");
        assert_eq!(stored.hash, crate::media::content_hash(&b));
        let path = store.path(&stored.rel_path).expect("path");
        assert_eq!(std::fs::read(&path).expect("read"), b);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &std::path::Path| {
                std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
            };
            assert_eq!(
                mode(&path) & !crate::media::FILE_MODE,
                0,
                "{:o}",
                mode(&path)
            );
            assert_eq!(
                mode(path.parent().expect("dir")) & !crate::media::DIR_MODE,
                0
            );
        }
        // A dropped upload leaves nothing behind.
        let mut gone = store.incoming().await.expect("incoming");
        gone.write(b"partial").await.expect("write");
        drop(gone);
        let left = std::fs::read_dir(root.join("incoming"))
            .expect("dir")
            .count();
        assert_eq!(left, 0);
        let _ = std::fs::remove_dir_all(root);
    }
}
