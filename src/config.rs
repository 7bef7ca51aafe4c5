//! The command line, the `PGSCOPE_*` environment variables and the `--config` TOML file.
//!
//! Precedence: a flag beats its environment variable, which beats the file, which beats the
//! default. Every default lives in this file. A bad value is reported in one line that names
//! the flag; `main` turns it into exit code 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:6432";
pub const DEFAULT_UPSTREAM: &str = "127.0.0.1:5432";
pub const DEFAULT_MAX_CLIENT_CONNECTIONS: usize = 1000;
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9432";
pub const DEFAULT_MAX_FINGERPRINTS: usize = 5000;
pub const DEFAULT_EXPORT_TOP: usize = 200;
pub const DEFAULT_LATENCY_TARGET: Duration = Duration::from_millis(200);
pub const DEFAULT_N1_THRESHOLD: usize = 5;

/// The command line. Every option is optional here so that the environment and the file can
/// fill in what the command line leaves out; [`Config::resolve`] applies the defaults.
#[derive(Parser, Debug, Default)]
#[command(
    name = "pgscope",
    version,
    about = "A transparent PostgreSQL proxy that times every statement your application runs.",
    long_about = "A transparent PostgreSQL proxy that times every statement your application \
                  runs. Point your application (e.g. Django's DATABASES) at --listen instead of \
                  the server; clients authenticate end to end with the server at --upstream."
)]
pub struct Args {
    /// Read settings from this TOML file (keys as the long flags: listen = "…", log-format = "…").
    #[arg(long, env = "PGSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where clients connect [default: 127.0.0.1:6432].
    #[arg(long, env = "PGSCOPE_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// The real server: host:port or a postgres:// URL (its credentials are ignored) [default: 127.0.0.1:5432].
    #[arg(long, env = "PGSCOPE_UPSTREAM", value_name = "HOST:PORT|URL")]
    pub upstream: Option<String>,

    /// Log format: text or json [default: text]. The level comes from RUST_LOG (default info).
    #[arg(long, env = "PGSCOPE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Clients beyond this many at once get SQLSTATE 53300 [default: 1000].
    #[arg(long, env = "PGSCOPE_MAX_CLIENT_CONNECTIONS", value_name = "N")]
    pub max_client_connections: Option<String>,

    /// On SIGINT/SIGTERM, how long open connections may finish before they are closed [default: 30s].
    #[arg(long, env = "PGSCOPE_SHUTDOWN_GRACE", value_name = "DURATION")]
    pub shutdown_grace: Option<String>,

    /// How long connecting to the upstream may take before the client gets SQLSTATE 08006 [default: 10s].
    #[arg(long, env = "PGSCOPE_CONNECT_TIMEOUT", value_name = "DURATION")]
    pub connect_timeout: Option<String>,

    /// Where /metrics, /api/queries, /api/nplusone and /healthz are served [default: 127.0.0.1:9432].
    #[arg(long, env = "PGSCOPE_HTTP_LISTEN", value_name = "HOST:PORT")]
    pub http_listen: Option<String>,

    /// Fingerprints tracked in memory; beyond it the least valuable are evicted [default: 5000].
    #[arg(long, env = "PGSCOPE_MAX_FINGERPRINTS", value_name = "N")]
    pub max_fingerprints: Option<String>,

    /// Fingerprints exported with their own labels in /metrics; the rest are summed as "other" [default: 200].
    #[arg(long, env = "PGSCOPE_EXPORT_TOP", value_name = "N")]
    pub export_top: Option<String>,

    /// The P99 latency target that reports and alert rules compare against [default: 200ms].
    #[arg(long, env = "PGSCOPE_LATENCY_TARGET", value_name = "DURATION")]
    pub latency_target: Option<String>,

    /// Repetitions of one SELECT fingerprint in one request, after a parent query with at least as many rows, before it is an N+1 [default: 5].
    #[arg(long = "n1-threshold", env = "PGSCOPE_N1_THRESHOLD", value_name = "N")]
    pub n1_threshold: Option<String>,

    /// Relay threads; established connections are spread over them [default: one per two CPUs, at least one].
    #[arg(long, env = "PGSCOPE_WORKERS", value_name = "N")]
    pub workers: Option<String>,

    /// Analyze statements (on) or only relay them (off) [default: on].
    #[arg(long, env = "PGSCOPE_ANALYSIS", value_name = "on|off")]
    pub analysis: Option<String>,

    /// How relay threads move bytes: io_uring, epoll, or auto (io_uring where the kernel allows it, else epoll) [default: auto].
    #[arg(long, env = "PGSCOPE_RELAY_IO", value_name = "auto|io_uring|epoll")]
    pub relay_io: Option<String>,
}

/// The same keys, read from the TOML file (`kebab-case` or `snake_case`).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<String>,
    upstream: Option<String>,
    log_format: Option<String>,
    max_client_connections: Option<toml::Value>,
    shutdown_grace: Option<toml::Value>,
    connect_timeout: Option<toml::Value>,
    http_listen: Option<String>,
    max_fingerprints: Option<toml::Value>,
    export_top: Option<toml::Value>,
    latency_target: Option<toml::Value>,
    analysis: Option<toml::Value>,
    workers: Option<toml::Value>,
    n1_threshold: Option<toml::Value>,
    relay_io: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings in force, defaults applied and values checked.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    /// `host:port` of the server.
    pub upstream: String,
    pub log_format: LogFormat,
    pub max_client_connections: usize,
    pub shutdown_grace: Duration,
    pub connect_timeout: Duration,
    pub http_listen: String,
    pub max_fingerprints: usize,
    pub export_top: usize,
    pub latency_target: Duration,
    pub analysis: bool,
    pub workers: usize,
    pub n1_threshold: usize,
    pub relay_io: crate::proxy::RelayIo,
}

/// A setting with a bad value: names the flag and says what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for --{flag}: {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// `--help` or `--version`: print it and exit 0.
    #[error("{0}")]
    Info(String),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Value(#[from] ConfigError),
    #[error("cannot read --config {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

impl Config {
    /// Parse the process's command line, environment and config file.
    pub fn load() -> Result<Config, LoadError> {
        Self::load_from(std::env::args_os())
    }

    pub fn load_from<I, T>(args: I) -> Result<Config, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = match Args::try_parse_from(args) {
            Ok(a) => a,
            Err(e) => {
                use clap::error::ErrorKind;
                return Err(match e.kind() {
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                        LoadError::Info(e.render().to_string())
                    }
                    _ => LoadError::Usage(first_line(&e.render().to_string())),
                });
            }
        };
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Ok(Self::resolve(args, file)?)
    }

    fn resolve(args: Args, file: FileConfig) -> Result<Config, ConfigError> {
        let listen = args.listen.or(file.listen);
        let upstream = args.upstream.or(file.upstream);
        let log_format = args.log_format.or(file.log_format);
        let max_conn = args
            .max_client_connections
            .or(file.max_client_connections.map(value_text));
        let grace = args.shutdown_grace.or(file.shutdown_grace.map(value_text));
        let connect = args
            .connect_timeout
            .or(file.connect_timeout.map(value_text));
        let http_listen = args.http_listen.or(file.http_listen);
        let max_fp = args
            .max_fingerprints
            .or(file.max_fingerprints.map(value_text));
        let export_top = args.export_top.or(file.export_top.map(value_text));
        let target = args.latency_target.or(file.latency_target.map(value_text));
        let analysis = args.analysis.or(file.analysis.map(value_text));
        let workers = args.workers.or(file.workers.map(value_text));
        let n1 = args.n1_threshold.or(file.n1_threshold.map(value_text));
        let relay_io = args.relay_io.or(file.relay_io);
        Ok(Config {
            listen: match listen {
                Some(v) => parse_host_port("listen", &v)?,
                None => DEFAULT_LISTEN.to_owned(),
            },
            upstream: match upstream {
                Some(v) => parse_upstream(&v)?,
                None => DEFAULT_UPSTREAM.to_owned(),
            },
            log_format: match log_format.as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(v) => return Err(bad("log-format", v, "expected text or json")),
            },
            max_client_connections: parse_count(
                "max-client-connections",
                max_conn,
                DEFAULT_MAX_CLIENT_CONNECTIONS,
            )?,
            shutdown_grace: parse_duration("shutdown-grace", grace, DEFAULT_SHUTDOWN_GRACE)?,
            connect_timeout: parse_duration("connect-timeout", connect, DEFAULT_CONNECT_TIMEOUT)?,
            http_listen: match http_listen {
                Some(v) => parse_host_port("http-listen", &v)?,
                None => DEFAULT_HTTP_LISTEN.to_owned(),
            },
            max_fingerprints: parse_count("max-fingerprints", max_fp, DEFAULT_MAX_FINGERPRINTS)?,
            export_top: parse_count("export-top", export_top, DEFAULT_EXPORT_TOP)?,
            latency_target: parse_duration("latency-target", target, DEFAULT_LATENCY_TARGET)?,
            analysis: match analysis.as_deref() {
                None | Some("on") | Some("true") => true,
                Some("off") | Some("false") => false,
                Some(v) => return Err(bad("analysis", v, "expected on or off")),
            },
            workers: parse_count("workers", workers, crate::proxy::default_workers())?,
            n1_threshold: match parse_count("n1-threshold", n1.clone(), DEFAULT_N1_THRESHOLD)? {
                1 => {
                    return Err(bad(
                        "n1-threshold",
                        "1",
                        "a burst needs at least 2 repetitions",
                    ))
                }
                n => n,
            },
            relay_io: match relay_io.as_deref() {
                None => crate::proxy::RelayIo::Auto,
                Some(v) => v.parse().map_err(|why| bad("relay-io", v, why))?,
            },
        })
    }

    /// The relay's part of the settings.
    pub fn proxy(&self) -> crate::proxy::ProxyConfig {
        crate::proxy::ProxyConfig {
            upstream: self.upstream.clone(),
            max_client_connections: self.max_client_connections,
            connect_timeout: self.connect_timeout,
            shutdown_grace: self.shutdown_grace,
            workers: self.workers,
            relay_io: self.relay_io,
            ..Default::default()
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned()
}

fn bad(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// A TOML value as the text a flag would hold (`30` and `"30s"` both work for durations).
fn value_text(v: toml::Value) -> String {
    match v {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, LoadError> {
    let err = |reason: String| LoadError::File {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| err(first_line(&e.to_string())))?;
    // Accept snake_case keys as well as the flags' kebab-case.
    let table: toml::Table = table
        .into_iter()
        .map(|(k, v)| (k.replace('_', "-"), v))
        .collect();
    FileConfig::deserialize(table).map_err(|e| err(first_line(&e.to_string())))
}

/// `host:port` with a numeric port (`[v6]:port` too).
fn parse_host_port(flag: &'static str, v: &str) -> Result<String, ConfigError> {
    let Some((host, port)) = v.rsplit_once(':') else {
        return Err(bad(flag, v, "expected HOST:PORT"));
    };
    if host.is_empty() {
        return Err(bad(flag, v, "the host is missing"));
    }
    if port.parse::<u16>().is_err() {
        return Err(bad(flag, v, "the port must be a number from 0 to 65535"));
    }
    Ok(v.to_owned())
}

/// `host:port`, `host` (port 5432) or `postgres://[user[:password]@]host[:port][/db][?…]`.
pub fn parse_upstream(v: &str) -> Result<String, ConfigError> {
    let rest = v
        .strip_prefix("postgres://")
        .or_else(|| v.strip_prefix("postgresql://"));
    let hostport = match rest {
        Some(rest) => {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if hostport.is_empty() {
                return Err(bad("upstream", "<url>", "the URL names no host"));
            }
            hostport
        }
        None if v.contains("://") => {
            return Err(bad(
                "upstream",
                v,
                "expected host:port or a postgres:// URL",
            ))
        }
        None => v,
    };
    let has_port = if let Some(stripped) = hostport.strip_prefix('[') {
        stripped.contains("]:")
    } else {
        hostport.contains(':')
    };
    let full = if has_port {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    // Never echo a URL back: it may hold a password.
    parse_host_port("upstream", &full).map_err(|mut e| {
        if rest.is_some() {
            e.value = "<url>".to_owned();
        }
        e
    })
}

fn parse_count(
    flag: &'static str,
    v: Option<String>,
    default: usize,
) -> Result<usize, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(flag, &v, "expected a whole number above 0")),
        },
    }
}

fn parse_duration(
    flag: &'static str,
    v: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => humantime::parse_duration(v.trim())
            .map_err(|e| bad(flag, &v, format!("{e} (e.g. 30s, 200ms, 1m)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Config, LoadError> {
        Config::load_from(std::iter::once("pgscope").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:6432");
        assert_eq!(c.upstream, "127.0.0.1:5432");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.max_client_connections, 1000);
    }

    #[test]
    fn upstream_forms() {
        assert_eq!(parse_upstream("db:6000").unwrap(), "db:6000");
        assert_eq!(parse_upstream("db").unwrap(), "db:5432");
        assert_eq!(
            parse_upstream("postgres://u:secret@db.example:5433/app?sslmode=require").unwrap(),
            "db.example:5433"
        );
        assert_eq!(parse_upstream("postgresql://db/app").unwrap(), "db:5432");
        assert_eq!(parse_upstream("[::1]:5432").unwrap(), "[::1]:5432");
        let e = parse_upstream("postgres://u:secret@db:xx/app").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse_upstream("mysql://db").is_err());
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = load(&["--listen", "nowhere"]).unwrap_err().to_string();
        assert!(e.contains("--listen"), "{e}");
        let e = load(&["--log-format", "xml"]).unwrap_err().to_string();
        assert!(e.contains("--log-format"), "{e}");
        let e = load(&["--shutdown-grace", "soon"]).unwrap_err().to_string();
        assert!(e.contains("--shutdown-grace"), "{e}");
        let e = load(&["--bogus"]).unwrap_err().to_string();
        assert!(e.contains("--bogus") && !e.contains('\n'), "{e}");
        let e = load(&["--relay-io", "kqueue"]).unwrap_err().to_string();
        assert!(e.contains("--relay-io") && e.contains("epoll"), "{e}");
    }

    #[test]
    fn relay_io_values() {
        use crate::proxy::RelayIo;
        assert_eq!(load(&[]).unwrap().relay_io, RelayIo::Auto);
        for (value, io) in [
            ("auto", RelayIo::Auto),
            ("io_uring", RelayIo::IoUring),
            ("epoll", RelayIo::Epoll),
        ] {
            let c = load(&["--relay-io", value]).unwrap();
            assert_eq!(c.relay_io, io);
            assert_eq!(c.proxy().relay_io, io);
        }
    }

    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("pgscope-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgscope.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:7000\"\nlog_format = \"json\"\nshutdown-grace = \"5s\"\nmax-client-connections = 7\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = load(&["--config", p]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:7000");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.max_client_connections, 7);
        let c = load(&["--config", p, "--listen", "127.0.0.1:7001"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7001");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let e = load(&["--config", p]).unwrap_err().to_string();
        assert!(e.contains("lisen"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
