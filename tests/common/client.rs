//! The client side: where to connect (a server or a proxy), how to hand that to a client
//! program or to tokio-postgres, and the test virtualenv's Python.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use super::postgres::Role;
use super::process::remove_env_prefix;

/// Where a client connects. [`ConnInfo::new`] is `postgres` on `app` at 127.0.0.1, without
/// a password; the `with_*` methods change one part. Values are used as they are (no
/// quoting): keep them to letters, digits and `_`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
}

impl ConnInfo {
    pub fn new(port: u16) -> ConnInfo {
        ConnInfo {
            host: "127.0.0.1".to_owned(),
            port,
            user: "postgres".to_owned(),
            password: None,
            dbname: "app".to_owned(),
        }
    }

    pub fn with_user(mut self, user: &str, password: Option<&str>) -> ConnInfo {
        self.user = user.to_owned();
        self.password = password.map(str::to_owned);
        self
    }

    /// One of the template's roles, with its password.
    pub fn with_role(self, role: Role) -> ConnInfo {
        self.with_user(role.user, Some(role.password))
    }

    pub fn with_dbname(mut self, dbname: &str) -> ConnInfo {
        self.dbname = dbname.to_owned();
        self
    }

    pub fn with_port(mut self, port: u16) -> ConnInfo {
        self.port = port;
        self
    }

    /// `host=… port=… user=… [password=…] dbname=…` for libpq and tokio-postgres.
    pub fn dsn(&self) -> String {
        let mut dsn = format!("host={} port={} user={}", self.host, self.port, self.user);
        if let Some(password) = &self.password {
            dsn += &format!(" password={password}");
        }
        dsn + &format!(" dbname={}", self.dbname)
    }

    /// `postgres://user[:password]@host:port/dbname`, e.g. for Django's DATABASE_URL.
    pub fn url(&self) -> String {
        let password = self
            .password
            .as_ref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!(
            "postgres://{}{password}@{}:{}/{}",
            self.user, self.host, self.port, self.dbname
        )
    }

    /// A client program (psql, pgbench, python, …) with libpq's `PGHOST`, `PGPORT`, `PGUSER`,
    /// `PGDATABASE` and `PGPASSWORD` set to this, and no other `PG*` variables of ours.
    /// Run it with [`super::run`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        remove_env_prefix(&mut cmd, "PG");
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.dbname)
            .env("PGSSLMODE", "disable");
        if let Some(password) = &self.password {
            cmd.env("PGPASSWORD", password);
        }
        cmd
    }

    /// Connect with tokio-postgres (see [`connect`]).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(&self.dsn()).await
    }
}

/// Connect with tokio-postgres (no TLS) and drive the connection on a spawned task, so the
/// caller must be inside a tokio runtime.
pub async fn connect(dsn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("tokio-postgres connection ended: {e}");
        }
    });
    Ok(client)
}

/// The test virtualenv's Python: `$PGSCOPE_TEST_PYTHON`, else
/// `${PGSCOPE_VENV:-$HOME/.cache/pgscope/venv}/bin/python`. Panics if it is missing.
pub fn python() -> PathBuf {
    let python = match std::env::var_os("PGSCOPE_TEST_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => venv().join("bin/python"),
    };
    assert!(
        python.exists(),
        "{} is missing: run `bash tests/setup.sh` (it makes the test virtualenv)",
        python.display()
    );
    python
}

fn venv() -> PathBuf {
    if let Some(venv) = std::env::var_os("PGSCOPE_VENV") {
        return venv.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    PathBuf::from(home).join(".cache/pgscope/venv")
}
