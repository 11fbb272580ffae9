//! Test harness shared by the end-to-end tests and the crates' own
//! integration tests: real servers and processes, started per test on random
//! ports and stopped on drop.

pub mod bitmap_subtitles;
pub mod cluster;
pub mod media;
pub mod nats;
pub mod paths;
pub mod photos;
pub mod process;
pub mod requests;
pub mod secure_nats;
pub mod stack;
pub mod tiny_pack;
pub mod websocket;
