//! Temporary folders that are deleted when dropped, and also when the test process dies
//! without dropping them.
//!
//! Each [`ScratchDir`] has a watchdog: a small `sh` process in a process group of its own
//! whose standard input is a pipe from the test process. When the test process exits in any
//! way, the pipe closes, and a watchdog that has not been told to stand down stops the
//! processes registered with [`ScratchDir::watch`] (the given signal, then SIGKILL after 10 s)
//! and deletes the folder. A normal drop kills the watchdog first and cleans up itself.

use std::fmt::Display;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Runs when the test process has gone: `$1` is the folder; `$1/.watchdog` lists
/// `SIGNAL PID-or-PIDFILE` lines.
const WATCHDOG: &str = r#"
read -r _ignored
if [ -f "$1/.watchdog" ]; then
  while read -r sig target; do
    pid="$target"
    if [ -f "$target" ]; then pid=$(head -n 1 "$target"); fi
    kill -"$sig" "$pid" 2>/dev/null || continue
    i=0
    while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    kill -KILL "$pid" 2>/dev/null
  done < "$1/.watchdog"
fi
rm -rf "$1"
"#;

/// A fresh folder under the system's temporary folder.
pub struct ScratchDir {
    path: PathBuf,
    watchdog: Child,
}

impl ScratchDir {
    /// Create `$TMPDIR/pgscope-<what>-<pid>-<n>`, mode 0700, owned by `owner` (uid, gid) when
    /// given, and start its watchdog.
    pub fn new(what: &str, owner: Option<(u32, u32)>) -> ScratchDir {
        let path = create_unique(what);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        if let Some((uid, gid)) = owner {
            chown(&path, Some(uid), Some(gid)).unwrap();
        }
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "pgscope-watchdog"])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the watchdog (sh)");
        ScratchDir { path, watchdog }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// If the test process dies, send `signal` (a name such as `QUIT`) to `target`: a pid, or a
    /// file whose first line is a pid (read when the watchdog fires).
    pub fn watch(&self, signal: &str, target: impl Display) {
        let mut list = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path.join(".watchdog"))
            .expect("write the watchdog's list");
        writeln!(list, "{signal} {target}").unwrap();
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("cannot remove {}: {e}", self.path.display());
        }
    }
}

fn create_unique(what: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("pgscope-{what}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        match fs::create_dir(&path) {
            Ok(()) => return path,
            // Left behind by an earlier process with the same pid: skip the name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", path.display()),
        }
    }
}
