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
    python3 python3-protobuf protobuf-compiler  # tests/e2e_python.py: protoc --python_out
    curl openssl  # tests/test_e2e_tls.c: a throwaway CA and certificate, curl --cacert
    dpkg-dev  # tests/test_package.sh: cpack -G DEB computes Depends with dpkg-shlibdeps
    systemd   # tests/test_systemd.sh: systemd-analyze verify / security
    prometheus  # tests/test_e2e_metrics.c: promtool check metrics (the only package with it)
    clang libclang-rt-14-dev  # scripts/fuzz: libFuzzer and the ASan/UBSan runtimes (tests/fuzz)
    chromium  # tests/test_pg_report_html.c: renders kanalctl report's HTML headless
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
