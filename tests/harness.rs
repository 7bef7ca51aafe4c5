//! Tests of the test harness itself (`tests/common`), without the proxy: servers start, the
//! template's roles authenticate the way pg_hba.conf says, servers are independent, and they
//! leave nothing behind.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{connect, free_port, python, run, ConnInfo, PgServer, Role, MD5, PASSWORD, SCRAM};
use tokio_postgres::error::SqlState;

#[tokio::test]
async fn server_starts_with_test_settings() {
    let pg = PgServer::start();
    let client = pg.conn().connect().await.unwrap();
    let row = client
        .query_one(
            "SELECT current_user::text, current_database()::text, \
             current_setting('server_version_num')::int, current_setting('fsync'), \
             current_setting('max_connections')::int",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "postgres");
    assert_eq!(row.get::<_, String>(1), "app");
    assert_eq!(row.get::<_, i32>(2) / 10000, 15);
    assert_eq!(row.get::<_, String>(3), "off");
    assert!(row.get::<_, i32>(4) >= 300);
}

#[tokio::test]
async fn password_roles_log_in_with_their_methods() {
    let pg = PgServer::start();
    for role in [SCRAM, MD5, PASSWORD] {
        for db in ["app", "postgres"] {
            let conn = pg.conn().with_role(role).with_dbname(db);
            let client = conn
                .connect()
                .await
                .unwrap_or_else(|e| panic!("{conn:?}: {e}"));
            let user: String = client
                .query_one("SELECT current_user::text", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(user, role.user);
        }
        let wrong = pg.dsn(role.user, "wrong", "app");
        let err = connect(&wrong)
            .await
            .expect_err("a wrong password must fail");
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_PASSWORD),
            "{role:?}: {err}"
        );
        let no_password = pg.conn().with_user(role.user, None).dsn();
        assert!(
            connect(&no_password).await.is_err(),
            "{role:?} is not trusted"
        );
    }
}

#[tokio::test]
async fn passwords_are_stored_as_the_methods_need() {
    let pg = PgServer::start();
    let client = pg.conn().connect().await.unwrap();
    let stored = |role: Role| {
        let client = &client;
        async move {
            let sql = "SELECT rolpassword FROM pg_authid WHERE rolname = $1";
            let row = client.query_one(sql, &[&role.user]).await.unwrap();
            row.get::<_, String>(0)
        }
    };
    assert!(stored(SCRAM).await.starts_with("SCRAM-SHA-256$"));
    assert!(stored(MD5).await.starts_with("md5"));
}

#[test]
fn extra_settings_override_the_defaults() {
    let pg = PgServer::start_with(&[("max_connections", "250"), ("work_mem", "7MB")]);
    let settings = pg.psql("SHOW max_connections; SHOW work_mem; SHOW fsync");
    assert_eq!(
        settings.split_whitespace().collect::<Vec<_>>(),
        ["250", "7MB", "off"]
    );
}

#[test]
#[should_panic(expected = "timed out after")]
fn run_kills_a_program_that_overruns() {
    run(
        Command::new("sh").args(["-c", "sleep 30"]),
        Duration::from_millis(200),
    );
}

#[test]
fn two_servers_run_side_by_side() {
    let a = PgServer::start();
    let b = PgServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    a.psql("CREATE TABLE only_in_a (id int)");
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'";
    assert_eq!(a.psql(tables).trim(), "1");
    assert_eq!(b.psql(tables).trim(), "0");
}

#[test]
fn drop_stops_the_server_and_removes_its_folder() {
    let pg = PgServer::start();
    let (dir, port) = (pg.data_dir(), pg.port());
    assert!(dir.join("PG_VERSION").exists());
    drop(pg);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn restart_keeps_the_data_and_the_port() {
    let mut pg = PgServer::start();
    let port = pg.port();
    pg.psql("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)");
    pg.restart();
    assert_eq!(pg.port(), port);
    assert_eq!(pg.psql("SELECT count(*) FROM kept").trim(), "1");
}

#[test]
fn client_programs_get_the_connection_in_their_environment() {
    let pg = PgServer::start();
    let conn = pg.conn().with_role(SCRAM).with_dbname("postgres");
    let mut psql = conn.command(PgServer::bin("psql"));
    psql.args([
        "-X",
        "-A",
        "-t",
        "-c",
        "SELECT current_user || '@' || current_database()",
    ]);
    let out = run(&mut psql, Duration::from_secs(30)).assert_success();
    assert_eq!(out.stdout.trim(), "scram_user@postgres");

    let mut failing = pg.conn().command(PgServer::bin("psql"));
    failing.args(["-X", "-c", "SELECT * FROM no_such_table"]);
    let out = run(&mut failing, Duration::from_secs(30)).assert_failure();
    assert!(out.stderr.contains("no_such_table"), "{out}");
}

#[test]
fn venv_python_has_the_drivers() {
    let pg = PgServer::start();
    let script = "import psycopg, psycopg2, asyncpg, django\n\
                  with psycopg.connect('') as c:\n    print(c.execute('SELECT 6 * 7').fetchone()[0])";
    let mut cmd = pg.conn().with_role(MD5).command(python());
    cmd.args(["-c", script]);
    let out = run(&mut cmd, Duration::from_secs(60)).assert_success();
    assert_eq!(out.stdout.trim(), "42");
}

/// Run by `a_killed_test_process_leaves_no_server_behind` in a child process.
#[test]
#[ignore = "helper: started in a child process by another test"]
fn helper_start_a_server_and_hang() {
    let pg = PgServer::start();
    println!("DATA={}", pg.data_dir().display());
    println!("PORT={}", pg.port());
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn a_killed_test_process_leaves_no_server_behind() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "helper_start_a_server_and_hang",
            "--nocapture",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut value = |key: &str| loop {
        let line = lines.next().expect("the helper's output").unwrap();
        if let Some(value) = line.strip_prefix(key) {
            return value.to_owned();
        }
    };
    let data = std::path::PathBuf::from(value("DATA="));
    let port: u16 = value("PORT=").parse().unwrap();
    assert!(data.exists());
    child.kill().unwrap();
    child.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while (data.exists() || common::is_listening(port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !common::is_listening(port),
        "the server on port {port} outlived its test"
    );
    assert!(!data.exists(), "{} outlived its test", data.display());
}

#[test]
fn connection_strings() {
    let conn = ConnInfo::new(5999).with_role(SCRAM);
    assert_eq!(
        conn.dsn(),
        "host=127.0.0.1 port=5999 user=scram_user password=scram_pass dbname=app"
    );
    assert_eq!(
        conn.with_dbname("postgres").url(),
        "postgres://scram_user:scram_pass@127.0.0.1:5999/postgres"
    );
    assert_ne!(free_port(), 0);
}
