/* SPDX-License-Identifier: Apache-2.0 */
/*
 * walctl: `kanalctl wal check` and `kanalctl wal dump`, for a person
 * looking at kanald's write-ahead log. Reads it with the daemon's own
 * reader (wal_reader_*, the same rules kanald applies at start-up) and the
 * record codec (record.h), so what it reports is what kanald would see.
 * Only walctl_check with repair changes anything on disk, and it deletes
 * nothing: damaged bytes and the segments that can no longer follow them
 * are moved into quarantine files beside them. The format and the
 * recovery rules are at the top of daemon/wal.c; the runbook is
 * docs/wal.md.
 */
#ifndef KANAL_WALCTL_H
#define KANAL_WALCTL_H

#include <stdint.h>
#include <stdio.h>

/*
 * Checks every segment and record of the WAL in dir and decodes every
 * BATCH record. Prints a summary on out, and each damage with the segment,
 * the file offset, the position and whether kanald cuts it itself at
 * start-up (a torn tail) or refuses to start on it.
 *
 * repair: first takes dir/LOCK as kanald does (refusing, with nothing
 * changed, while kanald holds it), then for the damage found: copies the
 * bytes from the damage to the end of its segment into
 * SEGMENT.quarantine-<unix time> beside it and cuts the segment there, or,
 * when the segment's header is what is damaged, renames the whole segment
 * to that name; the segments after it, which could no longer follow on,
 * are renamed the same way. Every file is synced, and the directory. What
 * was moved, and what that takes out of the log, is printed on out. A CRC-
 * valid record that does not decode is reported but left in place: kanald
 * starts on it and skips it, and cutting there would lose every record
 * after it.
 *
 * Returns the exit status: 0 the WAL is clean (after the repair, with
 * repair); 1 damage or a torn tail remains, the directory cannot be read,
 * or the repair was refused or failed (the reason on err).
 */
int walctl_check(const char *dir, int repair, FILE *out, FILE *err);

/*
 * Prints every record that starts at or after position from, one line
 * each, with one indented line per event when events is set. Returns the
 * exit status: 0, or 1 when it stopped at damage, a record did not
 * decode, or the directory cannot be read (said on err).
 */
int walctl_dump(const char *dir, uint64_t from, int events, FILE *out,
    FILE *err);

#endif
