//! Readiness: the stack can answer queries once the query stage reports its
//! encoder and every ranker shard ready.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vidseek_protocol::query::HealthReport;

use crate::AppState;
use crate::error::error_response;

/// Short: a health probe that hangs is worse than one that says "not yet".
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "The stack answers queries", body = HealthReport),
        (status = 503, description = "Not ready yet: a report with shards missing, or an error when no query stage answers", body = HealthReport),
    ))]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let report = vidseek_bus::rpc::health(&state.nats, HEALTH_TIMEOUT).await;
    match report {
        Ok(report) if report.ready() => (StatusCode::OK, Json(report)).into_response(),
        Ok(report) => (StatusCode::SERVICE_UNAVAILABLE, Json(report)).into_response(),
        Err(body) => {
            // Whatever the cause (nobody answering, a slow stage), the stack
            // is not ready; the code in the body says why.
            let mut response = error_response(&body);
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        }
    }
}
