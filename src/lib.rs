//! pgscope: a transparent PostgreSQL wire-protocol proxy that times every statement a client
//! runs and turns the timings into findings (slow fingerprints, N+1 bursts, missing indexes).
//!
//! The crate is laid out by job (see `DESIGN.md` in the shared folder):
//! - [`config`]: the command line, environment variables and TOML file; every default.
//! - [`proxy`]: bytes and the wire protocol; yields one [`proxy::Execution`] per statement and
//!   knows nothing of statistics.
//! - [`fingerprint`]: SQL text → normalized text, pure and without I/O.
//! - [`observe`]: statistics per fingerprint, fed by the relay without ever making it wait.
//! - [`http`]: `/metrics`, `/api/queries`, `/healthz`.

pub mod config;
pub mod fingerprint;
pub mod http;
pub mod observe;
pub mod proxy;
