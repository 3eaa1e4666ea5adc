#!/usr/bin/env bash
# shellcheck disable=SC2016  # the stubs' bodies are single-quoted on purpose
# SPDX-License-Identifier: Apache-2.0
# The Debian package (docs/packaging.md): builds the tree with
# -DCMAKE_INSTALL_PREFIX=/usr in a scratch directory, runs `cpack -G DEB`,
# then checks the .deb's files, control fields and maintainer scripts, runs
# the packaged kanald from an extracted copy, and runs the maintainer
# scripts in a scratch root (DPKG_ROOT) with stubs for everything that
# would touch the real system: adduser, getent, chown, chgrp,
# dpkg-statoverride, systemctl, deb-systemd-helper, deb-systemd-invoke.
# As root the scripts run as nobody, so a script that ignored DPKG_ROOT
# could not change the real /etc or /var/lib.
#
# Environment (tests/CMakeLists.txt): KANAL_SOURCE_DIR, KANAL_VERSION,
# CMAKE_COMMAND, CPACK_COMMAND, KANAL_C_COMPILER; scratch files in $TMPDIR.
set -euo pipefail

src="${KANAL_SOURCE_DIR:?}"
version="${KANAL_VERSION:?}"
cmake="${CMAKE_COMMAND:-cmake}"
cpack="${CPACK_COMMAND:-cpack}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kanal-test-package.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

fail() { printf 'test_package: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok: %s\n' "$*"; }
# run LOG CMD...: CMD's output goes to LOG, shown only when it fails.
run() {
    local log="$1"; shift
    local rc=0
    "$@" >"$log" 2>&1 || rc=$?
    ((rc == 0)) || { cat "$log" >&2; fail "$* (exit $rc)"; }
}

for tool in dpkg-deb dpkg; do
    command -v "$tool" >/dev/null || fail "$tool not found (Debian package dpkg)"
done

# --- build the package --------------------------------------------------------
build="$tmp/build"
cc_args=()
[[ -n "${KANAL_C_COMPILER:-}" ]] && cc_args=("-DCMAKE_C_COMPILER=$KANAL_C_COMPILER")
run "$tmp/configure.log" "$cmake" -S "$src" -B "$build" -DCMAKE_INSTALL_PREFIX=/usr \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKANAL_TESTS=OFF -DKANAL_SANITIZE=OFF "${cc_args[@]}"
run "$tmp/build.log" "$cmake" --build "$build" -j "$(nproc)"
(cd "$build" && "$cpack" -G DEB) >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log" >&2; fail "cpack -G DEB"; }
if grep -q 'CPack Warning\|CMake Warning' "$tmp/cpack.log"; then
    cat "$tmp/cpack.log" >&2
    fail "cpack warned (a missing maintainer script?)"
fi
deb="$build/kanal_${version}_$(dpkg --print-architecture).deb"
[[ -f "$deb" ]] || { ls "$build" >&2; fail "no $deb"; }
ok "cpack made $(basename "$deb")"

# --- contents -----------------------------------------------------------------
dpkg-deb -c "$deb" >"$tmp/contents"
declare -A mode owner
while read -r m o _ _ _ path; do
    path="${path#.}"
    path="${path%/}"
    mode["$path"]="$m"
    owner["$path"]="$o"
done <"$tmp/contents"

# expect PATH MODE
expect() {
    [[ -n "${mode[$1]:-}" ]] || { cat "$tmp/contents" >&2; fail "$1 is not in the package"; }
    [[ "${mode[$1]}" == "$2" ]] || fail "$1 has mode ${mode[$1]}, not $2"
}
expect /usr/sbin/kanald -rwxr-xr-x
expect /usr/bin/kanalctl -rwxr-xr-x
expect /lib/systemd/system/kanald.service -rw-r--r--
expect /etc/kanal/kanald.conf -rw-r-----
expect /usr/share/kanal/haproxy/kanal.cfg -rw-r--r--
for f in README.md LICENSE copyright kanald.conf.example; do
    expect "/usr/share/doc/kanal/$f" -rw-r--r--
done
n=0
for sql in "$src"/schema/*.sql; do
    expect "/usr/share/kanal/schema/$(basename "$sql")" -rw-r--r--
    n=$((n + 1))
done
((n > 0)) || fail "no schema/*.sql in the source tree"
[[ -z "${mode[/usr/bin/kanal-loadgen]:-}" ]] || fail "kanal-loadgen is in the package"
for path in "${!owner[@]}"; do
    [[ "${owner[$path]}" == root/root ]] || fail "$path is owned by ${owner[$path]}"
    case "$path" in
        /etc | /etc/kanal* | /lib | /lib/systemd* | /usr | /usr/bin* | /usr/sbin* | \
        /usr/share | /usr/share/doc | /usr/share/doc/kanal* | /usr/share/kanal*) ;;
        *) fail "unexpected path in the package: $path" ;;
    esac
done
ok "dpkg-deb -c: ${#mode[@]} entries, every expected file, no kanal-loadgen"

# --- control ------------------------------------------------------------------
dpkg-deb -I "$deb" >"$tmp/info"
for f in postinst prerm postrm conffiles; do
    grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\*? *$f\b" "$tmp/info" ||
        { cat "$tmp/info" >&2; fail "dpkg-deb -I lists no $f"; }
done
depends="$(dpkg-deb -f "$deb" Depends)"
for dep in adduser libc6 libevent-core-2.1-7 libevent-pthreads-2.1-7 libpq5 libprotobuf-c1 libssl3 libjansson4; do
    [[ ", $depends," == *", $dep"[\ ,]* ]] || fail "Depends lacks $dep: $depends"
done
# The database server's side of it (it may be another host): PostgreSQL
# and the hll extension that migration 010 (distinct residents) needs.
suggests="$(dpkg-deb -f "$deb" Suggests)"
for dep in postgresql postgresql-15-hll; do
    [[ ", $suggests," == *", $dep"[\ ,]* ]] || fail "Suggests lacks $dep: $suggests"
done
for field in Maintainer Description Section; do
    [[ -n "$(dpkg-deb -f "$deb" "$field")" ]] || fail "no $field field"
done
[[ "$(dpkg-deb -f "$deb" Package Version)" == $'Package: kanal\nVersion: '"$version" ]] ||
    fail "Package/Version: $(dpkg-deb -f "$deb" Package Version)"
ctrl="$tmp/control"
dpkg-deb -e "$deb" "$ctrl"
[[ "$(cat "$ctrl/conffiles")" == /etc/kanal/kanald.conf ]] ||
    fail "conffiles: $(cat "$ctrl/conffiles")"
for f in postinst prerm postrm; do
    [[ -x "$ctrl/$f" ]] || fail "$f is not executable"
    [[ "$(head -n1 "$ctrl/$f")" == '#!/bin/sh' ]] || fail "$f is not a #!/bin/sh script"
    grep -q '^set -e$' "$ctrl/$f" || fail "$f has no set -e"
    sh -n "$ctrl/$f" || fail "$f: sh -n"
    if command -v shellcheck >/dev/null; then
        shellcheck -s sh "$ctrl/$f" >&2 || fail "$f: shellcheck"
    fi
done
ok "dpkg-deb -I: Depends: $depends"

# --- the packaged programs ----------------------------------------------------
ext="$tmp/extract"
dpkg-deb -x "$deb" "$ext"
out="$("$ext/usr/sbin/kanald" --version)"
[[ "$out" == "kanald $version" ]] || fail "kanald --version: $out"
out="$("$ext/usr/bin/kanalctl" migrate --help 2>&1)"
[[ "$out" == *"else /usr/share/kanal/schema"* ]] ||
    fail "kanalctl does not look for migrations in /usr/share/kanal/schema: $out"
grep -Eq '^ExecStart=/usr/sbin/kanald .*-c /etc/kanal/kanald.conf( |$)' "$ext/lib/systemd/system/kanald.service" ||
    fail "the unit's ExecStart is not /usr/sbin/kanald -c /etc/kanal/kanald.conf"
cmp -s "$ext/etc/kanal/kanald.conf" "$src/systemd/kanald.conf.example" ||
    fail "/etc/kanal/kanald.conf differs from systemd/kanald.conf.example"
ok "kanald --version, kanalctl schema path, unit ExecStart"

# --- maintainer scripts in a scratch root -------------------------------------
root="$tmp/root"       # DPKG_ROOT
state="$tmp/state"     # the stubs' user database and call log
stubs="$tmp/stubs"
mkdir -p "$root" "$state" "$stubs"
cp -a "$ext/." "$root/"
: >"$state/calls"
: >"$state/passwd"
: >"$state/group"

stub() { printf '#!/bin/sh\n%s\n' "$2" >"$stubs/$1"; chmod 0755 "$stubs/$1"; }
log='echo "$(basename "$0") $*" >>"$KANAL_STUB_STATE/calls"'
stub getent "$log"'
grep -qx "$2" "$KANAL_STUB_STATE/$1"'
stub adduser "$log"'
for a; do name=$a; done
echo "$name" >>"$KANAL_STUB_STATE/passwd"
case " $* " in *" --group "*) echo "$name" >>"$KANAL_STUB_STATE/group" ;; esac'
# chown/chgrp: record, and fail like the real ones on a missing file.
own="$log"'
for a; do f=$a; done
[ -e "$f" ]'
stub chown "$own"
stub chgrp "$own"
stub dpkg-statoverride "$log"'
[ "$1" = --list ] && [ "$2" = "${KANAL_STUB_OVERRIDE:-}" ]'
stub systemctl "$log"
stub deb-systemd-invoke "$log"
stub deb-systemd-helper "$log"'
[ "$1" = --quiet ] && shift
case "$1" in
    update-state) : >"$KANAL_STUB_STATE/dsh-installed" ;;
    debian-installed) [ -e "$KANAL_STUB_STATE/dsh-installed" ] ;;
    was-enabled) [ -n "${KANAL_STUB_ENABLED:-}" ] ;;
    purge) rm -f "$KANAL_STUB_STATE/dsh-installed" ;;
esac'

# As root, the scripts run as nobody: only the scratch tree is theirs.
as=()
if [[ "$(id -u)" -eq 0 ]]; then
    command -v setpriv >/dev/null || fail "setpriv not found (Debian package util-linux)"
    chmod 0755 "$tmp"
    chown -R 65534:65534 "$root" "$state"
    as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
host_before="$(ls -ld /etc/kanal /var/lib/kanal 2>&1 || true)"

# maint SCRIPT ARGS...: runs it as dpkg would (/bin/sh, DPKG_ROOT), the
# call log emptied first; its output is in $state/out.
maint() {
    : >"$state/calls"
    env -i PATH="$stubs:/usr/sbin:/usr/bin:/sbin:/bin" DPKG_ROOT="$root" \
        DPKG_MAINTSCRIPT_NAME="$1" KANAL_STUB_STATE="$state" \
        KANAL_STUB_ENABLED="${enabled:-}" KANAL_STUB_OVERRIDE="${override:-}" \
        "${as[@]}" /bin/sh "$ctrl/$1" "${@:2}" >"$state/out" 2>&1 ||
        { local rc=$?; cat "$state/out" >&2; fail "$* exited $rc"; }
}
called() {
    grep -qxF -- "$1" "$state/calls" || { cat "$state/calls" >&2; fail "$2: no call '$1'"; }
}
not_called() {
    ! grep -qE -- "$1" "$state/calls" || { cat "$state/calls" >&2; fail "$2: unexpected call /$1/"; }
}
perm() { stat -c %a "$1"; }

mkdir -p "$root/run/systemd/system"     # systemd runs there

# First install: user, directories, sources file; systemd told, nothing started.
what="postinst configure (first install)"
maint postinst configure ""
called "getent passwd kanal" "$what"
called "adduser --system --quiet --group --home /var/lib/kanal --no-create-home kanal" "$what"
called "chown kanal:kanal $root/var/lib/kanal" "$what"
called "chgrp kanal $root/etc/kanal/kanald.conf" "$what"
called "chgrp kanal $root/etc/kanal/sources.conf.dpkg-tmp" "$what"
called "deb-systemd-helper update-state kanald.service" "$what"
called "systemctl --system daemon-reload" "$what"
not_called '^deb-systemd-invoke|^deb-systemd-helper enable|^systemctl (enable|start)' "$what"
grep -q 'not enabled or started' "$state/out" || fail "$what: no first-steps message"
[[ -d "$root/var/lib/kanal" && "$(perm "$root/var/lib/kanal")" == 750 ]] ||
    fail "$what: /var/lib/kanal is not a 0750 directory"
sources="$root/etc/kanal/sources.conf"
[[ -f "$sources" && "$(perm "$sources")" == 640 ]] || fail "$what: no 0640 sources.conf"
grep -q 'kanalctl token new' "$sources" || fail "$what: sources.conf has no kanalctl token new help"
grep -qv '^#' "$sources" && fail "$what: sources.conf has more than comments"
[[ "$(perm "$root/etc/kanal/kanald.conf")" == 640 ]] || fail "$what: kanald.conf is not 0640"
[[ ! -e "$sources.dpkg-tmp" ]] || fail "$what: left sources.conf.dpkg-tmp"
ok "$what"

# The packaged kanald takes the packaged config and the new sources file,
# also with a token kanalctl made.
out="$("$ext/usr/sbin/kanald" -n -c "$root/etc/kanal/kanald.conf" --sources "$sources" 2>&1)" ||
    fail "kanald -n: $out"
[[ "$out" == "configuration OK" ]] || fail "kanald -n: $out"
line="$("$ext/usr/bin/kanalctl" token new --source test-pkg --allow 'dukcapil.*' | sed -n 's/^sources: //p')"
[[ -n "$line" ]] || fail "kanalctl token new printed no sources line"
echo "$line" >>"$sources"
out="$("$ext/usr/sbin/kanald" -n -c "$root/etc/kanal/kanald.conf" --sources "$sources" 2>&1)" ||
    fail "kanald -n with a token: $out"
ok "kanald -n -c etc/kanal/kanald.conf --sources etc/kanal/sources.conf: $out"

# Again: nothing new made, the admin's sources file kept.
what="postinst configure (again)"
before="$(cat "$sources")"
maint postinst configure ""
not_called adduser "$what"
not_called "sources.conf.dpkg-tmp" "$what"
[[ "$(cat "$sources")" == "$before" ]] || fail "$what: sources.conf changed"
[[ "$(perm "$root/var/lib/kanal")" == 750 ]] || fail "$what: /var/lib/kanal mode"
ok "$what: idempotent"

# A group kanal made by the admin beforehand is used, not made again.
what="postinst configure (group exists)"
: >"$state/passwd"
maint postinst configure ""
called "adduser --system --quiet --ingroup kanal --home /var/lib/kanal --no-create-home kanal" "$what"
ok "$what"

# A dpkg-statoverride on /var/lib/kanal is respected.
what="postinst configure (statoverride)"
override=/var/lib/kanal maint postinst configure ""
not_called "chown kanal:kanal $root/var/lib/kanal" "$what"
called "chgrp kanal $root/etc/kanal/kanald.conf" "$what"
ok "$what"

# Upgrade: prerm leaves it running; postinst restarts it only if it runs
# (try-restart) and refreshes the links of an enabled unit.
what="prerm upgrade"
maint prerm upgrade "$version"
not_called 'stop' "$what"
ok "$what: kanald keeps running"
what="postinst configure (upgrade, enabled)"
enabled=1 maint postinst configure 0.0.1
called "systemctl --system daemon-reload" "$what"
called "deb-systemd-invoke try-restart kanald.service" "$what"
called "deb-systemd-helper enable kanald.service" "$what"
not_called 'deb-systemd-invoke (start|restart)' "$what"
grep -q 'not enabled or started' "$state/out" && fail "$what: first-steps message on upgrade"
ok "$what"

# Without a running systemd (a container, a chroot): no systemctl at all.
rmdir "$root/run/systemd/system"
what="postinst configure (no systemd)"
maint postinst configure 0.0.1
not_called 'systemctl|deb-systemd-invoke' "$what"
ok "$what"
mkdir -p "$root/run/systemd/system"

# Remove: stop, reload; state and config stay. Purge: state and sources go.
what="prerm remove"
maint prerm remove
called "deb-systemd-invoke stop kanald.service" "$what"
ok "$what"
what="postrm remove"
maint postrm remove
called "systemctl --system daemon-reload" "$what"
[[ -d "$root/var/lib/kanal" && -f "$sources" ]] || fail "$what removed state or sources"
ok "$what: /var/lib/kanal and sources.conf kept"
what="postrm purge"
mkdir -p "$root/var/lib/kanal/wal"
maint postrm purge
called "deb-systemd-helper purge kanald.service" "$what"
[[ ! -e "$root/var/lib/kanal" ]] || fail "$what left /var/lib/kanal"
[[ ! -e "$sources" ]] || fail "$what left sources.conf"
[[ -f "$root/etc/kanal/kanald.conf" ]] || fail "$what removed the conffile (dpkg's job)"
maint postrm purge
ok "$what (twice)"

for s in postinst prerm postrm; do
    if env -i PATH="$stubs:/usr/bin:/bin" DPKG_ROOT="$root" KANAL_STUB_STATE="$state" \
        "${as[@]}" /bin/sh "$ctrl/$s" bogus >/dev/null 2>&1; then
        fail "$s accepted an unknown argument"
    fi
done
ok "unknown arguments refused"

[[ "$(ls -ld /etc/kanal /var/lib/kanal 2>&1 || true)" == "$host_before" ]] ||
    fail "the real /etc/kanal or /var/lib/kanal changed"
echo "test_package: all passed"
