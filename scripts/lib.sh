# shellcheck shell=bash
# Shared helpers for scripts/dev, scripts/pg and .ci/run. Source it; do not run it.
#
# After sourcing, KANAL_ROOT is the repository root (absolute, symlinks
# resolved) and the caller's working directory is unchanged.

# shellcheck disable=SC2034 # used by the scripts that source this file
KANAL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# The Debian 12 packages needed to build kanal and run its tests.
# This is the only list: scripts/dev and .ci/run both use it.
KANAL_PACKAGES=(
    build-essential cmake pkg-config
    libevent-dev libpq-dev libprotobuf-c-dev protobuf-c-compiler
    libcmocka-dev libssl-dev
    libjansson-dev  # daemon/json.c: POST /v1/events as proto3 JSON; kanalctl send --jsonl
    postgresql postgresql-client
    postgresql-15-hll  # schema/010_reach.sql: the hll type of the reach sketches (distinct residents)
    python3 python3-protobuf protobuf-compiler  # tests/e2e_python.py: protoc --python_out
    curl openssl  # tests/test_e2e_tls.c: a throwaway CA and certificate, curl --cacert
    dpkg-dev  # tests/test_package.sh: cpack -G DEB computes Depends with dpkg-shlibdeps
    systemd   # tests/test_systemd.sh: systemd-analyze verify / security
    prometheus  # tests/test_e2e_metrics.c: promtool check metrics (the only package with it)
    clang libclang-rt-14-dev  # scripts/fuzz: libFuzzer and the ASan/UBSan runtimes (tests/fuzz)
    chromium  # tests/test_pg_report_html.c: renders kanalctl report's HTML headless
    haproxy   # tests/crash/run --fleet, tests/test_haproxy.py, scripts/fleet: packaging/haproxy/kanal.cfg in front of several kanald
)

# Name of the calling script, for messages ("scripts/pg", "scripts/dev", ...).
KANAL_PROG="${KANAL_PROG:-$(basename "$0")}"

say() { printf '%s: %s\n' "$KANAL_PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$KANAL_PROG" "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Prints the packages of KANAL_PACKAGES that are not installed, one per line.
missing_packages() {
    local pkg status
    for pkg in "${KANAL_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == ii* ]] || printf '%s\n' "$pkg"
    done
}

# Installs whatever is missing from KANAL_PACKAGES (apt-get update first, then
# apt-get install). Does nothing, and needs no privileges, when all is present.
# Uses sudo when not root.
ensure_packages() {
    command -v dpkg-query >/dev/null 2>&1 ||
        die "dpkg-query not found: this script expects Debian 12 (bookworm)"
    local missing
    mapfile -t missing < <(missing_packages)
    ((${#missing[@]} == 0)) && return 0

    say "installing missing Debian packages: ${missing[*]}"
    local -a sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 ||
            die "packages missing (${missing[*]}) and sudo is not installed; as root run:
  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
        sudo=(sudo)
    fi
    # As root: no prompts (CI has no stdin). Through sudo: plain apt-get, so
    # that a sudoers rule allowing only apt-get still matches.
    if is_root; then export DEBIAN_FRONTEND=noninteractive; fi
    "${sudo[@]}" apt-get update || die "apt-get update failed"
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" ||
        die "apt-get install failed for: ${missing[*]}"
}

# ---- development set-up (scripts/dev, scripts/fleet) ----------------------------
# The callers set BUILD_DIR, CMAKE_ARGS (cmake configure arguments) and
# KANALCTL (the built kanalctl) first, and run these from $KANAL_ROOT.

build() {
    [[ -f CMakeLists.txt ]] || die "no CMakeLists.txt in $KANAL_ROOT"
    say "building in $BUILD_DIR/"
    cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}" || die "cmake configure failed (see above)"
    cmake --build "$BUILD_DIR" -j"$(nproc)" || die "build failed (see above)"
}

# Starts the cluster and points the PG* variables at it, as superuser postgres.
start_pg() {
    "$KANAL_ROOT/scripts/pg" start || die "could not start PostgreSQL (see above)"
    # Variables that would send libpq elsewhere than the private cluster.
    unset PGDATABASE PGHOSTADDR PGSERVICE PGSERVICEFILE PGPASSWORD PGPASSFILE \
        PGOPTIONS PGSSLMODE PGREQUIRESSL PGTARGETSESSIONATTRS
    eval "$("$KANAL_ROOT/scripts/pg" env)"
    export PGHOST PGPORT PGUSER
}

conninfo() { "$KANAL_ROOT/scripts/pg" conninfo "$@"; } # [DBNAME [USER]]

psql_su() { "$KANAL_ROOT/scripts/pg" psql -X -v ON_ERROR_STOP=1 -d postgres "$@"; }

ensure_database() {
    local have
    have="$(psql_su -tAc "select 1 from pg_database where datname = 'kanal'")" ||
        die "could not query PostgreSQL"
    if [[ "$have" != 1 ]]; then
        say "creating database kanal"
        psql_su -qc 'create database kanal' || die "could not create database kanal"
    fi
}

migrate() {
    say "migrating database kanal"
    "$KANALCTL" migrate --pg "$(conninfo kanal postgres)" || die "kanalctl migrate failed (see above)"
}

# The output format of `kanalctl token new --source NAME --allow PATTERNS`
# (tools/kanalctl.c, cmd_token): the token on the first line as
# "token: <hex>", the sources-file line on a line starting with "sources: ".
# If kanalctl ever prints something else, adapt here (and only here).
# Reads kanalctl's output on stdin; sets TOKEN and SOURCES_LINE.
parse_token_output() {
    local out first
    out="$(cat)"
    first="$(printf '%s\n' "$out" | sed -n 1p)"
    TOKEN=""
    SOURCES_LINE=""
    if [[ "$first" =~ ^token:[[:space:]]*([0-9A-Za-z_-]+)[[:space:]]*$ ]]; then
        TOKEN="${BASH_REMATCH[1]}"
    fi
    SOURCES_LINE="$(printf '%s\n' "$out" | sed -n 's/^sources:[[:space:]]*//p' | sed -n 1p)"
    if [[ -z "$TOKEN" || -z "$SOURCES_LINE" ]]; then
        printf '%s\n' "$out" >&2
        die "could not read the token and sources line from kanalctl token new (its output is above; see parse_token_output in scripts/lib.sh)"
    fi
}

# var/sources.conf with source "dev" allowed every service. The token's plain
# text is kept in var/dev.token (mode 0600) so later runs can print it again:
# a development convenience; production keeps only the digest.
ensure_sources() {
    local sources=var/sources.conf tokfile=var/dev.token
    if [[ -s "$sources" && -s "$tokfile" ]]; then
        TOKEN="$(<"$tokfile")"
        say "reusing the dev token in $tokfile (delete $sources for a new one)"
        return
    fi
    if [[ -e "$sources" ]]; then
        mv -f "$sources" "$sources.old"
        say "moved $sources (no $tokfile beside it) to $sources.old"
    fi
    local out
    out="$("$KANALCTL" token new --source dev --allow '*')" ||
        die "kanalctl token new failed (see above)"
    parse_token_output <<<"$out"
    (
        umask 077
        {
            echo "# Written by $KANAL_PROG: the development source, allowed every service."
            echo "# Its token is in var/dev.token. Delete this file for a new token."
            echo "# NAME  TOKEN DIGEST  SERVICES IT MAY REPORT"
            printf '%s\n' "$SOURCES_LINE"
        } >"$sources.tmp"
        printf '%s\n' "$TOKEN" >"$tokfile.tmp"
    )
    mv -f "$tokfile.tmp" "$tokfile"
    mv -f "$sources.tmp" "$sources"
    say "wrote $sources and $tokfile"
}
