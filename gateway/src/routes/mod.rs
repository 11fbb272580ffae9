//! HTTP handlers, one module per concern. Each answers JSON and reports
//! failures as [`crate::error::ApiError`].

pub mod form;
pub mod health;
pub mod media;
pub mod scores;
pub mod search;
pub mod seed;
pub mod videos;
