//! The local renderer: real, deterministic H.264/MP4 and lineage order (decoded checks
//! of each operation are in `tests/render.rs`).

use crate::common::*;
use std::sync::Arc;

use generation::media::sniff;
use generation::model::{GenerationParams, InputRole, MediaType, Operation};
use generation::provider::InputMedia;
use generation::provider::local::LocalProvider;
use generation::{Executed, Outcome};

use super::{image_input, req};

#[tokio::test]
async fn local_renders_real_deterministic_media() {
    let mut params = GenerationParams {
        prompt: Some("a lighthouse".into()),
        seed: Some(9),
        duration: Some(1),
        ..Default::default()
    };
    let mut issues = generation::params::Issues::default();
    params = generation::provider::local::validate(Operation::TextToVideo, &params, &mut issues);
    assert!(issues.is_empty());
    let r = req(Operation::TextToVideo, params.clone(), vec![]);
    let a = LocalProvider::render_request(&r).unwrap();
    let b = LocalProvider::render_request(&r).unwrap();
    assert_eq!(a.bytes, b.bytes, "deterministic per seed");
    let kind = sniff(&a.bytes).unwrap();
    assert_eq!(
        (kind.media_type, kind.mime),
        (MediaType::Video, "video/mp4")
    );
    // One second at the local frame rate, 360p 16:9 (the defaults).
    let info = generation::media::mp4::parse(&a.bytes).unwrap();
    let v = info.video.unwrap();
    assert_eq!((&v.codec, v.width, v.height), (b"avc1", 640, 360));
    let fps = generation::provider::local::LOCAL_FPS;
    assert_eq!(v.frames, u64::from(fps));
    assert_eq!(v.fps_milli, Some(u64::from(fps) * 1000));
    assert_eq!(info.duration_ms, Some(1000));
    let thumb = a.thumbnail.unwrap();
    assert!(thumb.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]));
    let mut other = r.clone();
    other.params.seed = Some(10);
    assert_ne!(
        LocalProvider::render_request(&other).unwrap().bytes,
        a.bytes
    );
    // Every operation, using its inputs.
    let png = image_input();
    let clip = InputMedia {
        role: InputRole::SourceVideo,
        media_type: MediaType::Video,
        mime: "video/mp4".into(),
        bytes: Arc::new(a.bytes.clone()),
        ..image_input()
    };
    for (op, inputs) in [
        (Operation::ImageToVideo, vec![png.clone()]),
        (Operation::VideoExtend, vec![clip]),
        (
            Operation::VideoTransition,
            vec![
                InputMedia {
                    role: InputRole::TransitionInput,
                    ..png.clone()
                },
                InputMedia {
                    role: InputRole::TransitionInput,
                    bytes: Arc::new(generation::fakes::sample_png(77)),
                    ..png.clone()
                },
            ],
        ),
        (
            Operation::Fusion,
            vec![
                InputMedia {
                    role: InputRole::Subject,
                    ref_name: Some("cat".into()),
                    ..png.clone()
                },
                InputMedia {
                    role: InputRole::Background,
                    ref_name: Some("room".into()),
                    ..png.clone()
                },
            ],
        ),
    ] {
        let r = req(op, params.clone(), inputs);
        let out = LocalProvider::render_request(&r).unwrap();
        assert_eq!(sniff(&out.bytes).unwrap().mime, "video/mp4", "{op}");
        assert_ne!(out.bytes, a.bytes, "{op} uses its inputs");
    }
}

/// Local transition: lineage edges keep the inputs' order.
#[tokio::test]
async fn local_transition_lineage_order() {
    let e = env().await;
    let a = e
        .svc
        .upload_asset(e.user, &generation::fakes::sample_png(1), None)
        .await
        .unwrap();
    let b = e
        .svc
        .upload_asset(e.user, &generation::fakes::sample_png(2), None)
        .await
        .unwrap();
    let req = generation::model::CreateGeneration {
        operation: Some(Operation::VideoTransition),
        params: GenerationParams {
            prompt: Some("dawn to dusk".into()),
            ..Default::default()
        },
        inputs: vec![
            generation::model::InputRef {
                asset_id: a.id,
                role: None,
                ref_name: None,
            },
            generation::model::InputRef {
                asset_id: b.id,
                role: None,
                ref_name: None,
            },
        ],
        ..Default::default()
    };
    let g = e.svc.create(e.user, req).await.unwrap();
    assert_eq!(g.provider, "local");
    let out = e.svc.worker().try_execute_once().await.unwrap();
    let Executed::Ran {
        outcome: Outcome::Completed { asset_id },
        ..
    } = out
    else {
        panic!("{out:?}")
    };
    let l = e.svc.asset_lineage(e.user, asset_id).await.unwrap();
    let order: Vec<(uuid::Uuid, i32, &str)> = l
        .parents
        .iter()
        .map(|p| (p.parent_asset_id, p.sequence, p.relation.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![(a.id, 0, "transition_input"), (b.id, 1, "transition_input")]
    );
    // An image input given to video_extend is refused by validation.
    let bad = generation::model::CreateGeneration {
        operation: Some(Operation::VideoExtend),
        params: GenerationParams {
            prompt: Some("more".into()),
            ..Default::default()
        },
        inputs: vec![generation::model::InputRef {
            asset_id: a.id,
            role: None,
            ref_name: None,
        }],
        ..Default::default()
    };
    let r = e.svc.validate(e.user, &bad).await.unwrap();
    assert_eq!(r.issues[0].code, "invalid_media_type");
    // Pixverse fusion prompts must name every reference.
    let mut issues = generation::params::Issues::default();
    let inputs = vec![generation::model::InputRef {
        asset_id: a.id,
        role: Some(InputRole::Subject),
        ref_name: Some("hero".into()),
    }];
    generation::provider::pixverse::validate(
        Operation::Fusion,
        &GenerationParams {
            prompt: Some("a knight".into()),
            ..Default::default()
        },
        &inputs,
        &mut issues,
    );
    assert!(
        issues.0.iter().any(|i| i.code == "not_in_prompt"),
        "{:?}",
        issues.0
    );
}
