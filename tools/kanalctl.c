/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kanalctl: the command-line tool for operators and service teams.
 *
 *   kanalctl migrate    bring the database up to the schema
 *   kanalctl token new  make a source token and its sources line
 *   kanalctl send       send events built from flags
 *   kanalctl demo       send realistic Kota Bandung traffic
 *   kanalctl wal        check, repair and dump a write-ahead log
 *   kanalctl report     a month's indicators as a table and an HTML page
 *   kanalctl retention  hourly partitions ahead, old hourly months dropped
 *   kanalctl reach      make or check the city's reach key
 *
 * Each subcommand has --help. Exit status: 0 success, 1 failure (for wal
 * check: damage found; for report: no events that month), 2 usage error,
 * 3 (send) the batch was answered but some events were rejected, (migrate
 * --status) a migration is pending, 4 (wal adopt) the collector is alive
 * or already retired.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "adopt.h"
#include "client.h"
#include "demo.h"
#include "httpc.h"
#include "migrate.h"
#include "opts.h"
#include "reach.h"
#include "report.h"
#include "retention.h"
#include "sendfile.h"
#include "sources.h"
#include "validate.h"
#include "walctl.h"

#define EXIT_USAGE 2
#define EXIT_REJECTED 3
#define DEFAULT_URL "http://127.0.0.1:8080"
/*
 * kanalctl send and demo: there is no option to skip verification on
 * purpose, and --help says why.
 */
#define CACERT_HELP \
	"for https://: PEM file of the CA that signed kanald's certificate, " \
	"instead of the system trust store (default $KANAL_CACERT). The " \
	"certificate and its name or IP are always verified; there is no " \
	"option to skip that, as it would let anyone in between take the " \
	"token"


/* ------------------------------------------------------------- migrate */

static const char *
schema_dir_default(void)
{
	const char *env = getenv("KANAL_SCHEMA_DIR");

	if (env != NULL && env[0] != '\0')
		return env;
	if (access(KANAL_SCHEMA_INSTALL_DIR, R_OK) == 0)
		return KANAL_SCHEMA_INSTALL_DIR;
	return KANAL_SCHEMA_SOURCE_DIR;
}

static int
cmd_migrate(int argc, char **argv)
{
	const char *pg = "", *dir = NULL;
	int status = 0;
	const struct opt o[] = {
		{ "pg", "CONNINFO", "database to migrate, as its owner "
		  "(default: libpq's PG* environment)", &pg, NULL },
		{ "schema-dir", "DIR", "migrations (default: $KANAL_SCHEMA_DIR, "
		  "else " KANAL_SCHEMA_INSTALL_DIR ")", &dir, NULL },
		{ "status", NULL, "change nothing: list each migration as "
		  "applied, pending or held back (exit 0: current, 3: "
		  "something pending)", NULL, &status },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanalctl migrate [--pg CONNINFO] [--schema-dir DIR] "
	    "[--status]";
	PGconn *conn;
	char err[2048];
	int r;

	r = opts_parse("kanalctl", argc, argv, o, syn, "Applies the pending numbered "
	    "migrations, each in its own transaction, and records them with "
	    "a checksum\nin kanal.schema_migrations. Safe to run again.\n"
	    "A migration that needs a PostgreSQL extension the server lacks "
	    "(010_reach.sql:\nhll, Debian package postgresql-NN-hll) is held "
	    "back with the ones after it:\nthe others are applied, a message "
	    "says what to install, and the exit status\nis 0 (kanald runs "
	    "without what it adds). Run migrate again once it is installed.");
	if (r != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	if (dir == NULL)
		dir = schema_dir_default();
	conn = PQconnectdb(pg);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "kanalctl migrate: cannot connect: %s",
		    PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	if (status) {
		r = migrate_status(conn, dir, stdout, err, sizeof(err));
		PQfinish(conn);
		if (r == -1)
			fprintf(stderr, "kanalctl migrate: %s\n", err);
		return r == -1 ? 1 : r == 1 ? 3 : 0;
	}
	r = migrate_apply(conn, dir, stdout, err, sizeof(err));
	PQfinish(conn);
	if (r != 0)
		fprintf(stderr, "kanalctl migrate: %s\n", err);
	/* 1: held back by a missing extension, said on stderr; not a failure. */
	return r == -1 ? 1 : 0;
}

/* --------------------------------------------------------------- reach */

static int
cmd_reach(int argc, char **argv)
{
	const char *syn = "kanalctl reach keygen FILE | kanalctl reach check FILE";
	struct reach_key key;
	char err[512];

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0)) {
		printf("usage: %s\n\n"
		    "keygen  makes the city's reach key: 32 random bytes in a "
		    "new FILE, mode 0600\n"
		    "        (it is never overwritten). Run it as kanald's user, "
		    "or chown the file\n"
		    "        to that user; set reach-key-file = FILE in every "
		    "kanald of the city,\n"
		    "        all with the same file. Keep a copy offline: a "
		    "lost key cannot be\n"
		    "        made again, and sketches of a new key never merge "
		    "with the old.\n"
		    "check   checks FILE as kanald does at start (size, mode, "
		    "owner) and prints\n"
		    "        its key_id, the fingerprint kanal.reach_key stores "
		    "(not the key).\n\n"
		    "Rotation: docs/operations.md, \"Rotating the reach "
		    "key\".\n"
		    "Exit status: 0 done; 1 the file could not be made or is "
		    "unusable; 2 usage.\n", syn);
		return 0;
	}
	if (argc != 3 || (strcmp(argv[1], "keygen") != 0 &&
	    strcmp(argv[1], "check") != 0)) {
		fprintf(stderr, "usage: %s (see --help)\n", syn);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "keygen") == 0) {
		if (reach_key_generate(argv[2], err, sizeof(err)) == -1) {
			fprintf(stderr, "%s: %s\n", argv[2], err);
			return 1;
		}
	}
	if (reach_key_load(argv[2], &key, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", argv[2], err);
		return 1;
	}
	printf("%s: key_id=%lld\n", argv[2], (long long)key.id);
	return 0;
}

/* --------------------------------------------------------------- token */

static int
cmd_token(int argc, char **argv)
{
	const char *source = NULL, *allow = NULL;
	const struct opt o[] = {
		{ "source", "NAME", "the source's name (who sends)", &source,
		  NULL },
		{ "allow", "PATTERNS", "services it may report: codes or "
		  "prefixes ending in '*', comma-separated", &allow, NULL },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanalctl token new --source NAME --allow PATTERNS";
	char token[65], digest[65], line[512];
	struct sources *check;
	FILE *devnull;
	int r;

	if (argc < 2 || strcmp(argv[1], "new") != 0) {
		fprintf(stderr, "usage: %s\n", syn);
		return EXIT_USAGE;
	}
	r = opts_parse("kanalctl", argc - 1, argv + 1, o, syn, "Makes a random 256-bit "
	    "token, prints it once, and prints the line to add to kanald's "
	    "sources\nfile (which holds only the token's SHA-256 digest). "
	    "Give the token to the service team; it is not stored anywhere.");
	if (r != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	if (source == NULL || allow == NULL) {
		fprintf(stderr, "kanalctl token new: --source and --allow are "
		    "required\n");
		return EXIT_USAGE;
	}
	if (client_random_hex(token, 32) == -1) {
		fprintf(stderr, "kanalctl token new: no randomness: %s\n",
		    strerror(errno));
		return 1;
	}
	sources_digest_hex(token, strlen(token), digest);
	snprintf(line, sizeof(line), "%s sha256:%s %s", source, digest, allow);
	/* Check the line the way kanald will read it. */
	devnull = fopen("/dev/null", "w");
	check = sources_parse(line, strlen(line), "line", devnull ? devnull
	    : stderr);
	if (devnull != NULL)
		fclose(devnull);
	if (check == NULL) {
		sources_parse(line, strlen(line), "kanalctl token new", stderr);
		return EXIT_USAGE;
	}
	sources_free(check);
	printf("token: %s\nsources: %s\n", token, line);
	return 0;
}

/* ---------------------------------------------------------------- send */

#define SEND_ABOUT \
	"Sends COUNT identical events in one batch and prints kanald's answer;\n" \
	"or, with --csv or --jsonl, every event of a file, in batches, and a\n" \
	"summary: rows, accepted, rejected, and the first reasons by line.\n" \
	"\n" \
	"CSV (RFC 4180: quoted fields, \"\" escapes, LF or CRLF, UTF-8, optional\n" \
	"BOM): the first row names the columns, in any order, any case:\n" \
	"  service_code  required, e.g. dukcapil.akta-lahir\n" \
	"  channel       required: web, mobile_app, kiosk, chat, partner, counter,\n" \
	"                phone, outreach, paper (or CHANNEL_WEB ...)\n" \
	"  occurred_at   required: RFC 3339 with offset (2026-11-02T09:15:00+07:00,\n" \
	"                Z, optional fraction) or unix milliseconds\n" \
	"  region_code   required, e.g. 32.73.01\n" \
	"  outcome       completed, abandoned, failed, unknown (default) (or\n" \
	"                OUTCOME_...)\n" \
	"  duration_ms   whole milliseconds; empty or 0: not measured\n" \
	"  assisted      true/false/1/0/yes/no; empty: false\n" \
	"  event_id      32 hex digits (16 bytes); optional\n" \
	"  citizen_ref   an opaque pseudonym (never a NIK), sent as given\n" \
	"Any other column is an error (exit 2): map other exports first (see\n" \
	"docs/examples/csv-forward.sh). A row with a bad value is not sent; it is\n" \
	"reported as \"line N: column: what is wrong\" and the other rows still go.\n" \
	"\n" \
	"JSONL: one ServiceEvent a line in the proto3 JSON mapping, e.g.\n" \
	"  {\"serviceCode\":\"dukcapil.akta-lahir\",\"channel\":\"CHANNEL_WEB\",\n" \
	"   \"occurredAtMs\":\"1764300000000\",\"regionCode\":\"32.73.01\"}\n" \
	"sent as application/json; blank lines are skipped, a line that is not a\n" \
	"JSON object is reported by line number and not sent, and so is a line\n" \
	"kanald refuses as malformed (the rest of its batch is sent again).\n" \
	"\n" \
	"A batch that meets a connection error, 429 or 5xx is sent again with\n" \
	"the same batch_id after 0.5 s, 1 s, 2 s ... (at most 30 s; Retry-After\n" \
	"when given); a refused TLS certificate is not. Batch ids are,\n" \
	"unless --batch-prefix, a hash of the batch's input and its number:\n" \
	"sending the same file again with the same --batch-size within\n" \
	"kanald's dedup window (24 h) counts nothing twice. A progress bar\n" \
	"is drawn when standard error is a terminal.\n" \
	"\n" \
	"https:// URLs: TLS 1.2 or later; kanald's certificate is checked\n" \
	"against the system trust store, or the CA given with --cacert, and\n" \
	"must name the URL's host (or IP address).\n" \
	"\n" \
	"Exit 0: all accepted; 3: some rows rejected (here or by kanald); 1: a\n" \
	"failure (HTTP error or no answer; what was sent before is reported);\n" \
	"2: usage, or the file's header is wrong."

/* kanalctl send --csv/--jsonl: checks the options, then sendfile_run. */
static int
send_file(const char *csv, const char *jsonl, const char *url,
    const char *cacert, const char *token, const char *bsize_s,
    const char *prefix, const char *retries_s, const char *retry_for_s,
    int flag_opts)
{
	struct sendfile_config sc;
	long long v;

	memset(&sc, 0, sizeof(sc));
	if (csv != NULL && jsonl != NULL) {
		fprintf(stderr, "kanalctl send: --csv or --jsonl, not both\n");
		return EXIT_USAGE;
	}
	if (flag_opts) {
		fprintf(stderr, "kanalctl send: --service, --channel, --region, "
		    "--at and --batch-id describe one event; with --csv or "
		    "--jsonl the file does\n");
		return EXIT_USAGE;
	}
	if (token == NULL || token[0] == '\0') {
		fprintf(stderr, "kanalctl send: no token: give --token or set "
		    "KANAL_TOKEN\n");
		return EXIT_USAGE;
	}
	if (opts_number(bsize_s, 1, SENDFILE_BATCH_MAX, &v) == -1) {
		fprintf(stderr, "kanalctl send: --batch-size is 1..%d\n",
		    SENDFILE_BATCH_MAX);
		return EXIT_USAGE;
	}
	sc.batch_size = (size_t)v;
	if (opts_number(retries_s, 0, 1000, &v) == -1) {
		fprintf(stderr, "kanalctl send: --retries is 0..1000\n");
		return EXIT_USAGE;
	}
	sc.retries = (int)v;
	if (opts_number(retry_for_s, 0, 86400, &v) == -1) {
		fprintf(stderr, "kanalctl send: --retry-for is 0..86400 "
		    "seconds\n");
		return EXIT_USAGE;
	}
	sc.retry_for_s = (unsigned)v;
	/* No quote or backslash: the id goes into JSON unescaped. */
	if (prefix != NULL && (strlen(prefix) > SENDFILE_PREFIX_MAX ||
	    !validate_batch_id(prefix, strlen(prefix)) ||
	    strpbrk(prefix, "\"\\") != NULL)) {
		fprintf(stderr, "kanalctl send: --batch-prefix is 1..%d "
		    "printable ASCII characters, no \" or \\\n",
		    SENDFILE_PREFIX_MAX);
		return EXIT_USAGE;
	}
	sc.prefix = prefix;
	sc.format = csv != NULL ? SENDFILE_CSV : SENDFILE_JSONL;
	sc.path = csv != NULL ? csv : jsonl;
	sc.url = url != NULL ? url : DEFAULT_URL;
	sc.cacert = cacert;
	sc.token = token;
	sc.progress = isatty(STDERR_FILENO);
	sc.out = stdout;
	sc.err = stderr;
	return sendfile_run(&sc);
}

static int
cmd_send(int argc, char **argv)
{
	const char *url = getenv("KANAL_URL"), *token = getenv("KANAL_TOKEN");
	const char *cacert = getenv("KANAL_CACERT");
	const char *service = NULL, *channel = NULL, *region = NULL;
	const char *outcome = "completed", *count_s = "1", *dur_s = "0";
	const char *batch_id = NULL, *at_s = NULL;
	const char *csv = NULL, *jsonl = NULL, *bsize_s = "500";
	const char *prefix = NULL, *retries_s = "8", *retry_for_s = "300";
	int assisted = 0;
	const struct opt o[] = {
		{ "url", "URL", "kanald's address, http:// or https:// "
		  "(default $KANAL_URL, else " DEFAULT_URL ")", &url, NULL },
		{ "cacert", "FILE", CACERT_HELP, &cacert, NULL },
		{ "token", "TOKEN", "bearer token (default $KANAL_TOKEN)",
		  &token, NULL },
		{ "service", "CODE", "service code, e.g. dukcapil.akta-lahir",
		  &service, NULL },
		{ "channel", "NAME", "web, mobile_app, kiosk, chat, partner, "
		  "counter, phone, outreach or paper", &channel, NULL },
		{ "region", "CODE", "Kemendagri code, e.g. 32.73.01", &region,
		  NULL },
		{ "outcome", "NAME", "completed (default), abandoned, failed "
		  "or unknown", &outcome, NULL },
		{ "count", "N", "how many such events (default 1)", &count_s,
		  NULL },
		{ "duration-ms", "MS", "duration of each (default 0: not "
		  "measured)", &dur_s, NULL },
		{ "assisted", NULL, "done with help from staff or a volunteer",
		  NULL, &assisted },
		{ "at", "UNIX_MS", "when they happened (default now)", &at_s,
		  NULL },
		{ "batch-id", "ID", "batch id (default: random); reuse it to "
		  "retry", &batch_id, NULL },
		{ "csv", "FILE|-", "send the rows of a CSV file (- : standard "
		  "input); see above", &csv, NULL },
		{ "jsonl", "FILE|-", "send a file of ServiceEvents in JSON, one "
		  "a line", &jsonl, NULL },
		{ "batch-size", "N", "events per batch with --csv/--jsonl "
		  "(default 500; at most kanald's max-batch-events, 10000 by "
		  "default)", &bsize_s, NULL },
		{ "batch-prefix", "P", "batch ids P-1, P-2, ... (default: a "
		  "hash of each batch's input and its number); one P per "
		  "file: ids sent before count nothing", &prefix, NULL },
		{ "retries", "N", "tries again per batch after the first "
		  "(default 8)", &retries_s, NULL },
		{ "retry-for", "SECONDS", "no new try of a batch after this "
		  "long (default 300)", &retry_for_s, NULL },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanalctl send --service CODE --channel NAME "
	    "--region CODE [--outcome NAME] [--count N] ...\n"
	    "       kanalctl send --csv FILE|- [--batch-size N] ...\n"
	    "       kanalctl send --jsonl FILE|- [--batch-size N] ...";
	long long count, dur, at;
	int ch, oc, r, rc;
	char bid[33], err[256];
	Kanal__V1__EventBatch batch = KANAL__V1__EVENT_BATCH__INIT;
	Kanal__V1__ServiceEvent *evs = NULL, **evp = NULL;
	struct httpc *c;
	struct client_result res;

	r = opts_parse("kanalctl", argc, argv, o, syn, SEND_ABOUT);
	if (r != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	if (csv != NULL || jsonl != NULL)
		return send_file(csv, jsonl, url, cacert, token, bsize_s,
		    prefix, retries_s, retry_for_s, service != NULL ||
		    channel != NULL || region != NULL || batch_id != NULL ||
		    at_s != NULL);
	if (service == NULL || channel == NULL || region == NULL) {
		fprintf(stderr, "kanalctl send: --service, --channel and "
		    "--region are required\n");
		return EXIT_USAGE;
	}
	if (token == NULL || token[0] == '\0') {
		fprintf(stderr, "kanalctl send: no token: give --token or set "
		    "KANAL_TOKEN\n");
		return EXIT_USAGE;
	}
	ch = client_channel_parse(channel);
	oc = client_outcome_parse(outcome);
	if (ch == -1 || oc == -1) {
		fprintf(stderr, "kanalctl send: unknown %s \"%s\"; see "
		    "--help\n", ch == -1 ? "channel" : "outcome",
		    ch == -1 ? channel : outcome);
		return EXIT_USAGE;
	}
	if (opts_number(count_s, 1, 1000000, &count) == -1 ||
	    opts_number(dur_s, 0, UINT32_MAX, &dur) == -1 ||
	    (at_s != NULL && opts_number(at_s, 0, LLONG_MAX, &at) == -1)) {
		fprintf(stderr, "kanalctl send: --count is 1..1000000, "
		    "--duration-ms and --at are whole numbers\n");
		return EXIT_USAGE;
	}
	if (at_s == NULL)
		at = client_now_ms();
	if (batch_id == NULL) {
		if (client_random_hex(bid, 16) == -1) {
			fprintf(stderr, "kanalctl send: no randomness\n");
			return 1;
		}
		batch_id = bid;
	}
	c = httpc_new_ca(url != NULL ? url : DEFAULT_URL, cacert, 30000, err,
	    sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "kanalctl send: %s\n", err);
		return EXIT_USAGE;
	}
	evs = calloc((size_t)count, sizeof(*evs));
	evp = calloc((size_t)count, sizeof(*evp));
	if (evs == NULL || evp == NULL) {
		fprintf(stderr, "kanalctl send: out of memory\n");
		rc = 1;
		goto out;
	}
	for (long long i = 0; i < count; i++) {
		kanal__v1__service_event__init(&evs[i]);
		evs[i].service_code = (char *)service;
		evs[i].channel = (Kanal__V1__Channel)ch;
		evs[i].region_code = (char *)region;
		evs[i].outcome = (Kanal__V1__Outcome)oc;
		evs[i].occurred_at_ms = at;
		evs[i].duration_ms = (uint32_t)dur;
		evs[i].assisted = assisted;
		evp[i] = &evs[i];
	}
	batch.batch_id = (char *)batch_id;
	batch.n_events = (size_t)count;
	batch.events = evp;
	if (client_send(c, token, &batch, 3, &res) == -1) {
		fprintf(stderr, "kanalctl send: %s\n", res.error);
		rc = 1;
		goto out;
	}
	client_print_result(res.status == 200 ? stdout : stderr, &res);
	rc = res.status != 200 || res.ack == NULL ? 1 :
	    res.ack->rejected > 0 ? EXIT_REJECTED : 0;
	client_result_clear(&res);
out:
	free(evs);
	free(evp);
	httpc_free(c);
	return rc;
}

/* ---------------------------------------------------------------- demo */

static int
cmd_demo(int argc, char **argv)
{
	const char *url = getenv("KANAL_URL"), *token = getenv("KANAL_TOKEN");
	const char *cacert = getenv("KANAL_CACERT");
	const char *pg = "", *days_s = "7", *rate_s = "20000";
	const char *per_day_s = "20000", *seed_s = "1";
	const struct opt o[] = {
		{ "url", "URL", "kanald's address, http:// or https:// "
		  "(default $KANAL_URL, else " DEFAULT_URL ")", &url, NULL },
		{ "cacert", "FILE", CACERT_HELP, &cacert, NULL },
		{ "token", "TOKEN", "bearer token allowed every catalogue "
		  "service (default $KANAL_TOKEN)", &token, NULL },
		{ "pg", "CONNINFO", "database to read the service catalogue "
		  "and kecamatan from (default: PG* environment)", &pg, NULL },
		{ "days", "N", "spread events over the last N days (default 7; "
		  "kanald accepts 7 days back unless event-max-age is raised)",
		  &days_s, NULL },
		{ "per-day", "N", "events on an average weekday (default "
		  "20000)", &per_day_s, NULL },
		{ "rate", "N", "at most N events a second (default 20000)",
		  &rate_s, NULL },
		{ "seed", "N", "random seed: the same seed makes the same "
		  "traffic (default 1)", &seed_s, NULL },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const char *syn = "kanalctl demo --days N [--rate N] [--per-day N] "
	    "[--url URL] [--cacert FILE] [--token TOKEN] [--pg CONNINFO]";
	struct demo_config dc;
	long long v;
	int r;

	r = opts_parse("kanalctl", argc, argv, o, syn, "Sends realistic Kota Bandung "
	    "traffic for the last N days: the catalogue's services, all\n"
	    "channels, the 30 kecamatan weighted by population, weekday office "
	    "hours for\nmanual channels, about 40% digital take-up.");
	if (r != 0)
		return r > 0 ? 0 : EXIT_USAGE;
	memset(&dc, 0, sizeof(dc));
	if (token == NULL || token[0] == '\0') {
		fprintf(stderr, "kanalctl demo: no token: give --token or set "
		    "KANAL_TOKEN\n");
		return EXIT_USAGE;
	}
	if (opts_number(days_s, 1, 366, &v) == -1) {
		fprintf(stderr, "kanalctl demo: --days is 1..366\n");
		return EXIT_USAGE;
	}
	dc.days = (int)v;
	if (opts_number(per_day_s, 1, 100000000, &v) == -1) {
		fprintf(stderr, "kanalctl demo: --per-day is 1..100000000\n");
		return EXIT_USAGE;
	}
	dc.per_day = (uint64_t)v;
	if (opts_number(rate_s, 1, 100000000, &v) == -1) {
		fprintf(stderr, "kanalctl demo: --rate is 1..100000000\n");
		return EXIT_USAGE;
	}
	dc.rate = (uint64_t)v;
	if (opts_number(seed_s, 0, LLONG_MAX, &v) == -1) {
		fprintf(stderr, "kanalctl demo: --seed is a whole number\n");
		return EXIT_USAGE;
	}
	dc.seed = (uint64_t)v;
	dc.url = url != NULL ? url : DEFAULT_URL;
	dc.cacert = cacert;
	dc.token = token;
	dc.pg = pg;
	if (dc.days > 7)
		fprintf(stderr, "kanalctl demo: note: events older than 7 days "
		    "are rejected unless kanald runs with a larger "
		    "--event-max-age\n");
	return demo_run(&dc, stderr) == 0 ? 0 : 1;
}

/* ----------------------------------------------------------------- wal */

/*
 * Takes the one DIR argument out of argv (argv[0] is the subcommand) and
 * leaves the options, stepping over the values of o's, to opts_parse; so
 * options may come before or after DIR. 0 (*dir NULL when there is none),
 * or -1 (printed) when there are two.
 */
static int
wal_take_dir(int *argc, char **argv, const struct opt *o, const char **dir)
{
	int n = 1;

	*dir = NULL;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		const struct opt *m;

		if (a[0] == '-' && a[1] != '\0') {
			argv[n++] = argv[i];
			for (m = o; m->name != NULL; m++)
				if (strcmp(a + 2, m->name) == 0)
					break;
			if (m->name != NULL && m->arg != NULL && i + 1 < *argc)
				argv[n++] = argv[++i];
			continue;
		}
		if (*dir != NULL) {
			fprintf(stderr, "kanalctl wal %s: one DIR only (%s, "
			    "%s)\n", argv[0], *dir, a);
			return -1;
		}
		*dir = a;
	}
	*argc = n;
	return 0;
}

static int
cmd_wal(int argc, char **argv)
{
	const char *syn_check = "kanalctl wal check [--repair] DIR";
	const char *syn_dump = "kanalctl wal dump [--from POSITION] [--events] "
	    "DIR";
	const char *syn_adopt = "kanalctl wal adopt --wal-dir DIR "
	    "--collector-id ID [--pg CONNINFO] [--deadline SECONDS]";
	const char *dir = NULL, *from_s = NULL;
	const char *a_dir = NULL, *a_id = NULL, *a_pg = NULL, *a_deadline = NULL;
	const struct opt oa[] = {
		{ "wal-dir", "DIR", "the dead instance's write-ahead log (its "
		  "--wal-dir, copied or mounted here)", &a_dir, NULL },
		{ "collector-id", "ID", "the dead instance's --collector-id",
		  &a_id, NULL },
		{ "pg", "CONNINFO", "the database it wrote to (default: the PG* "
		  "environment)", &a_pg, NULL },
		{ "deadline", "SECONDS", "give up when PostgreSQL fails for this "
		  "long (default 300)", &a_deadline, NULL },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	int repair = 0, events = 0, r;
	long long from = 0;
	const struct opt oc[] = {
		{ "repair", NULL, "move damage into quarantine files (kanald "
		  "stopped)", NULL, &repair },
		{ NULL, NULL, NULL, NULL, NULL },
	};
	const struct opt od[] = {
		{ "from", "POSITION", "only records starting at or after "
		  "POSITION", &from_s, NULL },
		{ "events", NULL, "one indented line per event of each batch",
		  NULL, &events },
		{ NULL, NULL, NULL, NULL, NULL },
	};

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		fprintf(argc < 2 ? stderr : stdout, "usage: %s\n       %s\n"
		    "       %s\n\n"
		    "Reads kanald's write-ahead log in DIR (its --wal-dir) by "
		    "the rules kanald\napplies at start-up (see "
		    "docs/wal.md); adopt counts it into PostgreSQL.\n\n"
		    "  check   check every segment and record; --repair moves "
		    "damage aside\n"
		    "  dump    print the records, and with --events their "
		    "events, as text\n"
		    "  adopt   count a dead instance's uncounted records, once, "
		    "and retire it\n\n"
		    "kanalctl wal check --help, kanalctl wal dump --help and "
		    "kanalctl wal adopt --help\ndescribe each.\n", syn_check,
		    syn_dump, syn_adopt);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (strcmp(argv[1], "check") == 0) {
		argc--;
		argv++;
		if (wal_take_dir(&argc, argv, oc, &dir) == -1)
			return EXIT_USAGE;
		r = opts_parse("kanalctl", argc, argv, oc, syn_check, "Reads every "
		    "segment and record in DIR as kanald does at start-up, "
		    "and\ndecodes every batch. "
		    "Prints a summary and, at damage, the segment, the "
		    "offset,\nthe position and whether it is a torn tail "
		    "(kanald cuts it off itself) or\ndamage kanald will not "
		    "start on (exit status 3). Changes nothing "
		    "without\n--repair.\n\n--repair, only while kanald is "
		    "stopped, copies the damaged bytes up to the end\nof their "
		    "segment into SEGMENT.quarantine-<unix time> beside it and "
		    "cuts the\nsegment there (a segment whose header is "
		    "damaged is renamed so, whole), and\nrenames the segments "
		    "after it the same way: they can no longer follow on. "
		    "It\ndeletes nothing, and prints what it moved and what "
		    "that takes out of the log.\nRecords that pass their CRC "
		    "but do not decode are reported, not moved.\n\nExit 0: "
		    "clean (after the repair); 1: damage, a torn tail, records "
		    "that do not\ndecode, or the repair was refused or failed; "
		    "2: usage.");
		if (r != 0)
			return r > 0 ? 0 : EXIT_USAGE;
		if (dir == NULL) {
			fprintf(stderr, "usage: %s (see --help)\n", syn_check);
			return EXIT_USAGE;
		}
		return walctl_check(dir, repair, stdout, stderr);
	}
	if (strcmp(argv[1], "dump") == 0) {
		argc--;
		argv++;
		if (wal_take_dir(&argc, argv, od, &dir) == -1)
			return EXIT_USAGE;
		r = opts_parse("kanalctl", argc, argv, od, syn_dump, "Prints one line "
		    "per record of the write-ahead log in DIR: start and "
		    "end\nposition, type, "
		    "payload length and, for a batch, when kanald received "
		    "it\n(UTC), the source, the batch_id and the accepted and "
		    "rejected counts. --events\nadds a line per event: when it "
		    "happened (UTC), service, channel, region,\noutcome, "
		    "assisted and duration_ms. Only what the record holds is "
		    "printed.\nRead-only; safe while kanald runs. Exit 0; 1: "
		    "it stopped at damage (see\nkanalctl wal check) or a "
		    "record did not decode; 2: usage.");
		if (r != 0)
			return r > 0 ? 0 : EXIT_USAGE;
		if (dir == NULL) {
			fprintf(stderr, "usage: %s (see --help)\n", syn_dump);
			return EXIT_USAGE;
		}
		if (from_s != NULL && opts_number(from_s, 0, LLONG_MAX, &from)
		    == -1) {
			fprintf(stderr, "kanalctl wal dump: --from is a "
			    "position, a whole number\n");
			return EXIT_USAGE;
		}
		return walctl_dump(dir, (uint64_t)from, events, stdout,
		    stderr);
	}
	if (strcmp(argv[1], "adopt") == 0) {
		long long deadline = 300;
		struct adopt_config ac;

		r = opts_parse("kanalctl", argc - 1, argv + 1, oa, syn_adopt,
		    "For an instance that will never come back (a dead VM): "
		    "counts, exactly once,\nwhat its write-ahead log holds "
		    "after its checkpoint in PostgreSQL, as that\ncollector, "
		    "through the fleet's batch ledger (a batch that another "
		    "instance\ncounted after a retry is not counted again), "
		    "then marks the collector retired:\nkanald refuses to run "
		    "under that collector-id again. Commits every 20,000\n"
		    "batches; stopped half way, running it again goes on from "
		    "there.\n\nRefuses while the collector is alive: a "
		    "kanald holds its lease in PostgreSQL\n(an advisory lock, "
		    "for as long as its session lives) or the WAL "
		    "directory's\nlock. See docs/fleet.md.\n\nExit 0: "
		    "adopted; 1: failure (what was committed stays counted; "
		    "run again);\n2: usage; 4: the collector is alive or "
		    "already retired.");
		if (r != 0)
			return r > 0 ? 0 : EXIT_USAGE;
		if (a_dir == NULL || a_id == NULL) {
			fprintf(stderr, "usage: %s (see --help)\n", syn_adopt);
			return EXIT_USAGE;
		}
		if (a_deadline != NULL && opts_number(a_deadline, 1, 86400,
		    &deadline) == -1) {
			fprintf(stderr, "kanalctl wal adopt: --deadline is "
			    "seconds, 1 to 86400\n");
			return EXIT_USAGE;
		}
		ac.wal_dir = a_dir;
		ac.collector_id = a_id;
		ac.pg = a_pg != NULL ? a_pg : "";
		ac.deadline_s = (unsigned)deadline;
		return adopt_run(&ac, stdout, stderr);
	}
	fprintf(stderr, "kanalctl wal: unknown command \"%s\"; see kanalctl "
	    "wal --help\n", argv[1]);
	return EXIT_USAGE;
}

/* ---------------------------------------------------------------- main */

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: kanalctl COMMAND [OPTIONS]\n"
	    "\n"
	    "  migrate     bring a database up to kanal's schema\n"
	    "  token new   make a source token and its sources-file line\n"
	    "  send        send events built from flags to kanald\n"
	    "  demo        send realistic Kota Bandung traffic to kanald\n"
	    "  wal         check, repair or dump kanald's write-ahead log\n"
	    "  report      a month's indicators as a table and an HTML page\n"
	    "  retention   make hourly partitions ahead, drop old hourly months\n"
	    "  reach       make or check the city's reach key (distinct residents)\n"
	    "  version     print the version\n"
	    "\n"
	    "kanalctl COMMAND --help describes each.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 ||
	    strcmp(argv[1], "--version") == 0) {
		printf("kanalctl %s\n", KANAL_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(argv[1], "token") == 0)
		return cmd_token(argc - 1, argv + 1);
	if (strcmp(argv[1], "send") == 0)
		return cmd_send(argc - 1, argv + 1);
	if (strcmp(argv[1], "demo") == 0)
		return cmd_demo(argc - 1, argv + 1);
	if (strcmp(argv[1], "wal") == 0)
		return cmd_wal(argc - 1, argv + 1);
	if (strcmp(argv[1], "report") == 0)
		return report_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "retention") == 0)
		return retention_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "reach") == 0)
		return cmd_reach(argc - 1, argv + 1);
	fprintf(stderr, "kanalctl: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
