/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migrate: brings a PostgreSQL database up to the schema in a directory of
 * numbered SQL files (schema/NNN_name.sql), for `kanalctl migrate`. Each
 * file is applied once, in number order, in its own transaction, and
 * recorded with the SHA-256 of its bytes in kanal.schema_migrations. A file
 * that changed after it was applied, an applied version with no file, or a
 * new file numbered below an applied one is refused before anything is
 * applied: applied migrations are never edited, changes go in a new file.
 */
#ifndef KANAL_MIGRATE_H
#define KANAL_MIGRATE_H

#include <stddef.h>
#include <stdio.h>

#include <libpq-fe.h>

/*
 * Apply every pending migration in schema_dir to the database of conn.
 *
 * conn is the caller's, connected as the database owner or a superuser,
 * and must not be inside a transaction; it stays open and owned by the
 * caller. Its client_encoding is set to UTF8 (the files are UTF-8). The
 * schema kanal and kanal.schema_migrations are created first if missing.
 * A session advisory lock serialises concurrent migrates of the same
 * database; it is released before return. Each file runs with
 * search_path = kanal and client_min_messages = warning.
 *
 * Files are those named ^[0-9]{3}_[a-z0-9_]+\.sql$; other *.sql files are
 * skipped with a line on out, other names silently.
 *
 * out (may be NULL) gets one line per applied migration and a summary
 * ("2 migrations applied, 1 already current").
 *
 * A file whose leading comment lines hold "-- requires-extension: NAME"
 * is applied only when the server has that extension
 * (pg_available_extensions). When it does not, the files before it are
 * applied, none from it on, and 1 is returned with the message for the
 * operator in err: which extension, which Debian package
 * (postgresql-MAJOR-NAME) to install, that migrate is to be run again.
 * The summary on out then ends ", N held back (FILE needs the extension
 * "NAME")". (KANAL_MIGRATE_EXTENSION_RENAME, for tests only, is described
 * in migrate.c.)
 *
 * Returns 0 when the database is current; 1 when it is current up to a
 * file held back by a missing extension (err says what to do). On error
 * returns -1 with a message in err (always NUL-terminated when errlen > 0)
 * naming the file and the PostgreSQL error; migrations applied before the
 * failing one stay applied, the failing one is rolled back entirely. A
 * CREATE EXTENSION refused for lack of privilege (SQLSTATE 42501) is such
 * an error, and err says that a superuser must create the extension once.
 */
int migrate_apply(PGconn *conn, const char *schema_dir, FILE *out,
    char *err, size_t errlen);

/*
 * Prints to out one line per migration file, "applied", "pending" or
 * "pending, held back" (with the missing extension and its package), and
 * a summary line; changes nothing in the database (no lock, no bootstrap:
 * a database never migrated has every file pending). A history that
 * migrate_apply would refuse is an error here too.
 *
 * Returns 0 when nothing is pending, 1 when something is, -1 on error
 * (err).
 */
int migrate_status(PGconn *conn, const char *schema_dir, FILE *out,
    char *err, size_t errlen);

/*
 * Whether name (a file name, no directory) is a migration name,
 * ^[0-9]{3}_[a-z0-9_]+\.sql$. Returns its version (0..999) in *version and
 * 0, or -1 when it is not one. This function can't fail otherwise.
 */
int migrate_parse_name(const char *name, int *version);

#endif /* KANAL_MIGRATE_H */
