//! The OpenAI-compatible embeddings adapter against its contract fake: texts and
//! pictures into one space, the bearer key, errors named.

use std::time::Duration;

use generation::embed::{COLUMN_DIMS, Embedder, OpenAiEmbedder, OpenAiEmbedderConfig};
use generation::fakes::embeddings::{MODEL, start};
use generation::model::MediaType;

use super::open_guard;

fn embedder(base: &str, key: &str, model: &str, images: bool) -> OpenAiEmbedder {
    OpenAiEmbedder::new(
        OpenAiEmbedderConfig {
            base_url: format!("{base}/v1"),
            api_key: Some(key.into()),
            model: model.into(),
            images,
            timeout: Duration::from_secs(5),
        },
        &open_guard(),
    )
    .unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn texts_and_pictures_are_embedded_into_one_space() {
    let fake = start("k").await.unwrap();
    let e = embedder(&fake.base_url(), "k", MODEL, true);
    assert_eq!(e.id(), "openai-compatible:fake-colour-clip");
    let red_text = e.embed_text("a red door").await.unwrap().unwrap();
    let blue_text = e.embed_text("blue").await.unwrap().unwrap();
    assert_eq!(red_text.len(), COLUMN_DIMS);
    let dir = tempfile::tempdir().unwrap();
    let red = dir.path().join("red.png");
    std::fs::write(
        &red,
        generation::render::stills::encode_png_rgb(&[230u8, 20, 20].repeat(64), 8, 8).unwrap(),
    )
    .unwrap();
    let picture = e.embed_file(&red, MediaType::Image).await.unwrap().unwrap();
    assert!(dot(&picture, &red_text) > dot(&picture, &blue_text));
    // Audio has no picture; without `images`, files are not embedded.
    assert!(
        e.embed_file(&red, MediaType::Audio)
            .await
            .unwrap()
            .is_none()
    );
    let texts_only = embedder(&fake.base_url(), "k", MODEL, false);
    assert!(
        texts_only
            .embed_file(&red, MediaType::Image)
            .await
            .unwrap()
            .is_none()
    );
    assert!(fake.control.violations().is_empty());
}

#[tokio::test]
async fn errors_say_what_the_server_answered() {
    let fake = start("k").await.unwrap();
    let wrong_key = embedder(&fake.base_url(), "nope", MODEL, true);
    let e = wrong_key.embed_text("red").await.unwrap_err().to_string();
    assert!(e.contains("401"), "{e}");
    let unknown = embedder(&fake.base_url(), "k", "no-such-model", true);
    let e = unknown.embed_text("red").await.unwrap_err().to_string();
    assert!(e.contains("404"), "{e}");
    // Nobody there.
    let gone = embedder("http://127.0.0.1:9", "k", MODEL, true);
    let e = gone.embed_text("red").await.unwrap_err().to_string();
    assert!(e.contains("unreachable"), "{e}");
}
