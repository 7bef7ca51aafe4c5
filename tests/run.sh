#!/usr/bin/env bash
# The one test command (CI runs it through .ci/run): install what the tests need, then
# formatting, lints and every test. Exits non-zero if any step fails; every step runs.
#
# The build cache lives outside the work tree so that a fresh clone reuses it:
# CARGO_TARGET_DIR (default ~/.cache/pgscope/target). Extra arguments go to cargo nextest.
set -uo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pgscope/target}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

failed=()
step() {
    local name="$1"
    shift
    echo "::: $name: $*"
    local start=$SECONDS
    if "$@"; then
        echo "::: $name: ok ($((SECONDS - start)) s)"
    else
        echo "::: $name: FAILED ($((SECONDS - start)) s)"
        failed+=("$name")
    fi
}

step setup bash tests/setup.sh
if [ ${#failed[@]} -ne 0 ]; then
    echo "::: setup failed: not running the tests"
    exit 1
fi
profile=default
[ "${CI:-}" = true ] && profile=ci

step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step tests cargo nextest run --workspace --no-fail-fast --profile "$profile" "$@"
# `--relay-io auto` picks io_uring where the kernel allows it: run the relay tests again on the
# epoll loop, which is what runs where it does not (Docker's default seccomp profile, old kernels).
step tests-epoll env PGSCOPE_TEST_RELAY_IO=epoll \
    cargo nextest run --no-fail-fast --profile "$profile" --test relay_cli --test relay_python "$@"

if [ ${#failed[@]} -ne 0 ]; then
    echo "::: failed: ${failed[*]}"
    exit 1
fi
echo "::: all steps passed"
