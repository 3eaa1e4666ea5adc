#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# csv-forward.sh: forwards the daily export of a legacy counter system to
# kanald, by mapping it to kanalctl's CSV columns with awk and piping it to
# `kanalctl send --csv -`.
#
#   KANAL_URL=http://127.0.0.1:8080 KANAL_TOKEN=... \
#       docs/examples/csv-forward.sh docs/examples/loket-export.csv
#
# The sample is dated 2-27 November 2026, and kanald refuses events more
# than event-max-age (7 days) old as too_old. To try it on another day,
# date every row yesterday (the WIB date):
#
#   LOKET_DATE=$(TZ=Asia/Jakarta date -d yesterday +%d/%m/%Y) \
#   KANAL_URL=... KANAL_TOKEN=... docs/examples/csv-forward.sh docs/examples/loket-export.csv
#
# kanalctl is the one on PATH, else this checkout's build/tools/kanalctl;
# KANALCTL names another.
#
# The export (docs/examples/loket-export.csv is a sample) is what the
# Dukcapil front-office queue system of a kota writes every evening: a
# spreadsheet-style CSV with ';' between fields (a ',' is the decimal
# separator in Indonesia), CRLF line ends, and one row per citizen served:
#
#   no               running number (not sent)
#   tanggal          date, DD/MM/YYYY, local time (WIB, UTC+7)
#   jam              time the citizen was called, HH.MM (WIB)
#   kode_layanan     KTP-EL, KK, AKTA-LHR, AKTA-MTI, PINDAH, KIA, IKD
#   kecamatan        the office's kecamatan, by name
#   jenis_loket      LOKET (a counter), JEMPUT-BOLA (the mobile service
#                    unit), TELEPON (call centre), ANJUNGAN (the
#                    self-service kiosk, APM)
#   status           SELESAI (done), DITOLAK (refused: still a completed
#                    transaction), BATAL (the citizen left), GAGAL-SISTEM
#                    (system failure), empty (not recorded)
#   durasi_menit     minutes at the counter, "4,5" allowed; empty: unknown
#   dibantu_petugas  Y when a staff member helped (at the kiosk), else T
#
# The mapping keeps one output line per input line (the header to
# kanalctl's header), so kanalctl's "line N: ..." points at line N of the
# export. A code the tables below do not know becomes an empty value, which
# kanalctl rejects for that row only ("line 17: service_code: empty
# (required)"); awk also names the code on stderr. Add the code to the
# table and send the file again: rows already counted are not counted
# twice (kanalctl's batch ids are a hash of the batches' content).
#
# Exit status: kanalctl's (0 all sent, 3 some rows rejected, 1 failure,
# 2 the mapping's header is wrong). KANALCTL names the kanalctl to run.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 EXPORT.csv   (KANAL_URL and KANAL_TOKEN from the environment)" >&2
    exit 2
fi
export_file=$1
if [ -n "${KANALCTL:-}" ]; then
    kanalctl=$KANALCTL
elif command -v kanalctl >/dev/null 2>&1; then
    kanalctl=kanalctl
elif [ -x "$(dirname "$0")/../../build/tools/kanalctl" ]; then
    kanalctl="$(dirname "$0")/../../build/tools/kanalctl"
else
    echo "$0: kanalctl not found: install kanal, build it, or set KANALCTL" >&2
    exit 1
fi

awk -F';' -v date="${LOKET_DATE:-}" '
BEGIN {
    # kode_layanan -> kanal service code (schema/ seeds the catalogue).
    svc["KTP-EL"] = "dukcapil.ktp-el"
    svc["KK"] = "dukcapil.kartu-keluarga"
    svc["AKTA-LHR"] = "dukcapil.akta-lahir"
    svc["AKTA-MTI"] = "dukcapil.akta-kematian"
    svc["PINDAH"] = "dukcapil.pindah-datang"
    svc["KIA"] = "dukcapil.kia"
    svc["IKD"] = "dukcapil.ikd"
    # jenis_loket -> channel.
    ch["LOKET"] = "counter"
    ch["JEMPUT-BOLA"] = "outreach"
    ch["TELEPON"] = "phone"
    ch["ANJUNGAN"] = "kiosk"
    # status -> outcome; a refusal is a completed transaction.
    st["SELESAI"] = "completed"
    st["DITOLAK"] = "completed"
    st["BATAL"] = "abandoned"
    st["GAGAL-SISTEM"] = "failed"
    st[""] = "unknown"
    # kecamatan of Kota Bandung -> Kemendagri code.
    kec["SUKASARI"] = "32.73.01"
    kec["COBLONG"] = "32.73.02"
    kec["BABAKAN CIPARAY"] = "32.73.03"
    kec["BOJONGLOA KALER"] = "32.73.04"
    kec["ANDIR"] = "32.73.05"
    kec["CICENDO"] = "32.73.06"
    kec["SUKAJADI"] = "32.73.07"
    kec["CIDADAP"] = "32.73.08"
    kec["BANDUNG WETAN"] = "32.73.09"
    kec["ASTANA ANYAR"] = "32.73.10"
    kec["REGOL"] = "32.73.11"
    kec["BATUNUNGGAL"] = "32.73.12"
    kec["LENGKONG"] = "32.73.13"
    kec["CIBEUNYING KIDUL"] = "32.73.14"
    kec["BANDUNG KULON"] = "32.73.15"
    kec["KIARACONDONG"] = "32.73.16"
    kec["BOJONGLOA KIDUL"] = "32.73.17"
    kec["CIBEUNYING KALER"] = "32.73.18"
    kec["SUMUR BANDUNG"] = "32.73.19"
    kec["ANTAPANI"] = "32.73.20"
    kec["BANDUNG KIDUL"] = "32.73.21"
    kec["BUAHBATU"] = "32.73.22"
    kec["RANCASARI"] = "32.73.23"
    kec["ARCAMANIK"] = "32.73.24"
    kec["CIBIRU"] = "32.73.25"
    kec["UJUNG BERUNG"] = "32.73.26"
    kec["GEDEBAGE"] = "32.73.27"
    kec["PANYILEUKAN"] = "32.73.28"
    kec["CINAMBO"] = "32.73.29"
    kec["MANDALAJATI"] = "32.73.30"
}

# Where the table has no entry: an empty value, and a note on stderr.
function look(table, key, what) {
    if (key in table)
        return table[key]
    printf "csv-forward: line %d: unknown %s \"%s\"\n", NR, what, key \
        > "/dev/stderr"
    return ""
}

{
    sub(/\r$/, "")
    for (i = 1; i <= NF; i++)
        gsub(/^[ \t]+|[ \t]+$/, "", $i)
}

NR == 1 {
    print "service_code,channel,occurred_at,region_code,outcome,duration_ms,assisted"
    next
}

{
    if (date != "")
        $2 = date    # LOKET_DATE: every row on that day (trying the sample)
    split($2, d, "/")
    split($3, t, ".")
    at = sprintf("%s-%s-%sT%s:%s:00+07:00", d[3], d[2], d[1], t[1], t[2])
    dur = $8
    sub(/,/, ".", dur)
    ms = dur == "" ? "" : sprintf("%d", dur * 60000 + 0.5)
    print look(svc, toupper($4), "kode_layanan"), \
        look(ch, toupper($6), "jenis_loket"), at, \
        look(kec, toupper($5), "kecamatan"), \
        look(st, toupper($7), "status"), ms, \
        (toupper($9) == "Y" ? "true" : "false")
}
' OFS=',' "$export_file" | "$kanalctl" send --csv -
