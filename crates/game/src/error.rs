//! [`GameError`]: why a game request failed, and its wire code.

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GameError {
    /// No such session, or not the caller's (indistinguishable on purpose).
    #[error("no such session")]
    NotFound,
    /// Unknown or invalid scene/world.
    #[error("{0}")]
    Invalid(String),
    /// The session has ended.
    #[error("the session has ended")]
    Ended,
    /// Too much work queued; retry later.
    #[error("the server is busy, retry later")]
    Busy,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The user has [`GameConfig::max_live_sessions_per_user`] live sessions already.
    #[error("too many live game sessions (at most {max}); end one or leave one idle first")]
    SessionLimit { max: usize },
    /// A database failure.
    #[error("storage: {0}")]
    Store(#[from] store::StoreError),
    /// Stored data cannot be read.
    #[error("stored session is corrupt: {0}")]
    Corrupt(String),
}

impl GameError {
    /// Code used in `Rejected` and REST errors.
    pub fn code(&self) -> &'static str {
        match self {
            GameError::NotFound => "not_found",
            GameError::Invalid(_) => "invalid_request",
            GameError::Ended => "session_ended",
            GameError::Busy => "busy",
            GameError::ShuttingDown => "shutting_down",
            GameError::SessionLimit { .. } => "session_limit",
            GameError::Store(_) | GameError::Corrupt(_) => "internal",
        }
    }
}
