//! Thumbnails of stored media: a frame of a video (at a second in, or half way through
//! a shorter clip) or a scaled-down image, made by ffmpeg
//! ([`crate::render::codec::thumbnail_file`], at most [`crate::render::THUMBNAIL_MAX`]
//! pixels on a side) and stored content-addressed beside the file.

use crate::media::MediaStore;
use crate::model::MediaType;
use crate::render::Ffmpeg;
use crate::render::codec::thumbnail_file;

/// Makes and stores the thumbnail of the stored file `rel_path`; returns its store
/// path. `None` for audio, and when ffmpeg is missing or cannot read the file (logged:
/// a thumbnail is a nicety, never a reason to refuse an asset).
pub async fn make(
    media: &MediaStore,
    rel_path: &str,
    media_type: MediaType,
    duration_ms: Option<u64>,
) -> Option<String> {
    let at_ms = match media_type {
        MediaType::Audio => return None,
        MediaType::Image => None,
        MediaType::Video => Some(duration_ms.map_or(0, |d| (d / 2).min(1000))),
    };
    let path = media.path(rel_path).ok()?;
    let made = tokio::task::spawn_blocking(move || {
        let ff = Ffmpeg::locate()?;
        thumbnail_file(&ff, &path, at_ms)
    })
    .await;
    let png = match made {
        Ok(Ok(png)) => png,
        Ok(Err(e)) => {
            tracing::warn!("no thumbnail for {rel_path}: {e}");
            return None;
        }
        Err(e) => {
            tracing::warn!("no thumbnail for {rel_path}: the task failed: {e}");
            return None;
        }
    };
    match media.put(&png, "png").await {
        Ok(stored) => Some(stored.rel_path),
        Err(e) => {
            tracing::warn!("cannot store the thumbnail of {rel_path}: {e}");
            None
        }
    }
}
