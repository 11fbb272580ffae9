//! vidseek's NATS workers. Each role is a module and runs as its own task set,
//! so one process can host any combination (embedded mode hosts them all):
//!
//! - [`encoder`]: text and image encoders (ONNX Runtime) as NATS services;
//! - [`ranker`]: one shard's in-memory index, rebuilt from the segment log;
//! - [`query`]: the public search subjects: encode, scatter to shards, merge;
//! - [`ingest`]: the ingest service and the work-queue consumer;
//! - [`media`]: ffmpeg/ffprobe access, shot detection, frames, thumbnails,
//!   subtitles (no NATS; used by [`ingest`]);
//! - [`modelpack`]: model-pack manifests, verification, pull and import;
//! - [`text`]: query language, Chinese → English translation and the
//!   lexical terms of subtitle cues and queries (no NATS, no ONNX).

pub mod encoder;
pub mod ingest;
pub mod media;
pub mod modelpack;
pub mod query;
pub mod ranker;
pub mod text;
