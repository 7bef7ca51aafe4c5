//! The `pgscope` binary: read the configuration, start the relay, wait for SIGINT/SIGTERM.
//!
//! Exit codes: 0 after a clean shutdown, 2 for a bad flag or configuration (one line naming
//! it), 1 for a runtime failure such as an address already in use.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use pgscope::config::{Config, LoadError, LogFormat};
use pgscope::proxy::{self, NullSink, ProxyStats};
use tokio::net::TcpListener;

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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pgscope: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("pgscope: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
    tracing::info!(
        listen = %listener.local_addr()?,
        upstream = %config.upstream,
        "pgscope is relaying"
    );
    let stats = Arc::new(ProxyStats::default());
    proxy::serve(
        listener,
        config.proxy(),
        Arc::new(NullSink),
        stats,
        shutdown_signal(),
    )
    .await
    .context("relay failed")?;
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
