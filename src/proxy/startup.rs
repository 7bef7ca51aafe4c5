//! The start of a client connection: the untagged packets a client may send before the
//! protocol proper (SSLRequest, GSSENCRequest, CancelRequest, StartupMessage), then the
//! connection to the upstream server.
//!
//! SSL and GSS encryption are declined with `N` (the client then carries on in the clear, or
//! gives up if it requires encryption). A CancelRequest is forwarded on a fresh upstream
//! connection, as the server expects; the client's key is the server's own (pgscope forwards
//! BackendKeyData untouched), whatever its length (protocol 3.2 allows up to 256 bytes). The
//! StartupMessage is forwarded byte for byte; authentication then passes through the relay
//! untouched, whatever method the server asks for.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use pgwire::messages::startup::Startup;
use pgwire::messages::{DecodeContext, ProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::tracker::Tracker;
use super::wire::{self, CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE};
use super::{relay, Lease, Shared};

/// How long a client may take to send its startup packet (the server's own
/// `authentication_timeout` then applies to the rest of the login).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the startup phase failed on the client's side.
#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error("invalid startup packet length {0}")]
    Length(u32),
    #[error("unsupported frontend protocol or request code {0}")]
    Code(u32),
    #[error("timed out waiting for the startup packet")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Run one client connection from its first byte to its end.
pub(crate) async fn run(
    shared: &Arc<Shared>,
    id: u64,
    mut client: TcpStream,
    permit: Option<OwnedSemaphorePermit>,
    done: mpsc::Sender<()>,
) {
    let packet = match tokio::time::timeout(STARTUP_TIMEOUT, read_startup(&mut client)).await {
        Ok(Ok(Some(packet))) => packet,
        Ok(Ok(None)) => return, // closed before a startup packet, or after declining SSL
        Ok(Err(e)) => return reject_malformed(shared, id, &mut client, e).await,
        Err(_) => return reject_malformed(shared, id, &mut client, StartupError::Timeout).await,
    };
    let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    if code == CANCEL_REQUEST_CODE {
        forward_cancel(shared, id, &packet).await;
        return;
    }
    let Some(permit) = permit else {
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            id,
            max = shared.config.max_client_connections,
            "too many client connections"
        );
        let mut err = BytesMut::new();
        wire::put_error(
            &mut err,
            "FATAL",
            "53300",
            "sorry, too many clients already (pgscope --max-client-connections)",
        );
        let _ = client.write_all(&err).await;
        return;
    };
    log_startup(id, &packet);
    let mut upstream = match connect_upstream(shared).await {
        Ok(s) => s,
        Err(reason) => {
            shared
                .stats
                .upstream_connect_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(id, upstream = %shared.config.upstream, %reason, "cannot reach the upstream server");
            let mut err = BytesMut::new();
            let msg = format!(
                "pgscope could not connect to the upstream server {}: {reason}",
                shared.config.upstream
            );
            wire::put_error(&mut err, "FATAL", "08006", &msg);
            let _ = client.write_all(&err).await;
            return;
        }
    };
    if let Err(e) = upstream.write_all(&packet).await {
        tracing::debug!(id, error = %e, "upstream closed during startup");
        return;
    }
    drop(packet);
    let lease = Lease::new(shared.stats.clone(), permit, done);
    // Deregister both sockets from this runtime; the relay thread registers them with its own
    // event loop.
    let (client, upstream) = match (client.into_std(), upstream.into_std()) {
        (Ok(c), Ok(u)) => (c, u),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(id, error = %e, "cannot hand a connection to a relay thread");
            return;
        }
    };
    let job = relay::Job {
        id,
        client,
        upstream,
        tracker: Tracker::new(id, shared.sinks.sink(id)),
        max_message: shared.config.max_message_size,
        lease,
    };
    shared.relays.hand_off(job).await;
}

/// Read untagged packets until a StartupMessage or CancelRequest, declining encryption
/// requests on the way. `None` when the client closed first.
async fn read_startup(client: &mut TcpStream) -> Result<Option<Vec<u8>>, StartupError> {
    loop {
        let mut len = [0u8; 4];
        match client.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let n = u32::from_be_bytes(len);
        if !(8..=wire::MAX_STARTUP_PACKET as u32).contains(&n) {
            return Err(StartupError::Length(n));
        }
        let mut packet = vec![0u8; n as usize];
        packet[..4].copy_from_slice(&len);
        client.read_exact(&mut packet[4..]).await?;
        let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        match code {
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE if n == 8 => {
                client.write_all(b"N").await?;
            }
            CANCEL_REQUEST_CODE if n >= 12 => return Ok(Some(packet)),
            c if c >> 16 == wire::PROTOCOL_3_MAJOR => return Ok(Some(packet)),
            c => return Err(StartupError::Code(c)),
        }
    }
}

async fn reject_malformed(shared: &Shared, id: u64, client: &mut TcpStream, e: StartupError) {
    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
    tracing::info!(id, error = %e, "rejecting client: bad startup packet");
    if let StartupError::Io(_) = e {
        return;
    }
    let mut err = BytesMut::new();
    wire::put_error(&mut err, "FATAL", "08P01", &e.to_string());
    let _ = client.write_all(&err).await;
    // Closing with unread input would make the kernel send a reset, which may destroy the
    // error before the client reads it: close our side, then discard what the client still
    // sends for a moment.
    let _ = client.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn connect_upstream(shared: &Shared) -> Result<TcpStream, String> {
    let upstream = shared.config.upstream.as_str();
    // An address connects directly; a host name is looked up each time (it may move), which
    // tokio does on its blocking pool.
    let connect = async {
        match upstream.parse::<std::net::SocketAddr>() {
            Ok(addr) => TcpStream::connect(addr).await,
            Err(_) => TcpStream::connect(upstream).await,
        }
    };
    match tokio::time::timeout(shared.config.connect_timeout, connect).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "timed out after {:?}",
            shared.config.connect_timeout
        )),
    }
}

/// Forward a CancelRequest on its own upstream connection; the server answers nothing and
/// closes it.
async fn forward_cancel(shared: &Shared, id: u64, packet: &[u8]) {
    match connect_upstream(shared).await {
        Ok(mut upstream) => {
            if upstream.write_all(packet).await.is_ok() {
                // Wait for the server to close, so the cancel is delivered before we return.
                let mut sink = [0u8; 64];
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), upstream.read(&mut sink)).await;
            }
            tracing::debug!(id, "cancel request forwarded");
        }
        Err(reason) => {
            shared
                .stats
                .upstream_connect_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(id, %reason, "cannot forward a cancel request");
        }
    }
}

/// Log who connected (user, database, application): names, never values from queries.
fn log_startup(id: u64, packet: &[u8]) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let mut buf = BytesMut::from(packet);
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    ctx.awaiting_frontend_ssl = false;
    let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    match pgwire::messages::Message::decode(&mut buf, &ctx) {
        Ok(Some(Startup { parameters, .. })) => {
            let get = |k: &str| parameters.get(k).map(String::as_str).unwrap_or("");
            tracing::debug!(
                id,
                protocol = format!("{}.{}", code >> 16, code & 0xffff),
                user = get("user"),
                database = get("database"),
                application = get("application_name"),
                "client startup"
            );
        }
        _ => tracing::debug!(
            id,
            protocol = format!("{}.{}", code >> 16, code & 0xffff),
            "client startup"
        ),
    }
}
