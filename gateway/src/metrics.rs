//! Prometheus metrics, hand-written: a handful of counters, one histogram and
//! one gauge do not justify a metrics framework.
//!
//! - `vidseek_gateway_http_requests_total{route,status}`
//! - `vidseek_gateway_search_duration_seconds{outcome}` (histogram)
//! - `vidseek_gateway_websocket_connections_open` (gauge)
//!
//! followed by the process's worker-role metrics ([`vidseek_bus::metrics`]):
//! under `vidseek up` every role runs here, so one scrape shows them all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use vidseek_bus::metrics::escape_label;

use crate::AppState;

/// Upper bounds of the search latency buckets, in seconds: from a warm
/// in-memory query (milliseconds) to the default search timeout.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    searches: Mutex<BTreeMap<&'static str, Histogram>>,
    websockets: AtomicI64,
}

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

/// Keeps the WebSocket gauge honest however the socket ends.
pub struct WebSocketGuard(Metrics);

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.0.inner.websockets.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn count_request(&self, route: &str, status: u16) {
        let mut requests = lock(&self.inner.requests);
        *requests.entry((route.to_string(), status)).or_default() += 1;
    }

    pub fn observe_search(&self, outcome: &'static str, seconds: f64) {
        let mut searches = lock(&self.inner.searches);
        let histogram = searches.entry(outcome).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    pub fn websocket_opened(&self) -> WebSocketGuard {
        self.inner.websockets.fetch_add(1, Ordering::Relaxed);
        WebSocketGuard(self.clone())
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP vidseek_gateway_http_requests_total HTTP requests by route and status.\n",
        );
        out.push_str("# TYPE vidseek_gateway_http_requests_total counter\n");
        for ((route, status), count) in lock(&self.inner.requests).iter() {
            let _ = writeln!(
                out,
                "vidseek_gateway_http_requests_total{{route=\"{}\",status=\"{status}\"}} {count}",
                escape_label(route)
            );
        }
        out.push_str("# HELP vidseek_gateway_search_duration_seconds Time from sending a search to its final event.\n");
        out.push_str("# TYPE vidseek_gateway_search_duration_seconds histogram\n");
        for (outcome, histogram) in lock(&self.inner.searches).iter() {
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "vidseek_gateway_search_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "vidseek_gateway_search_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "vidseek_gateway_search_duration_seconds_sum{{outcome=\"{outcome}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "vidseek_gateway_search_duration_seconds_count{{outcome=\"{outcome}\"}} {}",
                histogram.count
            );
        }
        out.push_str(
            "# HELP vidseek_gateway_websocket_connections_open Search WebSockets currently open.\n",
        );
        out.push_str("# TYPE vidseek_gateway_websocket_connections_open gauge\n");
        let _ = writeln!(
            out,
            "vidseek_gateway_websocket_connections_open {}",
            self.inner.websockets.load(Ordering::Relaxed)
        );
        out.push_str(&vidseek_bus::metrics::render());
        out
    }
}

/// A poisoned lock only means another request panicked mid-update; the
/// counters are still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Middleware counting every request by its route template (not its URL, so
/// ids do not explode the label set).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "static".to_string());
    let response = next.run(request).await;
    state
        .metrics
        .count_request(&route, response.status().as_u16());
    response
}

/// `GET /metrics`
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauge() {
        let metrics = Metrics::default();
        metrics.count_request("/api/v1/search", 200);
        metrics.count_request("/api/v1/search", 200);
        metrics.observe_search("done", 0.02);
        let guard = metrics.websocket_opened();
        let text = metrics.render();
        assert!(text.contains(
            "vidseek_gateway_http_requests_total{route=\"/api/v1/search\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "vidseek_gateway_search_duration_seconds_bucket{outcome=\"done\",le=\"0.01\"} 0"
        ));
        assert!(text.contains(
            "vidseek_gateway_search_duration_seconds_bucket{outcome=\"done\",le=\"0.025\"} 1"
        ));
        assert!(text.contains("vidseek_gateway_websocket_connections_open 1"));
        drop(guard);
        assert!(
            metrics
                .render()
                .contains("vidseek_gateway_websocket_connections_open 0")
        );
    }
}
