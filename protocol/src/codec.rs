//! JSON at the edges, MessagePack inside, one set of types for both.
//!
//! A message whose `Content-Type` header is `application/msgpack` is decoded as
//! MessagePack and answered in MessagePack; anything else is JSON. Internal
//! clients always send MessagePack (smaller vectors, no float formatting).

use serde::{Serialize, de::DeserializeOwned};

use crate::{ErrorBody, ErrorCode};

pub const CONTENT_TYPE: &str = "Content-Type";
pub const MSGPACK: &str = "application/msgpack";
pub const JSON: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    MsgPack,
}

impl Format {
    /// The format announced by a `Content-Type` header value (absent = JSON).
    pub fn from_content_type(value: Option<&str>) -> Format {
        match value {
            Some(v) if v.trim().eq_ignore_ascii_case(MSGPACK) => Format::MsgPack,
            _ => Format::Json,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::MsgPack => MSGPACK,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid MessagePack: {0}")]
    MsgPackDecode(#[from] rmp_serde::decode::Error),
    #[error("cannot encode MessagePack: {0}")]
    MsgPackEncode(#[from] rmp_serde::encode::Error),
}

impl CodecError {
    /// Decode failures are the sender's fault; encode failures are ours.
    pub fn to_error_body(&self) -> ErrorBody {
        match self {
            CodecError::MsgPackEncode(_) => ErrorBody::new(ErrorCode::Internal, self.to_string()),
            _ => ErrorBody::new(ErrorCode::BadRequest, self.to_string()),
        }
    }
}

pub fn encode<T: Serialize>(format: Format, value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(match format {
        Format::Json => serde_json::to_vec(value)?,
        // Named fields keep MessagePack self-describing, so optional fields can
        // be added without breaking older peers.
        Format::MsgPack => rmp_serde::to_vec_named(value)?,
    })
}

pub fn decode<T: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<T, CodecError> {
    Ok(match format {
        Format::Json => serde_json::from_slice(bytes)?,
        Format::MsgPack => rmp_serde::from_slice(bytes)?,
    })
}

#[cfg(test)]
pub(crate) mod roundtrip {
    use serde::{Serialize, de::DeserializeOwned};
    use std::fmt::Debug;

    /// Asserts that a message survives both wire formats unchanged.
    pub fn assert_roundtrip<T>(value: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + Debug,
    {
        for format in [super::Format::Json, super::Format::MsgPack] {
            let bytes = super::encode(format, value).expect("encode");
            let back: T = super::decode(format, &bytes).expect("decode");
            assert_eq!(&back, value, "round trip through {format:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_selects_format() {
        assert_eq!(Format::from_content_type(None), Format::Json);
        assert_eq!(
            Format::from_content_type(Some("application/json")),
            Format::Json
        );
        assert_eq!(
            Format::from_content_type(Some("Application/MsgPack ")),
            Format::MsgPack
        );
    }

    #[test]
    fn malformed_input_is_a_bad_request() {
        let err = decode::<ErrorBody>(Format::Json, b"{not json").unwrap_err();
        assert_eq!(err.to_error_body().error.code, ErrorCode::BadRequest);
        let err = decode::<ErrorBody>(Format::MsgPack, &[0xc1, 0x00]).unwrap_err();
        assert_eq!(err.to_error_body().error.code, ErrorCode::BadRequest);
    }

    #[test]
    fn error_body_roundtrips() {
        roundtrip::assert_roundtrip(&ErrorBody::new(ErrorCode::Timeout, "slow"));
    }
}

/// Every request type any vidseek subject decodes, fed bytes no honest
/// client sends: decoding must answer an error, never panic, and every
/// well-formed message must survive both formats unchanged.
#[cfg(test)]
mod properties {
    use super::roundtrip::assert_roundtrip;
    use super::*;
    use crate::encode::{Calibration, EncodeImageRequest, EncodeTextRequest};
    use crate::ingest::{DeleteVideo, IngestJob, IngestRequest};
    use crate::query::{ImageSearch, QueryInput, SearchRequest, TextSearch};
    use crate::rank::{
        KindCalibration, RankRequest, SegmentKind, SegmentLogEntry, SegmentMeta, SegmentRecord,
        Space,
    };
    use proptest::prelude::*;

    /// Decodes `bytes` as every request type in both formats. A failure must
    /// be a `bad_request`, the sender's fault.
    fn decode_everything(bytes: &[u8]) {
        fn one<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
            for format in [Format::Json, Format::MsgPack] {
                if let Err(err) = decode::<T>(format, bytes) {
                    assert_eq!(err.to_error_body().error.code, ErrorCode::BadRequest);
                }
            }
        }
        one::<TextSearch>(bytes);
        one::<ImageSearch>(bytes);
        one::<SearchRequest>(bytes);
        one::<IngestRequest>(bytes);
        one::<DeleteVideo>(bytes);
        one::<IngestJob>(bytes);
        one::<EncodeTextRequest>(bytes);
        one::<EncodeImageRequest>(bytes);
        one::<RankRequest>(bytes);
        one::<SegmentLogEntry>(bytes);
        one::<()>(bytes);
    }

    /// Floats that are exact in binary and short in decimal: what a
    /// round trip through JSON text can promise to keep bit for bit.
    fn float() -> impl Strategy<Value = f32> {
        (-(1i32 << 20)..(1i32 << 20)).prop_map(|i| i as f32 / 1024.0)
    }

    fn calibration() -> impl Strategy<Value = KindCalibration> {
        (float(), float(), float(), float(), any::<bool>()).prop_map(|(a, b, c, d, ocr)| {
            KindCalibration {
                shot: Calibration { a, b },
                subtitle: Calibration { a: c, b: d },
                ocr: ocr.then_some(Calibration { a: d, b: c }),
            }
        })
    }

    fn rank_request() -> impl Strategy<Value = RankRequest> {
        (
            prop_oneof![Just(Space::Text), Just(Space::Image)],
            prop::collection::vec(float(), 0..64),
            any::<usize>(),
            calibration(),
            float(),
            prop::collection::vec(any::<String>(), 0..8),
        )
            .prop_map(
                |(space, vector, k, calibration, min_score, terms)| RankRequest {
                    space,
                    vector,
                    k,
                    calibration,
                    min_score,
                    terms,
                    filter: Default::default(),
                    exclude: vec![],
                    group_by_video: false,
                    blend: None,
                },
            )
    }

    fn segment_log_entry() -> impl Strategy<Value = SegmentLogEntry> {
        let meta = (
            any::<String>(),
            any::<String>(),
            any::<u32>(),
            float(),
            float(),
            any::<bool>(),
            proptest::option::of(any::<String>()),
        )
            .prop_map(|(video_id, video_name, index, start, end, shot, text)| {
                SegmentMeta {
                    segment_id: crate::rank::segment_id(&video_id, index),
                    video_id,
                    video_name,
                    index,
                    start: start.into(),
                    end: end.into(),
                    kind: if shot {
                        SegmentKind::Shot
                    } else {
                        SegmentKind::Subtitle
                    },
                    text,
                }
            });
        let record = (
            meta,
            prop::collection::vec(float(), 0..16),
            proptest::option::of(prop::collection::vec(float(), 0..16)),
            prop::collection::vec(any::<String>(), 0..4),
        )
            .prop_map(|(meta, text_vector, image_vector, terms)| SegmentRecord {
                meta,
                text_vector,
                image_vector,
                terms,
            });
        prop_oneof![
            (
                any::<String>(),
                any::<String>(),
                any::<u32>(),
                any::<u32>(),
                prop::collection::vec(record, 0..4)
            )
                .prop_map(|(video_id, generation, part, parts, segments)| {
                    SegmentLogEntry::Upsert {
                        video_id,
                        generation,
                        part,
                        parts,
                        segments,
                    }
                }),
            any::<String>().prop_map(|video_id| SegmentLogEntry::Delete { video_id }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            decode_everything(&bytes);
        }

        #[test]
        fn arbitrary_json_text_never_panics(text in "[{}\\[\\]\":,0-9a-z_ .\\-\\\\]{0,200}") {
            decode_everything(text.as_bytes());
        }

        /// Valid messages with some bytes overwritten: deep inside the
        /// decoders, where random bytes rarely get.
        #[test]
        fn corrupted_messages_never_panic(
            request in rank_request(),
            msgpack in any::<bool>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let format = if msgpack { Format::MsgPack } else { Format::Json };
            let mut bytes = encode(format, &request).unwrap();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            decode_everything(&bytes);
        }

        #[test]
        fn public_requests_roundtrip(
            text in any::<String>(),
            k in proptest::option::of(any::<usize>()),
            min_score in proptest::option::of(float()),
            path in any::<String>(),
            name in proptest::option::of(any::<String>()),
            subtitles in proptest::option::of(any::<String>()),
        ) {
            assert_roundtrip(&TextSearch { text: text.clone(), k, min_score, scope: Default::default() });
            assert_roundtrip(&ImageSearch { image_base64: text.clone(), k, min_score, scope: Default::default() });
            assert_roundtrip(&IngestRequest { path: path.clone(), name, subtitles, ocr: None });
            assert_roundtrip(&DeleteVideo { video_id: path });
            assert_roundtrip(&EncodeTextRequest { texts: vec![text.clone(), String::new(), text] });
        }

        #[test]
        fn internal_requests_roundtrip(
            query_id in any::<String>(),
            text in any::<String>(),
            image in prop::collection::vec(any::<u8>(), 0..256),
            k in any::<usize>(),
            min_score in float(),
            rank in rank_request(),
            entry in segment_log_entry(),
        ) {
            assert_roundtrip(&SearchRequest {
                query_id: query_id.clone(),
                input: QueryInput::Text { text },
                k,
                min_score,
                filter: Default::default(),
                group_by_video: false,
            });
            assert_roundtrip(&SearchRequest {
                query_id,
                input: QueryInput::Image { bytes: image.clone() },
                k,
                min_score,
                filter: Default::default(),
                group_by_video: true,
            });
            assert_roundtrip(&EncodeImageRequest {
                images: vec![serde_bytes::ByteBuf::from(image), serde_bytes::ByteBuf::new()],
            });
            assert_roundtrip(&rank);
            assert_roundtrip(&entry);
        }
    }
}
