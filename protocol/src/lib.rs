//! The vocabulary every vidseek process speaks on NATS.
//!
//! The gateway, the query stage, encoders, rankers and ingest workers never
//! call each other directly: they exchange the messages defined here over the
//! subjects listed in [`subjects`]. Internal traffic is MessagePack, the edges
//! (NATS clients such as the `nats` CLI, the HTTP API) speak JSON; [`codec`]
//! picks the format from the `Content-Type` header so both work on the same
//! subject. This crate deliberately has no async runtime, HTTP or ONNX
//! dependency so that any client can reuse it.

pub mod codec;
pub mod encode;
pub mod error;
pub mod ingest;
pub mod query;
pub mod rank;
pub mod sharding;
pub mod subjects;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
