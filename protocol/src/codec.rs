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
