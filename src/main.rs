//! The `pgscope` binary: read the configuration, start the relay, the observer and the HTTP
//! exporter, and wait for SIGINT/SIGTERM.
//!
//! Exit codes: 0 after a clean shutdown, 2 for a bad flag or configuration (one line naming
//! it), 1 for a runtime failure such as an address already in use.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use pgscope::config::{Config, LoadError, LogFormat};
use pgscope::observe::{ObserveConfig, Observer};
use pgscope::proxy::{self, NullSink, ProxyStats, SinkFactory};
use tokio::net::TcpListener;
use tokio::sync::watch;

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(LoadError::Info(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("pgscope: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    log_panics_without_their_data();
    let log_format = config.log_format;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(log_format, &format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(log_format, &format!("{e:#}")),
    }
}

/// Report why pgscope cannot run, and exit 1: one line on stderr, as a log record under
/// `--log-format json` (so that a log shipper reading JSON gets it too). Bad flags are reported
/// before the log format is known, always as plain text.
fn fatal(format: LogFormat, reason: &str) -> ExitCode {
    match format {
        LogFormat::Text => eprintln!("pgscope: {reason}"),
        LogFormat::Json => tracing::error!(error = reason, "pgscope cannot run"),
    }
    ExitCode::from(1)
}

/// Log a panic with its thread and place, but not its message unless that is a fixed text: a
/// formatted message can quote the data being handled (a slicing panic quotes the string), and
/// no literal from traffic may reach the log. A panic in the statement tracker is caught and
/// ends tracking for its connection only ([`pgscope::proxy::tracker::Tracker`]).
fn log_panics_without_their_data() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = info
            .payload()
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("(not logged: it may quote traffic)");
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            location = %info.location().map_or_else(String::new, |l| l.to_string()),
            panic_message = message,
            "a thread panicked"
        );
    }));
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let http_listener = TcpListener::bind(&config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--http-listen)", config.http_listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        upstream = %config.upstream,
        http = %http_listener.local_addr()?,
        analysis = config.analysis,
        "pgscope is relaying"
    );
    let stats = Arc::new(ProxyStats::default());
    let observer = Observer::start(ObserveConfig {
        max_fingerprints: config.max_fingerprints,
        n1_threshold: config.n1_threshold as u64,
        ..Default::default()
    });
    let sinks: Arc<dyn SinkFactory> = if config.analysis {
        observer.clone()
    } else {
        Arc::new(NullSink)
    };
    let http_state = Arc::new(pgscope::http::State {
        observer,
        proxy_stats: stats.clone(),
        upstream: config.upstream.clone(),
        export_top: config.export_top,
        latency_target: config.latency_target,
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http = tokio::spawn(pgscope::http::serve(
        http_listener,
        http_state,
        pgscope::http::Limits::default(),
        stopped(stop_rx.clone()),
    ));
    let relay = proxy::serve(listener, config.proxy(), sinks, stats, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    relay.await.context("relay failed")?;
    let _ = http.await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
