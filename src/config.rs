//! The command line, the `PGSCOPE_*` environment variables and the `--config` TOML file.
//!
//! Precedence: a flag beats its environment variable, which beats the file, which beats the
//! default. Every default lives in this file. A bad value is reported in one line that names
//! the flag; `main` turns it into exit code 2.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{CommandFactory, Parser};

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

    /// The real server over TCP: host:port, [IPv6]:port or a postgres:// URL (its credentials are ignored) [default: 127.0.0.1:5432].
    #[arg(long, env = "PGSCOPE_UPSTREAM", value_name = "HOST:PORT|URL")]
    pub upstream: Option<String>,

    /// Log format: text or json [default: text]. The level comes from RUST_LOG (default info).
    #[arg(long, env = "PGSCOPE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Clients beyond this many at once get SQLSTATE 53300 [default: 1000].
    #[arg(
        long,
        env = "PGSCOPE_MAX_CLIENT_CONNECTIONS",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_client_connections: Option<String>,

    /// On SIGINT/SIGTERM, how long open connections may finish before they are closed [default: 30s].
    #[arg(
        long,
        env = "PGSCOPE_SHUTDOWN_GRACE",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub shutdown_grace: Option<String>,

    /// How long connecting to the upstream may take before the client gets SQLSTATE 08006 [default: 10s].
    #[arg(
        long,
        env = "PGSCOPE_CONNECT_TIMEOUT",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub connect_timeout: Option<String>,

    /// Where /metrics, /api/queries, /api/nplusone and /healthz are served [default: 127.0.0.1:9432].
    #[arg(long, env = "PGSCOPE_HTTP_LISTEN", value_name = "HOST:PORT")]
    pub http_listen: Option<String>,

    /// Fingerprints tracked in memory; beyond it the least valuable are evicted [default: 5000].
    #[arg(
        long,
        env = "PGSCOPE_MAX_FINGERPRINTS",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_fingerprints: Option<String>,

    /// Fingerprints exported with their own labels in /metrics; the rest are summed as "other" [default: 200].
    #[arg(
        long,
        env = "PGSCOPE_EXPORT_TOP",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub export_top: Option<String>,

    /// The P99 latency target that reports and alert rules compare against [default: 200ms].
    #[arg(
        long,
        env = "PGSCOPE_LATENCY_TARGET",
        value_name = "DURATION",
        allow_hyphen_values = true
    )]
    pub latency_target: Option<String>,

    /// Repetitions of one SELECT fingerprint in one request, after a parent query with at least as many rows, before it is an N+1 [default: 5].
    #[arg(
        long = "n1-threshold",
        env = "PGSCOPE_N1_THRESHOLD",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub n1_threshold: Option<String>,

    /// Relay threads; established connections are spread over them [default: one per CPU].
    #[arg(
        long,
        env = "PGSCOPE_WORKERS",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub workers: Option<String>,

    /// Analyze statements (on) or only relay them (off) [default: on].
    #[arg(long, env = "PGSCOPE_ANALYSIS", value_name = "on|off")]
    pub analysis: Option<String>,

    /// How relay threads move bytes: io_uring, epoll, or auto (io_uring where the kernel allows it, else epoll) [default: auto].
    #[arg(long, env = "PGSCOPE_RELAY_IO", value_name = "auto|io_uring|epoll")]
    pub relay_io: Option<String>,
}

/// How a key of the TOML file may be written: the type its value must have there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A string: addresses and names.
    Text,
    /// A string with a unit (`"30s"`): a bare number would leave the unit to guess.
    Duration,
    /// A whole number, or a string holding one.
    Count,
    /// A boolean, or a string (`"on"`, `"off"`).
    Switch,
}

/// The keys the TOML file may hold: the long flags (`snake_case` is read as `kebab-case`).
const FILE_KEYS: &[(&str, Kind)] = &[
    ("listen", Kind::Text),
    ("upstream", Kind::Text),
    ("log-format", Kind::Text),
    ("max-client-connections", Kind::Count),
    ("shutdown-grace", Kind::Duration),
    ("connect-timeout", Kind::Duration),
    ("http-listen", Kind::Text),
    ("max-fingerprints", Kind::Count),
    ("export-top", Kind::Count),
    ("latency-target", Kind::Duration),
    ("analysis", Kind::Switch),
    ("workers", Kind::Count),
    ("n1-threshold", Kind::Count),
    ("relay-io", Kind::Text),
];

/// The values of the TOML file, each as the text a flag would hold, by flag name.
#[derive(Debug, Default)]
struct FileConfig {
    path: PathBuf,
    /// flag → (the key as the file writes it, the value as text).
    values: BTreeMap<&'static str, (String, String)>,
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
    /// `host:port` (`[v6]:port` for an IPv6 address) of the server.
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

/// Where a setting's value came from, so that a bad one says what to fix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    /// The command line.
    #[default]
    Flag,
    /// The flag's `PGSCOPE_*` environment variable.
    Env,
    /// A key of the `--config` file, as the file writes it.
    File { path: PathBuf, key: String },
}

/// A setting with a bad value: names the flag (and the variable or file key it came from) and
/// says what is wrong.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
    pub origin: Origin,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid value {:?} for --{}", self.value, self.flag)?;
        match &self.origin {
            Origin::Flag => {}
            Origin::Env => write!(f, " (from {})", env_var(self.flag))?,
            Origin::File { path, key } => {
                write!(f, " (from {key} in --config {})", path.display())?
            }
        }
        write!(f, ": {}", self.reason)
    }
}

/// The environment variable that holds a flag: `PGSCOPE_` and the flag in upper snake case.
fn env_var(flag: &str) -> String {
    format!("PGSCOPE_{}", flag.to_ascii_uppercase().replace('-', "_"))
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
    #[error("cannot read --config {}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    /// The file is not valid TOML.
    #[error("--config {}: line {line}, column {column}: {reason}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    /// A key of the file is unknown, given twice or has a value of the wrong type.
    #[error("--config {}: {key}: {reason}", path.display())]
    Key {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

/// The command line and the environment (as clap read them) and the file.
struct Sources {
    matches: clap::ArgMatches,
    file: FileConfig,
}

impl Sources {
    /// The text given for `flag`, and where it came from: the flag, else its variable, else
    /// the file.
    fn get(&self, flag: &'static str) -> Option<(&str, Origin)> {
        let id = flag.replace('-', "_");
        if let Some(v) = self.matches.get_one::<String>(&id) {
            let origin = match self.matches.value_source(&id) {
                Some(clap::parser::ValueSource::EnvVariable) => Origin::Env,
                _ => Origin::Flag,
            };
            return Some((v, origin));
        }
        self.file.values.get(flag).map(|(key, v)| {
            let origin = Origin::File {
                path: self.file.path.clone(),
                key: key.clone(),
            };
            (v.as_str(), origin)
        })
    }

    /// The setting `flag` parsed by `parse`, or `default` when nothing gives it; an error
    /// says where the bad value came from.
    fn parse<T>(
        &self,
        flag: &'static str,
        default: T,
        parse: impl FnOnce(&'static str, &str) -> Result<T, ConfigError>,
    ) -> Result<T, ConfigError> {
        match self.get(flag) {
            None => Ok(default),
            Some((v, origin)) => parse(flag, v).map_err(|e| ConfigError { origin, ..e }),
        }
    }
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
        let matches = match Args::command().try_get_matches_from(args) {
            Ok(m) => m,
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
        let file = match matches.get_one::<PathBuf>("config") {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Ok(Self::resolve(&Sources { matches, file })?)
    }

    fn resolve(src: &Sources) -> Result<Config, ConfigError> {
        Ok(Config {
            listen: src.parse("listen", DEFAULT_LISTEN.to_owned(), parse_host_port)?,
            upstream: src.parse("upstream", DEFAULT_UPSTREAM.to_owned(), |_, v| {
                parse_upstream(v)
            })?,
            log_format: src.parse("log-format", LogFormat::Text, |flag, v| match v {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err(bad(flag, v, "expected text or json")),
            })?,
            max_client_connections: src.parse(
                "max-client-connections",
                DEFAULT_MAX_CLIENT_CONNECTIONS,
                parse_count,
            )?,
            shutdown_grace: src.parse("shutdown-grace", DEFAULT_SHUTDOWN_GRACE, parse_duration)?,
            connect_timeout: src.parse(
                "connect-timeout",
                DEFAULT_CONNECT_TIMEOUT,
                parse_duration,
            )?,
            http_listen: src.parse(
                "http-listen",
                DEFAULT_HTTP_LISTEN.to_owned(),
                parse_host_port,
            )?,
            max_fingerprints: src.parse(
                "max-fingerprints",
                DEFAULT_MAX_FINGERPRINTS,
                parse_count,
            )?,
            export_top: src.parse("export-top", DEFAULT_EXPORT_TOP, parse_count)?,
            latency_target: src.parse("latency-target", DEFAULT_LATENCY_TARGET, parse_duration)?,
            analysis: src.parse("analysis", true, |flag, v| match v {
                "on" | "true" => Ok(true),
                "off" | "false" => Ok(false),
                _ => Err(bad(flag, v, "expected on or off")),
            })?,
            workers: src.parse("workers", crate::proxy::default_workers(), parse_count)?,
            n1_threshold: src.parse("n1-threshold", DEFAULT_N1_THRESHOLD, |flag, v| {
                match parse_count(flag, v)? {
                    1 => Err(bad(flag, v, "a burst needs at least 2 repetitions")),
                    n => Ok(n),
                }
            })?,
            relay_io: src.parse("relay-io", crate::proxy::RelayIo::Auto, |flag, v| {
                v.parse().map_err(|why| bad(flag, v, why))
            })?,
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
        origin: Origin::Flag,
    }
}

/// A TOML value as the text a flag would hold, if the key's [`Kind`] allows its type: a count
/// may be an integer (`7` or `"7"`), a switch a boolean (`false` or `"off"`); addresses, names
/// and durations must be strings (a duration with its unit: `"30s"`, not `30`).
fn value_text(kind: Kind, v: toml::Value) -> Result<String, String> {
    match (kind, v) {
        (_, toml::Value::String(s)) => Ok(s),
        (Kind::Count, toml::Value::Integer(i)) => Ok(i.to_string()),
        (Kind::Switch, toml::Value::Boolean(b)) => Ok(b.to_string()),
        (kind, other) => {
            let expected = match kind {
                Kind::Text => "a string",
                Kind::Duration => "a string with a unit (e.g. \"30s\", \"200ms\")",
                Kind::Count => "a whole number",
                Kind::Switch => "on or off (or true or false)",
            };
            // Scalars are shown; an array or table is only named (it might be long).
            let found = match &other {
                toml::Value::Integer(i) => format!("integer {i}"),
                toml::Value::Float(f) => format!("float {f}"),
                toml::Value::Boolean(b) => format!("boolean {b}"),
                toml::Value::Datetime(d) => format!("date-time {d}"),
                toml::Value::Array(_) => "an array".to_owned(),
                toml::Value::Table(_) => "a table".to_owned(),
                toml::Value::String(_) => unreachable!("strings are accepted above"),
            };
            Err(format!("expected {expected}, found {found}"))
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| syntax_error(path, &text, &e))?;
    let key_error = |key: &str, reason: String| LoadError::Key {
        path: path.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let mut values: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
    for (key, value) in table {
        // Accept snake_case keys as well as the flags' kebab-case.
        let name = key.replace('_', "-");
        let Some(&(flag, kind)) = FILE_KEYS.iter().find(|(flag, _)| *flag == name) else {
            let known: Vec<&str> = FILE_KEYS.iter().map(|(flag, _)| *flag).collect();
            return Err(key_error(
                &key,
                format!("unknown key, expected one of {}", known.join(", ")),
            ));
        };
        if let Some((first, _)) = values.get(flag) {
            return Err(key_error(&key, format!("given twice (also as {first})")));
        }
        let text = value_text(kind, value).map_err(|why| key_error(&key, why))?;
        values.insert(flag, (key, text));
    }
    Ok(FileConfig {
        path: path.to_owned(),
        values,
    })
}

/// A TOML syntax error in one line: where it is and why. The offending text itself is not
/// quoted (it may be a password in a URL), only a duplicated key's name.
fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> LoadError {
    let start = e.span().map_or(text.len(), |s| s.start.min(text.len()));
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, l)| l)
        .chars()
        .count()
        + 1;
    let mut reason = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if reason == "duplicate key" {
        if let Some(key) = e.span().and_then(|s| text.get(s)) {
            reason = format!("duplicate key `{key}`");
        }
    }
    LoadError::Syntax {
        path: path.to_owned(),
        line,
        column,
        reason,
    }
}

/// `host:port` to listen on (`[v6]:port` too; port 0 picks a free one).
fn parse_host_port(flag: &'static str, v: &str) -> Result<String, ConfigError> {
    host_port(v, 0).map_err(|why| bad(flag, v, why))
}

/// `host:port`, `host` (port 5432), `[v6]:port`, `[v6]` or
/// `postgres://[user[:password]@]host[:port][/db][?…]` (`postgresql://` too). The result is
/// `host:port` (`[v6]:port`). One host only, reached over TCP: pgscope does not relay to a
/// Unix socket.
pub fn parse_upstream(v: &str) -> Result<String, ConfigError> {
    let rest = v
        .strip_prefix("postgres://")
        .or_else(|| v.strip_prefix("postgresql://"));
    let Some(rest) = rest else {
        if v.contains("://") {
            return Err(bad(
                "upstream",
                v,
                "expected host:port or a postgres:// URL",
            ));
        }
        return upstream_host_port(v, false).map_err(|why| bad("upstream", v, why));
    };
    // Never echo a URL back, nor any part of it: it may hold a password.
    let url_error = |why: String| bad("upstream", "<url>", why);
    let (authority, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let authority = authority.split(['/', '#']).next().unwrap_or("");
    if let Some(query) = query {
        let query = query.split('#').next().unwrap_or("");
        for param in query.split('&') {
            let name = param.split_once('=').map_or(param, |(name, _)| name);
            if matches!(name, "host" | "hostaddr" | "port") {
                return Err(url_error(format!(
                    "the URL's query sets {name}=, which pgscope does not read: put the server in the \
                     URL itself (postgres://host:port/db)"
                )));
            }
        }
    }
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.is_empty() {
        return Err(url_error(
            "the URL names no host (pgscope relays over TCP only, not to a Unix socket)".to_owned(),
        ));
    }
    upstream_host_port(hostport, true).map_err(url_error)
}

/// The `host[:port]` of `--upstream`, percent-decoding the host as libpq does when it comes
/// from a URL.
fn upstream_host_port(v: &str, from_url: bool) -> Result<String, String> {
    if v.contains(',') {
        return Err("several hosts are given (a comma): pgscope relays to one server".to_owned());
    }
    if v.starts_with('/') {
        return Err(unix_socket());
    }
    let (host, port) = split_host_port(v)?;
    let port = match port {
        None => 5432,
        Some(p) => parse_port(p, 1)?,
    };
    let decoded;
    let host = if from_url && host.contains('%') {
        decoded = percent_decode(host).ok_or("the host has a bad percent-encoding")?;
        decoded.as_str()
    } else {
        host
    };
    if host.starts_with('/') {
        return Err(unix_socket());
    }
    check_host(host)?;
    Ok(join_host_port(host, port))
}

fn unix_socket() -> String {
    "the host is a Unix-socket path: pgscope relays over TCP only, give host:port".to_owned()
}

/// `host:port` with a port from `min_port` to 65535 (`[v6]:port` too).
fn host_port(v: &str, min_port: u16) -> Result<String, String> {
    let (host, port) = split_host_port(v)?;
    let Some(port) = port else {
        return Err("expected HOST:PORT (the port is missing)".to_owned());
    };
    let port = parse_port(port, min_port)?;
    check_host(host)?;
    Ok(join_host_port(host, port))
}

/// Split `host[:port]` or `[v6][:port]`; a host in brackets is returned with them.
fn split_host_port(v: &str) -> Result<(&str, Option<&str>), String> {
    if v.starts_with('[') {
        let Some(end) = v.find(']') else {
            return Err("the host's '[' has no closing ']'".to_owned());
        };
        let (host, after) = v.split_at(end + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("expected ':' and the port after ']'".to_owned()),
            },
        };
    }
    match v.split_once(':') {
        None => Ok((v, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) if v.parse::<Ipv6Addr>().is_ok() || ipv6_with_port(v) => {
            Err("an IPv6 address must be in brackets: [address]:port (e.g. [::1]:5432)".to_owned())
        }
        Some(_) => Err("more than one ':' (expected HOST:PORT)".to_owned()),
    }
}

fn ipv6_with_port(v: &str) -> bool {
    v.rsplit_once(':')
        .is_some_and(|(addr, _)| addr.parse::<Ipv6Addr>().is_ok())
}

fn parse_port(p: &str, min: u16) -> Result<u16, String> {
    let port = match p {
        "" => None,
        p if p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u16>().ok(),
        _ => None,
    };
    match port {
        Some(port) if port >= min => Ok(port),
        _ => Err(format!("the port must be a number from {min} to 65535")),
    }
}

/// An IPv4 address, an IPv6 address in brackets (a numeric zone allowed: `[fe80::1%2]`) or a
/// DNS name: labels of ASCII letters, digits, '-' and '_' (as libpq tolerates) between dots.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is missing".to_owned());
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        let is_v6 = match inner.split_once('%') {
            None => inner.parse::<Ipv6Addr>().is_ok(),
            Some((addr, zone)) => {
                addr.parse::<Ipv6Addr>().is_ok()
                    && zone.bytes().all(|b| b.is_ascii_digit())
                    && zone.parse::<u32>().is_ok()
            }
        };
        return match is_v6 {
            true => Ok(()),
            false => Err("the host in brackets is not an IPv6 address".to_owned()),
        };
    }
    if host.contains(']') {
        return Err("the host has a ']' without '['".to_owned());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        let what = match c {
            c if c.is_whitespace() => "white space".to_owned(),
            '%' | '/' | '@' | ',' | '?' | '#' | '[' | '\\' => format!("'{c}'"),
            _ => "a character".to_owned(),
        };
        return Err(format!(
            "the host has {what}, but a host is an IP address or a name of letters, digits, \
             '-', '_' and '.'"
        ));
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".to_owned());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return Err("the host name has an empty label (a leading '.' or '..')".to_owned());
    }
    if labels.iter().any(|l| l.len() > 63) {
        return Err("the host name has a label longer than 63 characters".to_owned());
    }
    // No top-level domain is all digits: such a host is meant as an IPv4 address.
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
        && name.parse::<Ipv4Addr>().is_err()
    {
        return Err("the host is not an IPv4 address (four numbers 0-255 between dots)".to_owned());
    }
    Ok(())
}

fn join_host_port(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}

/// `%XX` escapes decoded, as libpq decodes a URL; `None` for a bad escape or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

fn parse_count(flag: &'static str, v: &str) -> Result<usize, ConfigError> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad(flag, v, "expected a whole number above 0")),
    }
}

fn parse_duration(flag: &'static str, v: &str) -> Result<Duration, ConfigError> {
    if v.trim().starts_with('-') {
        return Err(bad(flag, v, "a duration cannot be negative"));
    }
    humantime::parse_duration(v.trim())
        .map_err(|e| bad(flag, v, format!("{e} (e.g. 30s, 200ms, 1m)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held while loading, and while a test sets a `PGSCOPE_*` variable: every load reads them.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn load(args: &[&str]) -> Result<Config, LoadError> {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        Config::load_from(std::iter::once("pgscope").chain(args.iter().copied()))
    }

    /// A TOML file with `text`, in a directory of its own; removed when dropped.
    struct TomlFile(PathBuf);

    impl TomlFile {
        fn new(name: &str, text: &str) -> TomlFile {
            let dir =
                std::env::temp_dir().join(format!("pgscope-config-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("cx.toml");
            std::fs::write(&path, text).unwrap();
            TomlFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TomlFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    /// The one-line error of loading a file with `text`.
    fn file_error(name: &str, text: &str) -> String {
        let file = TomlFile::new(name, text);
        let e = load(&["--config", file.path()]).unwrap_err().to_string();
        assert!(!e.contains('\n'), "not one line: {e}");
        e
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

    #[test]
    fn malformed_upstreams_are_rejected_naming_the_flag() {
        // (value, what the reason must say); none of these could ever connect.
        let cases = [
            ("postgres://u:pw@[::1/db", "']'"),
            ("postgres://h1:5432,h2:5433/db", "one server"),
            ("h1:5432,h2:5433", "one server"),
            ("a b:5432", "white space"),
            ("a\tb", "white space"),
            ("postgres://u@host:5432:99/db", "more than one ':'"),
            ("host:5432:99", "more than one ':'"),
            ("postgres://%2Ftmp%2Fsock/db", "TCP only"),
            ("/var/run/postgresql", "TCP only"),
            ("postgres:///db", "TCP only"),
            ("postgres://db%zz/app", "percent-encoding"),
            ("db%2F:5432", "'%'"),
            ("u@db:5432", "'@'"),
            ("::1", "brackets"),
            ("fe80::1:5432", "brackets"),
            ("[1.2.3.4]:5432", "not an IPv6 address"),
            ("[::1]5432", "after ']'"),
            ("db]:5432", "']'"),
            ("db:", "port"),
            ("db:0", "port"),
            ("db:65536", "port"),
            ("db:+5432", "port"),
            ("db:54 32", "port"),
            (":5432", "host is missing"),
            ("db..example:5432", "empty label"),
            (".db:5432", "empty label"),
            ("5432", "IPv4"),
            ("999.1.1.1:5432", "IPv4"),
            ("postgres://db/app?host=other", "host="),
            ("postgresql://db/app?sslmode=require&port=5433", "port="),
        ];
        for (value, why) in cases {
            let e = parse_upstream(value).unwrap_err().to_string();
            assert!(e.contains("--upstream"), "{value}: {e}");
            assert!(e.contains(why), "{value}: {e} (expected {why:?})");
            assert!(!e.contains('\n'), "{value}: {e}");
            // Through the loader too, which is what main calls.
            let e = load(&["--upstream", value]).unwrap_err().to_string();
            assert!(e.contains("--upstream") && e.contains(why), "{value}: {e}");
        }
        let long_label = format!("{}.example:5432", "a".repeat(64));
        assert!(parse_upstream(&long_label).is_err());
    }

    #[test]
    fn upstream_errors_never_show_the_url() {
        for url in [
            "postgres://u:pw-secret@[::1/db",
            "postgres://u:pw-secret@h1,h2/db",
            "postgres://u:pw-secret@a b/db",
            "postgres://u:pw-secret@host:5432:99/db",
            "postgres://u:pw-secret@%2Ftmp/db",
            "postgresql://u:pw-secret@/db",
            "postgres://u:pw/secret@host/db",
            "postgres://u:pw-secret@db/app?host=x",
        ] {
            let e = parse_upstream(url).unwrap_err().to_string();
            assert!(e.contains("\"<url>\""), "{url}: {e}");
            assert!(!e.contains("secret") && !e.contains("pw"), "{url}: {e}");
        }
    }

    #[test]
    fn upstream_forms_that_work_keep_working() {
        let cases = [
            ("127.0.0.1:5432", "127.0.0.1:5432"),
            ("db", "db:5432"),
            ("DB.Example.COM:6000", "DB.Example.COM:6000"),
            ("my_db-1.internal.:5433", "my_db-1.internal.:5433"),
            ("localhost:65535", "localhost:65535"),
            ("db:05432", "db:5432"),
            ("[::1]", "[::1]:5432"),
            ("[::1]:5433", "[::1]:5433"),
            ("[fe80::1%2]:5432", "[fe80::1%2]:5432"),
            ("postgres://db", "db:5432"),
            ("postgres://db:5433", "db:5433"),
            ("postgres://u@db/app", "db:5432"),
            (
                "postgres://u:p@ss@db.example:5433/app?sslmode=require&application_name=x",
                "db.example:5433",
            ),
            ("postgresql://u:pw@[::1]:5434/app", "[::1]:5434"),
            ("postgresql://[2001:db8::7]/app", "[2001:db8::7]:5432"),
            ("postgres://db.example?sslmode=disable", "db.example:5432"),
            ("postgres://my%2Dhost/app", "my-host:5432"),
            ("postgres://[fe80::1%252]:5432/app", "[fe80::1%2]:5432"),
        ];
        for (value, want) in cases {
            assert_eq!(parse_upstream(value).unwrap(), want, "{value}");
        }
        // What the relay connects to: an address form must parse as one.
        for addr in ["127.0.0.1:5432", "[::1]:5433", "[fe80::1%2]:5432"] {
            let got = parse_upstream(addr).unwrap();
            assert!(got.parse::<std::net::SocketAddr>().is_ok(), "{got}");
        }
    }

    #[test]
    fn listen_addresses_are_checked_like_the_upstream() {
        assert_eq!(
            load(&["--listen", "127.0.0.1:0"]).unwrap().listen,
            "127.0.0.1:0"
        );
        assert_eq!(
            load(&["--listen", "[::]:6432"]).unwrap().listen,
            "[::]:6432"
        );
        let c = load(&["--http-listen", "localhost:9999"]).unwrap();
        assert_eq!(c.http_listen, "localhost:9999");
        for (flag, value) in [
            ("--listen", "a b:6432"),
            ("--listen", "127.0.0.1:6432:1"),
            ("--http-listen", "[::1:9432"),
            ("--http-listen", "h1,h2:9432"),
            ("--listen", "0.0.0.0:70000"),
        ] {
            let e = load(&[flag, value]).unwrap_err().to_string();
            assert!(e.contains(flag), "{flag} {value}: {e}");
        }
    }

    #[test]
    fn file_values_of_the_wrong_type_name_their_key() {
        for key in [
            "listen",
            "log-format",
            "upstream",
            "http-listen",
            "relay_io",
        ] {
            let e = file_error(key, &format!("{key} = 5\n"));
            assert!(
                e.contains(&format!("{key}: expected a string, found integer 5")),
                "{e}"
            );
            assert!(e.contains("--config") && e.contains("cx.toml"), "{e}");
        }
        let e = file_error("array", "listen = [\"a:1\"]\n");
        assert!(
            e.contains("listen: expected a string, found an array"),
            "{e}"
        );
        let e = file_error("float", "export-top = 1.5\n");
        assert!(e.contains("export-top: expected a whole number"), "{e}");
        let e = file_error("switch", "analysis = 1\n");
        assert!(e.contains("analysis: expected on or off"), "{e}");
        let e = file_error("twice", "log_format = \"json\"\nlog-format = \"text\"\n");
        assert!(e.contains("given twice"), "{e}");
    }

    #[test]
    fn file_syntax_errors_say_why_in_one_line() {
        let e = file_error("dup", "listen = \"a:1\"\nlisten = \"b:1\"\n");
        assert!(e.contains("line 2, column 1"), "{e}");
        assert!(e.contains("duplicate key `listen`"), "{e}");
        let e = file_error("open", "upstream = \"postgres://u:secret@db\n");
        assert!(e.contains("line 1") && e.contains("string"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let e = file_error("bare", "listen = abc\n");
        assert!(e.contains("quoted"), "{e}");
    }

    #[test]
    fn durations_in_the_file_need_a_unit() {
        let e = file_error("grace", "shutdown-grace = 5\n");
        assert!(
            e.starts_with("--config") && e.contains("cx.toml: shutdown-grace: "),
            "{e}"
        );
        assert!(
            e.contains("with a unit") && e.contains("found integer 5"),
            "{e}"
        );
        let file = TomlFile::new(
            "grace-ok",
            "shutdown_grace = \"5s\"\nlatency-target = \"150ms\"\n",
        );
        let c = load(&["--config", file.path()]).unwrap();
        assert_eq!(c.shutdown_grace, Duration::from_secs(5));
        assert_eq!(c.latency_target, Duration::from_millis(150));
        // Counts and switches keep their TOML types.
        let file = TomlFile::new(
            "types",
            "export-top = 7\nanalysis = false\nn1_threshold = \"3\"\n",
        );
        let c = load(&["--config", file.path()]).unwrap();
        assert_eq!((c.export_top, c.analysis, c.n1_threshold), (7, false, 3));
    }

    #[test]
    fn a_bad_value_says_where_it_came_from() {
        let file = TomlFile::new("origin", "export_top = 0\nlatency-target = \"soon\"\n");
        let e = load(&["--config", file.path()]).unwrap_err().to_string();
        assert!(
            e.contains("--export-top") && e.contains("export_top in --config"),
            "{e}"
        );
        assert!(e.contains("cx.toml"), "{e}");
        // A flag overrides the bad key; the next bad key is reported.
        let e = load(&["--config", file.path(), "--export-top", "3"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--latency-target") && e.contains("latency-target in"),
            "{e}"
        );
        // A bad flag is just the flag.
        let e = load(&["--export-top", "0"]).unwrap_err().to_string();
        assert!(!e.contains("PGSCOPE_") && !e.contains("--config"), "{e}");
        // And a variable names itself.
        let e = {
            let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
            std::env::set_var("PGSCOPE_EXPORT_TOP", "lots");
            let r = Config::load_from(["pgscope"]);
            std::env::remove_var("PGSCOPE_EXPORT_TOP");
            r.unwrap_err().to_string()
        };
        assert!(
            e.contains("--export-top") && e.contains("PGSCOPE_EXPORT_TOP"),
            "{e}"
        );
    }

    #[test]
    fn negative_numbers_are_rejected_by_their_flag() {
        for (flag, value) in [
            ("--export-top", "-1"),
            ("--max-fingerprints", "-5"),
            ("--max-client-connections", "-1"),
            ("--workers", "-2"),
            ("--n1-threshold", "-3"),
            ("--latency-target", "-5ms"),
            ("--shutdown-grace", "-1s"),
            ("--connect-timeout", "-10s"),
        ] {
            let e = load(&[flag, value]).unwrap_err().to_string();
            assert!(
                e.contains(flag) && e.contains(&format!("\"{value}\"")),
                "{flag} {value}: {e}"
            );
        }
        // A flag without its value is still clap's error.
        let e = load(&["--export-top"]).unwrap_err().to_string();
        assert!(e.contains("--export-top"), "{e}");
    }
}
