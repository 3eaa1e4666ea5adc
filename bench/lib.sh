# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables set here are for the scripts that source it
# bench/lib.sh: set-up shared by the bench scripts (bench/latency,
# bench/run). Source it after setting KANAL_PROG; do not run it. It sources
# scripts/lib.sh (KANAL_ROOT, say, die) and changes to the repository root.
#
# One kanald at a time: bench_start_kanald / bench_stop_kanald keep its pid
# in KANALD_PID. Scratch databases made with bench_make_db are listed in
# BENCH_DBS for bench_drop_dbs. Every wait has a deadline.

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$KANAL_ROOT" || exit 1

KANALD_PID=""
KANALD_RC=""          # exit status of the last kanald bench_stop_kanald stopped
KANALD_T0=""          # $EPOCHREALTIME just before the last kanald was started
BENCH_DBS=()

# bench_tools BUILD_DIR: sets KANALD, KANALCTL, LOADGEN; checks they are
# built and that python3 and curl are there.
bench_tools() {
    local b
    KANALD="$1/daemon/kanald"
    KANALCTL="$1/tools/kanalctl"
    LOADGEN="$1/tools/kanal-loadgen"
    for b in "$KANALD" "$KANALCTL" "$LOADGEN"; do
        [[ -x "$b" ]] || die "$b is not built; run: cmake -S . -B $1 && cmake --build $1 -j2"
    done
    command -v python3 >/dev/null || die "python3 is needed to summarise the runs (Debian package python3)"
    command -v curl >/dev/null || die "curl is needed to wait for kanald (Debian package curl)"
}

# psql as superuser postgres; NOTICEs (drop database if exists) left out.
psql_su() { PGOPTIONS='-c client_min_messages=warning' scripts/pg psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }

# bench_port_free URL: dies if something already answers there.
bench_port_free() {
    if curl -s -o /dev/null --max-time 2 "$1/healthz"; then
        die "something already answers on $1; stop it or set KANAL_BENCH_PORT"
    fi
}

# bench_make_db DB [--no-migrate]: a fresh database DB (dropped first if
# there), migrated with kanalctl migrate unless --no-migrate.
bench_make_db() {
    local db="$1"
    psql_su -c "drop database if exists $db" -c "create database $db" >/dev/null
    BENCH_DBS+=("$db")
    if [[ "${2:-}" != --no-migrate ]]; then
        "$KANALCTL" migrate --pg "$(scripts/pg conninfo "$db" postgres)" >/dev/null ||
            die "kanalctl migrate failed on $db"
    fi
}

bench_drop_dbs() {
    local db
    for db in "${BENCH_DBS[@]}"; do
        psql_su -c "drop database if exists $db" >/dev/null 2>&1 || true
    done
    BENCH_DBS=()
}

# bench_make_token DIR: a token for source "bench", allowed every service.
# Only its digest is written (DIR/sources.conf); the token is exported as
# KANAL_TOKEN and stays in this shell.
bench_make_token() {
    local out token line
    out="$("$KANALCTL" token new --source bench --allow '*')"
    token="$(sed -n 's/^token:[[:space:]]*//p' <<<"$out")"
    line="$(sed -n 's/^sources:[[:space:]]*//p' <<<"$out")"
    [[ -n "$token" && -n "$line" ]] || die "could not read kanalctl token new's output"
    (umask 077 && printf '%s\n' "$line" >"$1/sources.conf")
    export KANAL_TOKEN="$token"
}

# bench_start_kanald LOG ARGS...: starts kanald in the background (a child
# of this shell), its stderr and stdout to LOG.
bench_start_kanald() {
    local log="$1"
    shift
    [[ -z "$KANALD_PID" ]] || die "bench_start_kanald: one kanald is already running"
    KANALD_T0="$EPOCHREALTIME"
    "$KANALD" "$@" >"$log" 2>&1 &
    KANALD_PID=$!
}

# bench_wait_http URL PATH SECONDS LOG: until URL/PATH answers 200; dies
# (showing the end of LOG) if kanald exits or the deadline passes.
bench_wait_http() {
    local url="$1" path="$2" secs="$3" log="$4" deadline
    deadline=$((SECONDS + secs))
    until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url$path" || true)" == 200 ]]; do
        if ! kill -0 "$KANALD_PID" 2>/dev/null; then
            tail -n 20 "$log" >&2
            die "kanald exited during start-up (log above)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$log" >&2
            die "kanald: $path not 200 within $secs s (log above)"
        fi
        sleep 0.1
    done
}

# bench_stop_kanald [SECONDS]: SIGTERM, wait (default 30 s), then SIGKILL.
# Sets KANALD_RC to kanald's exit status (137 when it had to be killed).
bench_stop_kanald() {
    local secs="${1:-30}" deadline
    KANALD_RC=""
    [[ -n "$KANALD_PID" ]] || return 0
    if kill -0 "$KANALD_PID" 2>/dev/null; then
        kill -TERM "$KANALD_PID" 2>/dev/null || true
        deadline=$((SECONDS + secs))
        while kill -0 "$KANALD_PID" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if kill -0 "$KANALD_PID" 2>/dev/null; then
            say "kanald did not stop within $secs s of SIGTERM; killing it"
            kill -KILL "$KANALD_PID" 2>/dev/null || true
        fi
    fi
    KANALD_RC=0
    wait "$KANALD_PID" 2>/dev/null || KANALD_RC=$?
    KANALD_PID=""
}

# bench_rss_kib PID: VmRSS of PID in KiB.
bench_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# bench_machine DIR: sets the machine variables the reports print
# (bench_machine_md); DIR is the WAL's directory (file system, dd probe).
bench_machine() {
    local dir="$1" dd_out
    lscpu_field() { lscpu 2>/dev/null | sed -n "s/^$1:[[:space:]]*//p" | head -n1; }
    CPU_MODEL="$(lscpu_field 'Model name')"
    CPU_COUNT="$(nproc)"
    CPU_THREADS="$(lscpu_field 'Thread(s) per core')"
    HYPERVISOR="$(lscpu_field 'Hypervisor vendor')"
    MEM="$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    KERNEL="$(uname -srm)"
    # shellcheck disable=SC1091 # the machine's, not ours
    OS="$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")"
    PG_VERSION="$(psql_su -tAc 'show server_version')"
    PG_SETTINGS="$(psql_su -tAc "select string_agg(name || '=' || setting, ', ' order by name) from pg_settings where name in ('fsync','synchronous_commit','shared_buffers','wal_level','max_wal_size')")"
    KANALD_VERSION="$("$KANALD" --version 2>&1 | head -n1)"
    BUILD_TYPE="$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)"
    COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain 2>/dev/null | head -n1)" ]]; then COMMIT="$COMMIT + uncommitted changes"; fi
    DF_WAL="$(df -T "$dir" 2>/dev/null | tail -n +2 | awk '{ print $2 " (" $1 ", mounted on " $7 ")" }')"
    LSBLK="$(lsblk -d -o NAME,TYPE,ROTA,SIZE,MODEL 2>/dev/null || echo "lsblk not available")"
    # What one durable 4 KiB write costs on the WAL's file system: dd with
    # O_DSYNC, 500 writes. The floor under any acknowledgement.
    dd_out="$(dd if=/dev/zero of="$dir/.fsync-probe" bs=4k count=500 oflag=dsync 2>&1 | tail -n1)"
    rm -f -- "$dir/.fsync-probe"
    DSYNC_MS="$(awk -F', ' '{ split($3, t, " "); printf "%.3f", t[1] * 1000 / 500 }' <<<"$dd_out")"
}

# bench_machine_md LOAD_BEFORE LOAD_AFTER: the "Machine" section.
bench_machine_md() {
    cat <<EOF
| | |
| --- | --- |
| CPU | ${CPU_MODEL:-unknown}, $CPU_COUNT CPUs (threads per core: ${CPU_THREADS:-?})${HYPERVISOR:+, virtualised ($HYPERVISOR)} |
| memory | $MEM |
| OS, kernel | $OS, $KERNEL |
| WAL file system | ${DF_WAL:-unknown} |
| one 4 KiB O_DSYNC write (dd, 500 writes) | $DSYNC_MS ms |
| PostgreSQL | $PG_VERSION, same machine (scripts/pg cluster) |
| load average before / after | $1 / $2 |

Block devices (lsblk -d):

\`\`\`
$LSBLK
\`\`\`
EOF
}

# bench_warnings LOG: sets KANALD_WARNINGS (count of warning-or-worse lines)
# and KANALD_WARNING_KINDS (the distinct ones, numbers taken out).
bench_warnings() {
    KANALD_WARNINGS="$(grep -cE ': (warning|err|crit|alert|emerg):' "$1" || true)"
    KANALD_WARNING_KINDS="$(grep -E ': (warning|err|crit|alert|emerg):' "$1" |
        sed -E 's/=[0-9]+/=N/g; s/\[[0-9]+\]/[N]/g' | cut -c1-160 | sort | uniq -c | sort -rn | head -n 6 || true)"
}
