//! An embedder backed by an OpenAI-compatible embeddings server (`POST
//! {base_url}/embeddings`, as OpenAI, vLLM, Infinity, llama.cpp and others serve it):
//! `{"model", "input": [..], "encoding_format": "float"}` → `{"data": [{"index",
//! "embedding": [..]}]}`. Texts go as strings. With `images`, pictures go as `data:`
//! URLs in the same `input` list (the convention of servers running CLIP-like
//! models, which embed text and images into one space): an image file as it is (PNG or
//! JPEG), a video as its middle frame. Every request goes through the SSRF guard.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use super::{BoxFuture, EmbedError, Embedder, to_column};
use crate::guard::{Guard, GuardedClient};
use crate::model::MediaType;
use crate::render::Ffmpeg;

/// Where and what to ask.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    /// e.g. `http://127.0.0.1:7997/v1` (the path before `/embeddings`).
    pub base_url: String,
    /// Sent as `Authorization: Bearer` when set.
    pub api_key: Option<String>,
    pub model: String,
    /// Whether the model takes images (as `data:` URLs); without, assets get no vector
    /// and only text search is possible against other sources.
    pub images: bool,
    pub timeout: std::time::Duration,
}

/// The adapter.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    cfg: OpenAiEmbedderConfig,
    client: GuardedClient,
    id: String,
}

/// Largest picture sent inline (bytes): larger images are sent as a scaled frame.
const MAX_INLINE: usize = 4 * 1024 * 1024;

impl OpenAiEmbedder {
    pub fn new(cfg: OpenAiEmbedderConfig, guard: &Guard) -> Result<Self, EmbedError> {
        let client = guard
            .client(reqwest::Client::builder().timeout(cfg.timeout))
            .map_err(|e| EmbedError::Server(e.to_string()))?;
        let id = format!("openai-compatible:{}", cfg.model);
        Ok(OpenAiEmbedder { cfg, client, id })
    }

    async fn embed(&self, input: String) -> Result<Vec<f32>, EmbedError> {
        let url = format!("{}/embeddings", self.cfg.base_url.trim_end_matches('/'));
        let mut req = self
            .client
            .request(reqwest::Method::POST, &url)
            .map_err(|e| EmbedError::Server(e.to_string()))?
            .json(&json!({
                "model": self.cfg.model,
                "input": [input],
                "encoding_format": "float",
            }));
        if let Some(k) = &self.cfg.api_key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| EmbedError::Server(format!("unreachable: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| EmbedError::Server(e.to_string()))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let msg: String = text.chars().take(200).collect();
            return Err(EmbedError::Server(format!("HTTP {status}: {msg}")));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| EmbedError::Server(format!("not JSON: {e}")))?;
        let emb = v
            .pointer("/data/0/embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| EmbedError::Server("no data[0].embedding".into()))?;
        let mut out = Vec::with_capacity(emb.len());
        for x in emb {
            let f = x
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| EmbedError::Server("an embedding value is not a number".into()))?;
            out.push(f as f32);
        }
        if out.is_empty() {
            return Err(EmbedError::Server("an empty embedding".into()));
        }
        super::unit_length(&mut out);
        to_column(out)
    }

    /// A picture of the file as a `data:` URL (the image itself, or a video's middle
    /// frame as PNG).
    fn picture(path: &Path, media_type: MediaType) -> Result<String, EmbedError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        if media_type == MediaType::Image {
            let bytes = std::fs::read(path).map_err(|e| EmbedError::Media(e.to_string()))?;
            let mime = crate::media::sniff(&bytes).map(|s| s.mime);
            if let Some(mime @ ("image/png" | "image/jpeg")) = mime
                && bytes.len() <= MAX_INLINE
            {
                return Ok(format!("data:{mime};base64,{}", b64.encode(&bytes)));
            }
        }
        let ff = Ffmpeg::locate().map_err(|e| EmbedError::Media(e.to_string()))?;
        let at = (media_type == MediaType::Video).then_some(1000);
        let png = crate::render::codec::thumbnail_file(&ff, path, at)
            .map_err(|e| EmbedError::Media(e.to_string()))?;
        Ok(format!("data:image/png;base64,{}", b64.encode(&png)))
    }
}

impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn embed_file<'a>(
        &'a self,
        path: &'a Path,
        media_type: MediaType,
    ) -> BoxFuture<'a, Result<Option<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            if !self.cfg.images || media_type == MediaType::Audio {
                return Ok(None);
            }
            let p = path.to_path_buf();
            let url = tokio::task::spawn_blocking(move || Self::picture(&p, media_type))
                .await
                .map_err(|e| EmbedError::Media(e.to_string()))??;
            self.embed(url).await.map(Some)
        })
    }

    fn embed_text<'a>(
        &'a self,
        text: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<f32>>, EmbedError>> {
        Box::pin(async move { self.embed(text.to_owned()).await.map(Some) })
    }
}
