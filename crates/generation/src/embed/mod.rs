//! Embeddings of assets, for similarity search in pgvector: an [`Embedder`] turns a
//! stored file (and, where it can, a text) into a vector; the embedding task
//! ([`crate::GenerationService::run_embeddings`]) embeds every asset in the background
//! and stores the embedder's id beside each vector, so a change of embedder re-embeds
//! instead of mixing spaces.
//!
//! Built in: [`VisualEmbedder`] (`visual.rs`: offline, no model). Vectors shorter than
//! the column's [`COLUMN_DIMS`] are padded with zeros, which leaves cosine distances as
//! they were.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use crate::model::MediaType;
use crate::render::Ffmpeg;
use crate::render::codec::decode_sampled;

pub mod openai;
pub mod visual;

pub use openai::{OpenAiEmbedder, OpenAiEmbedderConfig};

/// The dimension of `assets.embedding` (`vector(1024)`).
pub const COLUMN_DIMS: usize = 1024;

/// A boxed future, as the provider adapters use.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an embedding could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The file could not be read or decoded.
    #[error("cannot read the media: {0}")]
    Media(String),
    /// The embedder gave more dimensions than the column holds.
    #[error("the embedder gave {0} dimensions; the column holds {COLUMN_DIMS}")]
    TooManyDimensions(usize),
    /// The embeddings server failed or answered out of contract.
    #[error("the embeddings server: {0}")]
    Server(String),
}

/// Turns media (and possibly text) into vectors of one space.
pub trait Embedder: Send + Sync + 'static {
    /// Name and version (`visual/1`), stored beside each vector: vectors of another id
    /// are re-embedded, never compared.
    fn id(&self) -> &str;

    /// The embedding of a stored file; `Ok(None)` for a media type it does not embed.
    fn embed_file<'a>(
        &'a self,
        path: &'a Path,
        media_type: MediaType,
    ) -> BoxFuture<'a, Result<Option<Vec<f32>>, EmbedError>>;

    /// The embedding of a text in the same space; `Ok(None)` when the embedder has no
    /// text side.
    fn embed_text<'a>(
        &'a self,
        _text: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<f32>>, EmbedError>> {
        Box::pin(async { Ok(None) })
    }
}

/// `v` padded with zeros to [`COLUMN_DIMS`].
pub fn to_column(mut v: Vec<f32>) -> Result<Vec<f32>, EmbedError> {
    if v.len() > COLUMN_DIMS {
        return Err(EmbedError::TooManyDimensions(v.len()));
    }
    v.resize(COLUMN_DIMS, 0.0);
    Ok(v)
}

/// Brings `v` to unit length (cosine distances are then dot products).
pub(crate) fn unit_length(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 1e-12 {
        for x in v.iter_mut() {
            *x /= n;
        }
    }
}

/// How many frames a second of video gives the visual embedder …
const FRAMES_PER_SECOND: f32 = 2.0;
/// … and at most how many in all.
const MAX_FRAMES: usize = 16;

/// The built-in offline embedder (see [`visual`]): images and videos, no text.
#[derive(Debug, Clone)]
pub struct VisualEmbedder {
    ffmpeg: Option<PathBuf>,
}

impl VisualEmbedder {
    /// Its id: bump the version whenever the vectors it makes change.
    pub const ID: &'static str = "visual/1";

    /// Uses the ffmpeg found as the renderer finds it.
    pub fn new() -> Self {
        VisualEmbedder { ffmpeg: None }
    }

    /// Uses the ffmpeg at `path`.
    pub fn with_ffmpeg(path: impl Into<PathBuf>) -> Self {
        VisualEmbedder {
            ffmpeg: Some(path.into()),
        }
    }

    /// The embedding of the image or video at `path` (blocking: ffmpeg decodes it).
    pub fn embed_path(
        &self,
        path: &Path,
        media_type: MediaType,
    ) -> Result<Option<Vec<f32>>, EmbedError> {
        let per_second = match media_type {
            MediaType::Audio => return Ok(None),
            MediaType::Image => None,
            MediaType::Video => Some(FRAMES_PER_SECOND),
        };
        let ff = match &self.ffmpeg {
            Some(p) => Ffmpeg::at(p.clone()),
            None => Ffmpeg::locate().map_err(|e| EmbedError::Media(e.to_string()))?,
        };
        let frames = decode_sampled(&ff, path, visual::SIDE as u32, per_second, MAX_FRAMES)
            .map_err(|e| EmbedError::Media(e.to_string()))?;
        let v = visual::embed_frames(frames.iter().map(|f| f.px.as_slice()))
            .ok_or_else(|| EmbedError::Media("no frame decoded".into()))?;
        to_column(v).map(Some)
    }
}

impl Default for VisualEmbedder {
    fn default() -> Self {
        Self::new()
    }
}

impl Embedder for VisualEmbedder {
    fn id(&self) -> &str {
        Self::ID
    }

    fn embed_file<'a>(
        &'a self,
        path: &'a Path,
        media_type: MediaType,
    ) -> BoxFuture<'a, Result<Option<Vec<f32>>, EmbedError>> {
        let me = self.clone();
        let path = path.to_path_buf();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || me.embed_path(&path, media_type))
                .await
                .map_err(|e| EmbedError::Media(format!("the embedding task failed: {e}")))?
        })
    }
}
