//! Adapters against the contract fakes (Pixverse, OpenAI, Replicate, an embeddings server), the local renderer and the download guard:
//! one module per provider (adapter contract and worker runs), `download` (the guarded
//! downloader) and `worker` (worker-level behaviour across providers). Helpers shared
//! by the modules live here.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod download;
mod embeddings;
mod local;
mod openai;
mod pixverse;
mod replicate;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use generation::download::{DownloadConfig, Downloader};
use generation::guard::{Guard, GuardConfig};
use generation::model::{GenerationParams, InputRole, MediaType, Operation};
use generation::provider::pixverse::{PixverseConfig, PixverseProvider};
use generation::provider::{Credentials, InputMedia, ProviderError, SubmitRequest};
use uuid::Uuid;

type Check = fn(&ProviderError) -> bool;

fn creds(key: &str) -> Credentials {
    Credentials {
        account_id: Uuid::now_v7(),
        api_key: key.into(),
    }
}

/// The guard as the tests' fakes need it: loopback allowed.
fn open_guard() -> Guard {
    Guard::new(GuardConfig {
        allow_private: true,
        ..Default::default()
    })
}

fn req(op: Operation, params: GenerationParams, inputs: Vec<InputMedia>) -> SubmitRequest {
    SubmitRequest {
        job_id: Uuid::now_v7(),
        attempt: 1,
        operation: op,
        params,
        inputs,
        progress: Default::default(),
    }
}

fn pix_params() -> GenerationParams {
    GenerationParams {
        prompt: Some("a cat".into()),
        model: Some("v5".into()),
        duration: Some(5),
        quality: Some("540p".into()),
        aspect_ratio: Some("16:9".into()),
        seed: Some(3),
        ..Default::default()
    }
}

fn image_input() -> InputMedia {
    InputMedia {
        asset_id: Uuid::now_v7(),
        role: InputRole::SourceImage,
        ref_name: None,
        media_type: MediaType::Image,
        mime: "image/png".into(),
        bytes: Arc::new(generation::fakes::sample_png(5)),
        origin_provider: None,
        origin_remote_id: None,
        remote: None,
    }
}

fn pixverse(base: String, timeout: Duration) -> PixverseProvider {
    PixverseProvider::new(
        PixverseConfig {
            base_url: base,
            request_timeout: timeout,
            poll_interval: Duration::from_millis(10),
            ..Default::default()
        },
        &open_guard(),
    )
    .unwrap()
}

fn downloader() -> Downloader {
    Downloader::new(DownloadConfig::default(), &open_guard()).unwrap()
}

/// Claims and runs one job; how its attempt ended.
async fn run_one(w: &generation::Worker) -> generation::Outcome {
    match w.try_execute_once().await.unwrap() {
        generation::Executed::Ran { outcome, .. } => outcome,
        generation::Executed::EmptyQueue => panic!("the queue is empty"),
    }
}
