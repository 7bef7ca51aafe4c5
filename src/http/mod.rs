//! The HTTP side: `/metrics`, `/api/queries`, `/api/nplusone` and `/healthz`.
//!
//! Exporters read state when asked and hold the registry's lock only while they copy out of
//! it. Nothing here touches client traffic. Only normalized text ever leaves through here.

mod metrics;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};

use crate::fingerprint::id_hex;
use crate::observe::Observer;
use crate::proxy::ProxyStats;

pub use metrics::render as render_metrics;

/// What the handlers read.
pub struct State {
    pub observer: Arc<Observer>,
    pub proxy_stats: Arc<ProxyStats>,
    /// `host:port` of the server, for `/healthz`.
    pub upstream: String,
    pub export_top: usize,
    pub latency_target: Duration,
}

/// Serve HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "http connection error");
            }
        });
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        // RFC 9110: a 405 says which methods the resource allows.
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    match req.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::render(state),
        ),
        "/api/queries" => json(&queries(state)),
        "/api/nplusone" => json(&nplusone(state)),
        "/healthz" => healthz(state).await,
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /api/queries, /api/nplusone or /healthz\n",
        ),
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid")
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body.to_owned())
}

fn json(value: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_string(value) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

async fn healthz(state: &State) -> Response<Full<Bytes>> {
    let connect = TcpStream::connect(state.upstream.as_str());
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => text(StatusCode::OK, "ok\n"),
        Ok(Err(e)) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("upstream {} unreachable: {e}\n", state.upstream),
        ),
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("upstream {} did not answer in 2s\n", state.upstream),
        ),
    }
}

/// One fingerprint in `/api/queries` (SPEC's field names).
#[derive(Serialize)]
pub struct QueryJson {
    pub fingerprint: String,
    pub query: String,
    pub kind: &'static str,
    pub calls: u64,
    pub errors: u64,
    pub rows: u64,
    pub total_seconds: f64,
    pub mean_seconds: f64,
    pub min_seconds: f64,
    pub p50_seconds: f64,
    pub p95_seconds: f64,
    pub p99_seconds: f64,
    pub max_seconds: f64,
    pub tables: Vec<String>,
    pub first_seen: f64,
    pub last_seen: f64,
}

#[derive(Serialize)]
pub struct QueriesJson {
    pub queries: Vec<QueryJson>,
}

fn unix_seconds(t: std::time::SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `/api/queries`: every tracked fingerprint, most total time first.
pub fn queries(state: &State) -> QueriesJson {
    let registry = state.observer.registry();
    let queries = registry
        .by_total_time()
        .into_iter()
        .map(|s| QueryJson {
            fingerprint: id_hex(s.id),
            query: s.description.query.to_string(),
            kind: s.description.kind.as_str(),
            calls: s.calls,
            errors: s.errors,
            rows: s.rows,
            total_seconds: s.total.as_secs_f64(),
            mean_seconds: s.mean().as_secs_f64(),
            min_seconds: if s.calls == 0 {
                0.0
            } else {
                s.min.as_secs_f64()
            },
            p50_seconds: s.quantile(0.50).as_secs_f64(),
            p95_seconds: s.quantile(0.95).as_secs_f64(),
            p99_seconds: s.quantile(0.99).as_secs_f64(),
            max_seconds: s.max.as_secs_f64(),
            tables: s.description.tables.to_vec(),
            first_seen: unix_seconds(s.first_seen),
            last_seen: unix_seconds(s.last_seen),
        })
        .collect();
    QueriesJson { queries }
}

/// The Django fix of a finding (SPEC's `suggestion`).
#[derive(Serialize)]
pub struct SuggestionJson {
    pub orm: Option<&'static str>,
    pub model: Option<String>,
    pub field: Option<String>,
    pub text: String,
}

/// One finding in `/api/nplusone` (SPEC's field names).
#[derive(Serialize)]
pub struct FindingJson {
    pub kind: &'static str,
    pub fingerprint: String,
    pub query: String,
    pub parent_fingerprint: Option<String>,
    pub parent_query: Option<String>,
    pub bursts: u64,
    pub max_burst: u64,
    pub queries: u64,
    pub wasted_seconds: f64,
    pub route: Option<String>,
    pub suggestion: SuggestionJson,
    pub first_seen: f64,
    pub last_seen: f64,
}

#[derive(Serialize)]
pub struct FindingsJson {
    pub findings: Vec<FindingJson>,
}

/// `/api/nplusone`: every finding, most wasted time first.
pub fn nplusone(state: &State) -> FindingsJson {
    let findings = state.observer.findings();
    let findings = findings
        .by_wasted_time()
        .into_iter()
        .map(|f| FindingJson {
            kind: if f.duplicate {
                "duplicate"
            } else {
                "n_plus_one"
            },
            fingerprint: id_hex(f.fingerprint),
            query: f.query.to_string(),
            parent_fingerprint: f.parent.as_ref().map(|p| id_hex(p.0)),
            parent_query: f.parent.as_ref().map(|p| p.1.to_string()),
            bursts: f.bursts,
            max_burst: f.max_burst,
            queries: f.queries,
            wasted_seconds: f.wasted.as_secs_f64(),
            route: f.route.as_deref().map(str::to_owned),
            suggestion: SuggestionJson {
                orm: f.suggestion.orm.map(|o| o.as_str()),
                model: f.suggestion.model.clone(),
                field: f.suggestion.field.clone(),
                text: f.suggestion.text.clone(),
            },
            first_seen: unix_seconds(f.first_seen),
            last_seen: unix_seconds(f.last_seen),
        })
        .collect();
    FindingsJson { findings }
}
