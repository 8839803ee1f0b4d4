//! The closed sets stored as `text` in the generation tables: operations, job,
//! provider submission and account statuses, media types, asset origins and input
//! roles.
//!
//! Each is an enum whose text form is the same in PostgreSQL (the columns' `CHECK`
//! lists in `migrations/`), in JSON (serde `snake_case`) and in [`FromStr`]. They map
//! to `text` through `sqlx::Type`, so rows decode straight into them: a value outside
//! the set read from the database is a decode error, never a silent default. The
//! `generation` crate re-exports them from its `model` (with `utoipa::ToSchema`, behind
//! this crate's `openapi` feature).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// A text value that names no variant.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// An enum stored as `text`: its variants and their text forms (serde uses the same
/// `snake_case` spelling). The `sqlx` mapping delegates to `&str`, so it binds and
/// decodes as plain `text` (and `text[]`) with no type lookup.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// The text form (as stored and serialized).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(UnknownValue { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
            fn array_compatible(ty: &PgTypeInfo) -> bool {
                <&str as PgHasArrayType>::array_compatible(ty)
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
            fn size_hint(&self) -> usize {
                self.as_str().len()
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Postgres>>::decode(value)?.parse::<$name>()?)
            }
        }
    };
}

text_enum! {
    /// What a generation does.
    Operation {
        TextToVideo = "text_to_video",
        ImageToVideo = "image_to_video",
        VideoExtend = "video_extend",
        VideoTransition = "video_transition",
        Fusion = "fusion",
    }
}

text_enum! {
    /// Lifecycle of a generation job.
    JobStatus {
        /// Waiting in the queue (possibly scheduled for later).
        Pending = "pending",
        /// Leased by a worker.
        Processing = "processing",
        /// Held back by the user; `resume` puts it back in the queue.
        Paused = "paused",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl JobStatus {
    /// Completed, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        match self {
            JobStatus::Completed | JobStatus::Failed | JobStatus::Cancelled => true,
            JobStatus::Pending | JobStatus::Processing | JobStatus::Paused => false,
        }
    }
}

text_enum! {
    /// Status of one webhook message (one event for one endpoint).
    DeliveryStatus {
        /// Waiting for its first attempt, between attempts, or being attempted.
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Every attempt of the retry schedule failed (it may be redelivered).
        Failed = "failed",
    }
}

text_enum! {
    /// Status of a provider submission (one job attempt's submit).
    SubmissionStatus {
        /// Recorded before the provider is called; not accepted yet.
        Submitting = "submitting",
        /// Accepted by the provider under a remote id; being followed.
        Submitted = "submitted",
        /// The provider finished it and the result was stored.
        Succeeded = "succeeded",
        Failed = "failed",
        /// Refused by the provider's moderation.
        Filtered = "filtered",
        Cancelled = "cancelled",
        /// An earlier attempt's submission a new attempt could not adopt.
        Abandoned = "abandoned",
    }
}

text_enum! {
    /// Status of a provider account.
    AccountStatus {
        Active = "active",
        /// Out of credits.
        Exhausted = "exhausted",
        /// Rejected by the provider (e.g. a bad key); an admin must look.
        Error = "error",
        Disabled = "disabled",
        /// Cooling down until `cooldown_until`, then eligible again.
        RateLimited = "rate_limited",
    }
}

text_enum! {
    /// Kind of media.
    MediaType {
        Video = "video",
        Image = "image",
        Audio = "audio",
    }
}

text_enum! {
    /// How an asset came to be.
    AssetOrigin {
        Generated = "generated",
        Uploaded = "uploaded",
        /// Cut or rendered from another asset here (a clip).
        Derived = "derived",
    }
}

text_enum! {
    /// Where an asset's file is: fetched (`downloaded`), still only at the provider
    /// (`remote`), being fetched (`downloading`), or not fetchable (`error`).
    SyncStatus {
        Remote = "remote",
        Downloading = "downloading",
        Downloaded = "downloaded",
        Error = "error",
    }
}

text_enum! {
    /// The part an input asset plays in a generation.
    InputRole {
        /// The image an image_to_video animates.
        SourceImage = "source_image",
        /// The video a video_extend continues.
        SourceVideo = "source_video",
        /// One keyframe of a transition (in order).
        TransitionInput = "transition_input",
        /// A fusion subject reference.
        Subject = "subject",
        /// A fusion background reference.
        Background = "background",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_match_serde() {
        fn check<T>(all: &[T])
        where
            T: Copy
                + fmt::Display
                + FromStr<Err = UnknownValue>
                + Serialize
                + PartialEq
                + fmt::Debug,
        {
            for v in all {
                let text = v.to_string();
                assert_eq!(text.parse::<T>().ok(), Some(*v));
                assert_eq!(
                    serde_json::to_value(v).ok(),
                    Some(serde_json::Value::String(text))
                );
            }
        }
        check(Operation::ALL);
        check(JobStatus::ALL);
        check(SubmissionStatus::ALL);
        check(AccountStatus::ALL);
        check(MediaType::ALL);
        check(AssetOrigin::ALL);
        check(SyncStatus::ALL);
        check(InputRole::ALL);
        check(DeliveryStatus::ALL);
        assert!("Pending".parse::<JobStatus>().is_err());
    }

    #[tokio::test]
    async fn an_unknown_stored_value_is_a_decode_error() {
        let db = crate::testing::fresh_database()
            .await
            .expect("test database");
        let paused: JobStatus = sqlx::query_scalar("SELECT 'paused'::text")
            .fetch_one(&db.pool)
            .await
            .expect("a known value decodes");
        assert_eq!(paused, JobStatus::Paused);
        let statuses: Vec<AccountStatus> =
            sqlx::query_scalar("SELECT ARRAY['active', 'rate_limited']::text[]")
                .fetch_one(&db.pool)
                .await
                .expect("an array decodes");
        assert_eq!(
            statuses,
            [AccountStatus::Active, AccountStatus::RateLimited]
        );
        let err = sqlx::query_scalar::<_, JobStatus>("SELECT 'lost'::text")
            .fetch_one(&db.pool)
            .await
            .expect_err("an unknown value is refused");
        assert!(
            matches!(err, sqlx::Error::ColumnDecode { .. }),
            "not a decode error: {err}"
        );
    }
}
