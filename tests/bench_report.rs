//! `bench/relay.sh --report`: the table the README's performance figures come from, computed
//! from relay.csv files of earlier runs. Runs no benchmark: it feeds the script CSVs whose
//! ratios are known and checks what it prints.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const HEADER: &str = "round,workload,target,position,clients,threads,duration_s,tps,latency_ms,\
                      transactions,failed,proxy_cpu_s,loadavg1,foreign_procs,exit_code";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/relay.sh")
}

fn report(csvs: &[&Path]) -> Output {
    Command::new("bash")
        .arg(script())
        .arg("--report")
        .args(csvs)
        .output()
        .expect("run bash")
}

/// The report of `csvs`, which must succeed.
fn report_ok(csvs: &[&Path]) -> String {
    let out = report(csvs);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// A relay.csv of `tps.len()` rounds of select-simple-c8, where round `i` has pgbouncer at
/// 1000 TPS and pgscope at `tps[i]`; direct is 2000 and analysis-off 500, so that each ratio
/// column has a value of its own.
fn csv(dir: &Path, name: &str, tps: &[u32]) -> PathBuf {
    let mut text = format!("{HEADER}\n");
    for (i, &scope) in tps.iter().enumerate() {
        let r = i + 1;
        for (k, (target, t)) in [
            ("direct", 2000),
            ("pgbouncer", 1000),
            ("pgscope", scope),
            ("scope-off", 500),
        ]
        .into_iter()
        .enumerate()
        {
            // 10 000 transactions and 0.1 s of proxy CPU: 10 us per transaction.
            text.push_str(&format!(
                "{r},select-simple-c8,{target},{k},8,2,6,{t},1.0,10000,0,0.10,0.5,0,0\n"
            ));
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn row(out: &str) -> Vec<&str> {
    out.lines()
        .find(|l| l.starts_with("select-simple-c8"))
        .unwrap_or_else(|| panic!("no select-simple-c8 row in:\n{out}"))
        .split_whitespace()
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pgscope-bench-report-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn one_run_gives_median_ratios_interval_range_and_wins() {
    let dir = scratch("one");
    let a = csv(&dir, "a.csv", &[900, 1100, 1200, 950, 1050]);
    let text = report_ok(&[&a]);
    let r = row(&text);
    // workload direct pgbouncer pgscope scp/pgb (90% CI) (range) scp/dir scp/off off/pgb wins cpu...
    assert_eq!(&r[1..4], ["2000", "1000", "1050"]);
    assert_eq!(r[4], "1.050", "median of 0.90 0.95 1.05 1.10 1.20");
    let (lo, hi) = r[5].split_once('-').unwrap();
    let (lo, hi): (f64, f64) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(
        (0.90..=1.05).contains(&lo) && (1.05..=1.20).contains(&hi),
        "interval {lo}-{hi}"
    );
    assert_eq!(r[6], "0.90-1.20");
    assert_eq!(r[7], "0.525");
    assert_eq!(r[8], "2.100", "pgscope / analysis off");
    assert_eq!(r[9], "0.500", "analysis off / pgbouncer");
    assert_eq!(r[10], "3/5");
    assert_eq!(&r[11..14], ["10.0", "10.0", "10.0"]);
    assert!(!text.contains("<< pgscope slower"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn runs_are_pooled_round_by_round_and_a_slower_row_is_marked() {
    let dir = scratch("pool");
    // Both files number their rounds 1-3; pooled they are six rounds, not three.
    let a = csv(&dir, "a.csv", &[900, 950, 980]);
    let b = csv(&dir, "b.csv", &[960, 970, 1010]);
    let text = report_ok(&[&a, &b]);
    assert!(
        text.contains("pooled over 2 CSV files, 6 rounds in all"),
        "{text}"
    );
    let r = row(&text);
    assert_eq!(r[4], "0.965", "median of 0.90 0.95 0.96 0.97 0.98 1.01");
    assert_eq!(r[6], "0.90-1.01");
    assert_eq!(r[8], "1.930");
    assert_eq!(r[9], "0.500");
    assert_eq!(r[10], "1/6");
    assert!(
        text.lines()
            .any(|l| l.starts_with("select-simple-c8") && l.contains("<< pgscope slower")),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_one_client_rows_give_the_latency_each_proxy_adds() {
    let dir = scratch("latency");
    // Per round: pgbench -S at 1 client (latency in ms per query) and the Django page (ms per
    // page), for direct, pgbouncer and pgscope; analysis off as well, which these lines leave out.
    let rounds = [
        // (row, direct, pgbouncer, pgscope, off)
        ("latency-select-c1", 1, 0.045, 0.068, 0.070, 0.069),
        ("latency-select-c1", 2, 0.047, 0.069, 0.073, 0.070),
        ("latency-select-c1", 3, 0.046, 0.070, 0.069, 0.071),
        ("django-n1-c1", 1, 4.00, 4.40, 4.50, 4.45),
        ("django-n1-c1", 2, 4.20, 4.70, 4.60, 4.65),
        ("django-n1-c1", 3, 4.10, 4.50, 4.50, 4.50),
    ];
    let mut text = format!("{HEADER}\n");
    for (row, r, direct, bouncer, scope, off) in rounds {
        for (k, (target, lat)) in [
            ("direct", direct),
            ("pgbouncer", bouncer),
            ("pgscope", scope),
            ("scope-off", off),
        ]
        .into_iter()
        .enumerate()
        {
            let tps = 1000.0 / lat;
            text.push_str(&format!(
                "{r},{row},{target},{k},1,1,6,{tps:.1},{lat},1000,0,0.02,0.5,0,0\n"
            ));
        }
    }
    let path = dir.join("latency.csv");
    std::fs::write(&path, text).unwrap();
    let text = report_ok(&[&path]);
    // Medians of the per-round differences: pgbouncer 23, 22, 24 us; pgscope 25, 26, 23 us.
    assert!(
        text.contains(
            "1-client -S latency (median of rounds): direct 46.0 us, pgbouncer 69.0 us \
             (+23.0 us/query), pgscope 70.0 us (+25.0 us/query)"
        ),
        "{text}"
    );
    // Per page: pgbouncer +400, +500, +400 us; pgscope +500, +400, +400 us.
    assert!(
        text.contains(
            "Django page n1/fk/ (21 queries; median of rounds): direct 4.10 ms, pgbouncer \
             4.50 ms (+400 us/page), pgscope 4.50 ms (+400 us/page)"
        ),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_refuses_what_is_not_a_relay_csv() {
    let dir = scratch("bad");
    let other = dir.join("other.csv");
    std::fs::write(&other, "a,b,c\n1,2,3\n").unwrap();
    for (args, says) in [
        (vec![], "needs at least one CSV file"),
        (vec![dir.join("missing.csv")], "cannot read"),
        (vec![other], "is not a relay.csv"),
    ] {
        let paths: Vec<&Path> = args.iter().map(PathBuf::as_path).collect();
        let out = report(&paths);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
