//! A worker process's Prometheus endpoint (`VIDSEEK_METRICS_ADDR`): its
//! roles' metrics ([`vidseek_bus::metrics`]) on `GET /metrics`. The gateway
//! serves the same text on its own `/metrics`, after its HTTP metrics.

use anyhow::Context;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

async fn render() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        vidseek_bus::metrics::render(),
    )
}

/// Listens on `addr` and serves `/metrics` until `shutdown` fires.
pub async fn serve(addr: &str, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set VIDSEEK_METRICS_ADDR)"))?;
    eprintln!("vidseek metrics: http://{}/metrics", listener.local_addr()?);
    let app = Router::new().route("/metrics", get(render));
    tokio::spawn(async move {
        let stopped = async move { shutdown.cancelled().await };
        if let Err(err) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!(error = %err, "the metrics endpoint stopped");
        }
    });
    Ok(())
}
