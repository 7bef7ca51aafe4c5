#!/usr/bin/env bash
# Install what the tests need, and nothing else. Idempotent: a second run checks and returns.
#
#   - PostgreSQL 15 server and client (the harness starts its own servers, as user postgres);
#   - pgbouncer (benchmarks compare against it) and promtool (alert-rule tests), with the
#     services Debian would start for them stopped: tests own ports 5432, 6432 and 9090;
#   - cargo-nextest;
#   - the Python virtualenv of tests/requirements.txt at ${PGSCOPE_VENV:-~/.cache/pgscope/venv},
#     rebuilt only when requirements.txt changes.
#
# Runs as root (CI) or with sudo available for apt-get.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

VENV="${PGSCOPE_VENV:-$HOME/.cache/pgscope/venv}"
PYTHON="${PGSCOPE_PYTHON:-python3}"
APT_PACKAGES=(postgresql-15 postgresql-client-15 postgresql-15-hypopg pgbouncer prometheus)

log() { printf 'setup: %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# Install missing Debian packages without letting their maintainer scripts start services.
install_apt_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d own_policy=
    if [ ! -e "$policy" ]; then
        # Tells invoke-rc.d not to start services (exit 101 = action forbidden).
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        own_policy=1
    fi
    local aptlog
    aptlog="$(mktemp)"
    if ! { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}"; } >"$aptlog" 2>&1; then
        cat "$aptlog" >&2
        [ -n "$own_policy" ] && as_root rm -f "$policy"
        log "apt-get failed" >&2
        exit 1
    fi
    [ -n "$own_policy" ] && as_root rm -f "$policy"
    rm -f "$aptlog"
}

# Debian's packages come with services: the main cluster on 5432, pgbouncer on 6432 (our
# proxy's default port) and prometheus on 9090. Stop them and keep them from coming back.
stop_system_services() {
    local conf
    for conf in /etc/postgresql/*/*/start.conf; do
        [ -e "$conf" ] || continue
        grep -qx manual "$conf" || echo manual | as_root tee "$conf" >/dev/null
    done
    if command -v pg_lsclusters >/dev/null; then
        pg_lsclusters --no-header | while read -r version cluster _port status _rest; do
            if [ "$status" = online ]; then
                log "stopping the system cluster $version/$cluster"
                as_root pg_ctlcluster "$version" "$cluster" stop -m fast
            fi
        done
    fi
    local service
    for service in pgbouncer prometheus; do
        [ -x "/etc/init.d/$service" ] || continue
        # The init scripts' status is the pid file's process, so this never touches a
        # pgbouncer that a test or benchmark started itself.
        if as_root service "$service" status >/dev/null 2>&1; then
            log "stopping the system $service service"
            as_root service "$service" stop >/dev/null
        fi
        as_root update-rc.d "$service" disable >/dev/null 2>&1 || true
    done
}

check_postgres() {
    local bindir
    bindir="$(pg_config --bindir)"
    for program in initdb postgres psql pgbench; do
        [ -x "$bindir/$program" ] || { log "missing $bindir/$program" >&2; exit 1; }
    done
    command -v promtool >/dev/null || { log "promtool is missing" >&2; exit 1; }
    [ -x /usr/sbin/pgbouncer ] || { log "pgbouncer is missing" >&2; exit 1; }
}

install_nextest() {
    cargo nextest --version >/dev/null 2>&1 && return
    log "installing cargo-nextest"
    cargo install cargo-nextest --locked --quiet
}

# The venv records the hash of the requirements it was made from.
install_venv() {
    local hash stamp="$VENV/.requirements.sha256"
    hash="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
    if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
        return
    fi
    log "making the Python virtualenv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PYTHON" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --requirement tests/requirements.txt
    echo "$hash" >"$stamp"
}

install_apt_packages
stop_system_services
check_postgres
install_nextest
install_venv
log "ready: $(pg_config --version), $(cargo nextest --version | head -n 1), $("$VENV/bin/python" --version)"
