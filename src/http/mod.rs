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
use hyper_util::rt::{TokioIo, TokioTimer};
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

/// Bounds on the HTTP side, so that clients of the metrics port (a scraper that never closes,
/// or a slow-header attack) cannot hold the file descriptors and memory the relay needs.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog until one ends.
    pub max_connections: usize,
    /// How long a request's header may take to arrive, on a new connection or on a kept-alive
    /// one waiting for its next request; then the connection is closed.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 64,
            // hyper's own default. A scraper that scrapes less often than this finds its
            // kept-alive connection closed and opens a new one.
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Serve HTTP on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
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
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            // hyper applies the header timeout only with a timer.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ObserveConfig;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Read until the server closes the connection; `None` if it did not within `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        };
        tokio::time::timeout(within, read).await.ok().map(|()| got)
    }

    /// At most `max_connections` are served at once (the next waits until one ends), and a
    /// connection that sends half a header, or stays idle after its response, is closed after
    /// `header_timeout`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connections_are_bounded_and_slow_ones_are_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            observer: Observer::start(ObserveConfig::default()),
            proxy_stats: Arc::new(ProxyStats::default()),
            upstream: "127.0.0.1:1".into(),
            export_top: 10,
            latency_target: Duration::from_millis(200),
        });
        let timeout = Duration::from_millis(400);
        let limits = Limits {
            max_connections: 2,
            header_timeout: timeout,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, state, limits, async {
            let _ = stopped.await;
        }));
        let request = b"GET /api/queries HTTP/1.1\r\nHost: pgscope\r\n\r\n";

        // Two slow clients take both slots with half a header each.
        let started = Instant::now();
        let mut slow = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: pg")
                .await
                .unwrap();
            slow.push(s);
        }
        // A third is answered only once the header timeout has freed a slot.
        let mut third = TcpStream::connect(addr).await.unwrap();
        third.write_all(request).await.unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), third.read_exact(&mut head))
            .await
            .expect("the third connection was never served")
            .unwrap();
        let waited = started.elapsed();
        assert_eq!(&head, b"HTTP/1.1 200", "{}", String::from_utf8_lossy(&head));
        assert!(
            waited >= timeout / 2,
            "served after {waited:?}, while both slots were held"
        );
        // The slow ones were closed, without an answer to their half request.
        for mut s in slow {
            let got = closed_within(&mut s, Duration::from_secs(10))
                .await
                .expect("a half header kept its connection open");
            assert!(
                !got.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&got)
            );
        }
        // A kept-alive connection idle after its response is closed too.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(request).await.unwrap();
        let answered = Instant::now();
        let got = closed_within(&mut idle, Duration::from_secs(10))
            .await
            .expect("an idle kept-alive connection stayed open");
        assert!(got.starts_with(b"HTTP/1.1 200"));
        assert!(
            answered.elapsed() >= timeout / 2,
            "{:?}",
            answered.elapsed()
        );

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
