//! `GET /api/v1/openapi.json`, generated from the handlers' annotations and
//! the protocol types, so the spec cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{health, media, scores, search, seed, videos};
use crate::{metrics, ws};

#[derive(OpenApi)]
#[openapi(
    info(title = "vidseek", description = "Cross-modal video retrieval: search video segments by text or image."),
    paths(
        health::healthz,
        metrics::render,
        search::search_get,
        search::search_post,
        ws::upgrade,
        videos::list,
        videos::create,
        videos::get_one,
        videos::delete,
        videos::segments,
        scores::scores_get,
        scores::scores_post,
        media::video,
        media::thumbnail,
        seed::text_query,
        seed::image_query,
        seed::video_library,
        seed::video_player,
        spec,
    ),
    components(schemas(
        vidseek_protocol::ErrorBody,
        vidseek_protocol::ErrorDetail,
        vidseek_protocol::ErrorCode,
        vidseek_protocol::query::SearchEvent,
        vidseek_protocol::query::SearchHit,
        vidseek_protocol::query::SearchResponse,
        vidseek_protocol::query::Warning,
        vidseek_protocol::ingest::IngestRequest,
        vidseek_protocol::ingest::IngestAccepted,
        vidseek_protocol::ingest::VideoRecord,
        vidseek_protocol::ingest::VideoStatus,
        vidseek_protocol::ingest::VideoDeleted,
        vidseek_protocol::query::SearchBody,
        vidseek_protocol::query::QueryBody,
        vidseek_protocol::query::SearchScope,
        vidseek_protocol::query::SearchFilter,
        vidseek_protocol::query::Grouping,
        vidseek_protocol::query::VideoScores,
        vidseek_protocol::query::SegmentScore,
    )),
    modifiers(&BearerToken),
    tags(
        (name = "search", description = "Text and image search, one-shot or streamed"),
        (name = "library", description = "Videos and their segments"),
        (name = "media", description = "Video files and thumbnails, with range requests"),
        (name = "seed", description = "Routes of the original design, for existing pages"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

/// Declares the API token used by the routes that change the library.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json")))]
pub async fn spec() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
