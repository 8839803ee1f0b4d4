//! Pipeline events, broadcast in-process (`tokio::sync::broadcast`); the server forwards
//! them to `/api/v1/ws/generations` and into the simulation. With Redis
//! ([`crate::GenerationService::connect_redis`]) every node's broadcast also carries the
//! other nodes' events.

use domain::user::UserId;
use serde::{Deserialize, Serialize};

use crate::model::{Asset, Generation};

/// One event. Serialized with `type` = `job:created`, `job:updated`, `job:completed`,
/// `job:failed` or `asset:created` (the names of the original system).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum GenerationEvent {
    #[serde(rename = "job:created")]
    JobCreated { generation: Box<Generation> },
    /// Status or progress changed (claimed, requeued, paused, resumed, cancelled, …).
    #[serde(rename = "job:updated")]
    JobUpdated { generation: Box<Generation> },
    #[serde(rename = "job:completed")]
    JobCompleted {
        generation: Box<Generation>,
        asset: Box<Asset>,
    },
    #[serde(rename = "job:failed")]
    JobFailed { generation: Box<Generation> },
    #[serde(rename = "asset:created")]
    AssetCreated { asset: Box<Asset> },
}

impl GenerationEvent {
    /// The user the event concerns (route it to their sockets).
    pub fn user_id(&self) -> UserId {
        match self {
            GenerationEvent::JobCreated { generation }
            | GenerationEvent::JobUpdated { generation }
            | GenerationEvent::JobCompleted { generation, .. }
            | GenerationEvent::JobFailed { generation } => generation.user_id,
            GenerationEvent::AssetCreated { asset } => asset.owner_id,
        }
    }

    /// The event's `type` string.
    pub fn kind(&self) -> &'static str {
        match self {
            GenerationEvent::JobCreated { .. } => "job:created",
            GenerationEvent::JobUpdated { .. } => "job:updated",
            GenerationEvent::JobCompleted { .. } => "job:completed",
            GenerationEvent::JobFailed { .. } => "job:failed",
            GenerationEvent::AssetCreated { .. } => "asset:created",
        }
    }

    /// The generation, for job events.
    pub fn generation(&self) -> Option<&Generation> {
        match self {
            GenerationEvent::JobCreated { generation }
            | GenerationEvent::JobUpdated { generation }
            | GenerationEvent::JobCompleted { generation, .. }
            | GenerationEvent::JobFailed { generation } => Some(generation),
            GenerationEvent::AssetCreated { .. } => None,
        }
    }
}
