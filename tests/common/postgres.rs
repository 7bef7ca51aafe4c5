//! Throwaway PostgreSQL servers.
//!
//! `initdb` runs once per harness version and PostgreSQL build: the cluster it makes (roles,
//! pg_hba.conf, the `app` database) is cached as a template under cargo's
//! `CARGO_TARGET_TMPDIR`. Each [`PgServer`] copies the template into a [`ScratchDir`] and
//! starts `postgres` on it directly, tuned for tests (no fsync, small memory).
//!
//! As root, the server programs run as the `postgres` user (PostgreSQL refuses root), and
//! their folders live under the system temporary folder, where that user can reach them.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::client::ConnInfo;
use super::process::{
    free_port, is_listening, is_root, remove_env_prefix, run, run_with_stdin, stop_child, SIGINT,
    SIGQUIT,
};
use super::scratch::ScratchDir;
use super::TIMEOUT;

/// A login role of the template cluster, and how pg_hba.conf makes it authenticate.
#[derive(Clone, Copy, Debug)]
pub struct Role {
    pub user: &'static str,
    pub password: &'static str,
    /// The pg_hba.conf method for this user over TCP.
    pub method: &'static str,
    /// `password_encryption` when the password was stored.
    pub stored_as: &'static str,
}

pub const SCRAM: Role = Role {
    user: "scram_user",
    password: "scram_pass",
    method: "scram-sha-256",
    stored_as: "scram-sha-256",
};
pub const MD5: Role = Role {
    user: "md5_user",
    password: "md5_pass",
    method: "md5",
    stored_as: "md5",
};
pub const PASSWORD: Role = Role {
    user: "pw_user",
    password: "pw_pass",
    method: "password",
    stored_as: "scram-sha-256",
};
const ROLES: [Role; 3] = [SCRAM, MD5, PASSWORD];

/// Bump when the template's contents change in a way the key below does not see.
const TEMPLATE_VERSION: &str = "1";

const INITDB_ARGS: &[&str] = &[
    "--username=postgres",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
    "--wal-segsize=1",
];

/// `-c` settings of every server: fast and disposable, room for 200+ clients at once.
const SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "127.0.0.1"),
    ("fsync", "off"),
    ("full_page_writes", "off"),
    ("synchronous_commit", "off"),
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    // With 1 MB segments (see initdb): keeps pg_wal, and so every copy, small.
    ("min_wal_size", "2MB"),
    ("wal_recycle", "off"),
    ("max_connections", "300"),
    ("shared_buffers", "16MB"),
    ("log_min_messages", "warning"),
];

/// How long an asked-for shutdown may take before the postmaster is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A running PostgreSQL server on 127.0.0.1; stopped and deleted when dropped.
pub struct PgServer {
    postmaster: Option<Child>,
    port: u16,
    settings: Vec<(String, String)>,
    /// Dropped after `drop` has stopped the postmaster.
    dir: ScratchDir,
}

impl PgServer {
    /// A new server with the default settings (see the module docs).
    pub fn start() -> PgServer {
        PgServer::start_with(&[])
    }

    /// A new server with extra `-c name=value` settings (they win over the defaults).
    pub fn start_with(settings: &[(&str, &str)]) -> PgServer {
        let settings: Vec<(String, String)> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let dir = ScratchDir::new("pg", server_owner());
        copy_cluster(template(), &dir.path().join("data"));
        dir.watch("QUIT", dir.path().join("data/postmaster.pid").display());
        let (postmaster, port) = start_on_free_port(dir.path(), &settings);
        PgServer {
            postmaster: Some(postmaster),
            port,
            settings,
            dir,
        }
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data folder (deleted on drop).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }

    /// Where a client connects to this server: `postgres` on `app`, without a password.
    pub fn conn(&self) -> ConnInfo {
        ConnInfo::new(self.port)
    }

    /// A libpq/tokio-postgres key=value connection string.
    pub fn dsn(&self, user: &str, password: &str, db: &str) -> String {
        self.conn()
            .with_user(user, Some(password))
            .with_dbname(db)
            .dsn()
    }

    /// `postgres://user@127.0.0.1:port/db` (for users that need no password).
    pub fn url(&self, user: &str, db: &str) -> String {
        self.conn().with_user(user, None).with_dbname(db).url()
    }

    /// The path of a PostgreSQL program (`psql`, `pgbench`, `pg_dump`, …).
    pub fn bin(name: &str) -> PathBuf {
        bin(name)
    }

    /// Run `sql` with psql as `postgres` on `app` (stops at the first error); returns the
    /// unaligned, tuples-only output. Panics if psql fails.
    #[track_caller]
    pub fn psql(&self, sql: &str) -> String {
        psql_script(&self.conn(), sql)
    }

    /// Stop the server (a fast shutdown: clients are disconnected, committed data is kept).
    /// Idempotent.
    pub fn stop(&mut self) {
        self.stop_with(SIGINT);
    }

    /// `SIGINT`: fast shutdown; `SIGQUIT`: immediate (no checkpoint, recent commits may be
    /// lost, as synchronous_commit is off).
    fn stop_with(&mut self, signal: i32) {
        if let Some(mut postmaster) = self.postmaster.take() {
            stop_child(&mut postmaster, signal, STOP_GRACE);
        }
    }

    /// Stop the server if it runs and start it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        let mut postmaster = spawn_postmaster(self.dir.path(), self.port, &self.settings);
        match wait_until_ready(&mut postmaster, self.dir.path(), self.port) {
            Ok(()) => self.postmaster = Some(postmaster),
            Err(e) => panic!("restart on port {}: {e}\n{}", self.port, self.log()),
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- PostgreSQL log (port {}) ---\n{}",
                self.port,
                self.log()
            );
        }
        // The data is about to be deleted: no need for a checkpoint.
        self.stop_with(SIGQUIT);
    }
}

/// The path of a PostgreSQL program: from `$PGSCOPE_PG_BINDIR`, else `pg_config --bindir`,
/// else Debian's PostgreSQL 15.
pub fn bin(name: &str) -> PathBuf {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    BINDIR.get_or_init(find_bindir).join(name)
}

fn find_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGSCOPE_PG_BINDIR") {
        return dir.into();
    }
    let from_pg_config = Command::new("pg_config").arg("--bindir").output().ok();
    match from_pg_config {
        Some(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
        _ => PathBuf::from("/usr/lib/postgresql/15/bin"),
    }
}

/// Run a psql script against `conn`, stopping at the first error; panics if psql fails.
#[track_caller]
fn psql_script(conn: &ConnInfo, sql: &str) -> String {
    let mut cmd = conn.command(bin("psql"));
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
    run_with_stdin(&mut cmd, Some(sql.as_bytes()), TIMEOUT)
        .assert_success()
        .stdout
}

/// The uid and gid the server runs as: `postgres` when we are root, else ourselves.
fn server_owner() -> Option<(u32, u32)> {
    static OWNER: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *OWNER.get_or_init(|| is_root().then(|| lookup_user("postgres")))
}

fn lookup_user(name: &str) -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.len() > 3 && fields[0] == name)
        .map(|f| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        .unwrap_or_else(|| panic!("no user `{name}` to run PostgreSQL as (we are root)"))
}

/// A server program run as the server's owner, in `dir`, with no PG* variables of ours.
fn server_command(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("LC_ALL", "C");
    remove_env_prefix(&mut cmd, "PG");
    if let Some((uid, gid)) = server_owner() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("postgres.log")
}

/// `cp -a`: keeps the owner and the 0700 mode PostgreSQL insists on.
fn copy_cluster(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to), TIMEOUT).assert_success();
}

fn start_on_free_port(dir: &Path, settings: &[(String, String)]) -> (Child, u16) {
    for _ in 0..10 {
        let port = free_port();
        let mut postmaster = spawn_postmaster(dir, port, settings);
        match wait_until_ready(&mut postmaster, dir, port) {
            Ok(()) => return (postmaster, port),
            Err(StartError::PortTaken) => continue,
            Err(StartError::Failed(why)) => {
                let log = fs::read_to_string(log_path(dir)).unwrap_or_default();
                panic!("PostgreSQL did not start: {why}\n--- log ---\n{log}");
            }
        }
    }
    panic!("PostgreSQL found no free port in 10 tries");
}

fn spawn_postmaster(dir: &Path, port: u16, settings: &[(String, String)]) -> Child {
    let data = dir.join("data");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(dir))
        .expect("open the server log");
    let mut cmd = server_command(bin("postgres"), dir);
    cmd.arg("-D").arg(&data).arg("-p").arg(port.to_string());
    cmd.arg("-c")
        .arg(format!("unix_socket_directories={}", data.display()));
    let defaults = SETTINGS.iter().map(|(k, v)| (*k, *v));
    let extra = settings.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (key, value) in defaults.chain(extra) {
        cmd.arg("-c").arg(format!("{key}={value}"));
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group: signals meant for the test's group (a terminal's ^C, the test
        // runner's timeout) do not shut it down under a running test; the watchdog does.
        .process_group(0)
        .spawn()
        .expect("start postgres")
}

enum StartError {
    PortTaken,
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::PortTaken => f.write_str("port already in use"),
            StartError::Failed(why) => f.write_str(why),
        }
    }
}

/// Wait until the postmaster reports `ready` in postmaster.pid and listens on `port`.
fn wait_until_ready(postmaster: &mut Child, dir: &Path, port: u16) -> Result<(), StartError> {
    let deadline = Instant::now() + TIMEOUT * 2;
    let pid_file = dir.join("data/postmaster.pid");
    while Instant::now() < deadline {
        if let Some(status) = postmaster.try_wait().expect("waitpid") {
            let log = fs::read_to_string(log_path(dir)).unwrap_or_default();
            if log.contains("could not create any TCP/IP sockets") {
                return Err(StartError::PortTaken);
            }
            return Err(StartError::Failed(format!("postgres exited with {status}")));
        }
        if is_ready(&pid_file, port) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(5));
    }
    stop_child(postmaster, SIGQUIT, STOP_GRACE);
    Err(StartError::Failed(format!(
        "not ready after {:?}",
        TIMEOUT * 2
    )))
}

fn is_ready(pid_file: &Path, port: u16) -> bool {
    // Lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
    let Ok(text) = fs::read_to_string(pid_file) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().collect();
    lines.get(7).map(|s| s.trim()) == Some("ready") && is_listening(port)
}

// --- the template cluster ---

/// The cached template cluster, built by the first test that needs it.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(find_or_build_template)
}

fn template_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("pgscope-pg-templates")
}

/// Reuse the template for this key, or build one and publish it with an atomic rename. Racing
/// processes may each build one; the first rename wins and the others use the winner's.
fn find_or_build_template() -> PathBuf {
    let key = template_key();
    let cache = template_cache();
    let published = cache.join(&key);
    if published.join("PG_VERSION").exists() {
        return published;
    }
    fs::create_dir_all(&cache).expect("create the template cache");
    let built = build_template();
    let staged = cache.join(format!(".{key}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staged);
    copy_cluster(&built.path().join("data"), &staged);
    if fs::rename(&staged, &published).is_err() {
        assert!(
            published.join("PG_VERSION").exists(),
            "publish the template"
        );
        let _ = fs::remove_dir_all(&staged);
    }
    remove_stale_templates(&cache, &key);
    published
}

/// Templates of other keys were made by older harness versions or PostgreSQL builds.
fn remove_stale_templates(cache: &Path, key: &str) {
    for entry in fs::read_dir(cache).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.contains(key) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Changes whenever anything that goes into the template changes.
fn template_key() -> String {
    let version = Command::new(bin("postgres"))
        .arg("--version")
        .output()
        .expect("run postgres --version");
    let (initdb_args, hba, sql) = (INITDB_ARGS.join(" "), pg_hba(), setup_sql());
    let inputs = [
        TEMPLATE_VERSION.as_bytes(),
        &version.stdout,
        initdb_args.as_bytes(),
        hba.as_bytes(),
        sql.as_bytes(),
    ];
    format!("pg-{:016x}", fnv1a(&inputs))
}

fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter().chain(&[0u8])) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// initdb, pg_hba.conf, the roles and the database, in a scratch folder of its own.
fn build_template() -> ScratchDir {
    let dir = ScratchDir::new("template", server_owner());
    let data = dir.path().join("data");
    let mut initdb = server_command(bin("initdb"), dir.path());
    initdb.args(INITDB_ARGS).arg("-D").arg(&data);
    run(&mut initdb, TIMEOUT * 4).assert_success();
    fs::write(data.join("pg_hba.conf"), pg_hba()).expect("write pg_hba.conf");
    dir.watch("QUIT", data.join("postmaster.pid").display());
    let (mut postmaster, port) = start_on_free_port(dir.path(), &[]);
    psql_script(&ConnInfo::new(port).with_dbname("postgres"), &setup_sql());
    // A fast (clean) shutdown, so that copies start without crash recovery.
    let status = stop_child(&mut postmaster, SIGINT, TIMEOUT);
    assert!(status.success(), "template server stopped with {status}");
    dir
}

/// Password users first (each with its method), then trust for everyone else.
fn pg_hba() -> String {
    let mut hba = String::from(
        "# pgscope test cluster (tests/common/postgres.rs)\n\
         # TYPE  DATABASE  USER  ADDRESS  METHOD\n\
         local all all trust\n",
    );
    for role in ROLES {
        hba += &format!("host all {} 127.0.0.1/32 {}\n", role.user, role.method);
    }
    hba + "host all all 127.0.0.1/32 trust\n"
}

fn setup_sql() -> String {
    let mut sql = String::new();
    for role in ROLES {
        sql += &format!(
            "SET password_encryption = '{}';\nCREATE ROLE {} LOGIN PASSWORD '{}';\n",
            role.stored_as, role.user, role.password
        );
    }
    let users: Vec<&str> = ROLES.iter().map(|role| role.user).collect();
    sql += "RESET password_encryption;\nCREATE DATABASE app OWNER postgres;\n\\connect app\n";
    // PostgreSQL 15 no longer lets every role create tables in `public`.
    sql += &format!("GRANT CREATE ON SCHEMA public TO {};\n", users.join(", "));
    // Recycle the WAL that initdb and this script wrote (see min_wal_size).
    sql + "CHECKPOINT;\nCHECKPOINT;\n"
}
