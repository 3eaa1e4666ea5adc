/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kanald: wires the modules together and owns the event loop.
 *
 * Threads: the event-loop thread runs HTTP and ingest; the WAL writer
 * thread syncs batches and applies them to agg (wal.h); the flush thread
 * writes rollups to PostgreSQL and, once it first reaches the database,
 * replays the WAL after the stored checkpoint (flush.h). SIGTERM and SIGINT
 * stop intake, answer the requests under way, flush what is held and exit
 * (what could not be written stays in the WAL for the next start); SIGHUP
 * reloads the sources file, the log level from the config file and the
 * TLS certificate and key (from the same paths).
 *
 * Exit status: 0 stopped cleanly; 1 bad configuration or start-up
 * failure; 3 the write-ahead log is damaged or does not match the
 * database; 4 another live kanald holds this collector_id's lease, or the
 * collector was retired (a person must look: systemd restarts on neither).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "agg.h"
#include "clock.h"
#include "config.h"
#include "dedup.h"
#include "flush.h"
#include "fsutil.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reach.h"
#include "sources.h"
#include "tls.h"
#include "wal.h"
#include "watchdog.h"

#define EXIT_WAL 3
#define DRAIN_POLL_MS 10

struct kanald {
	struct config cfg;
	struct event_base *base;
	struct agg *agg;
	struct ingest *ingest;
	struct flush *flush;
	struct httpd *httpd;
	struct wal *wal;
	struct dedup *dedup;
	struct watchdog *watchdog;
	struct tls *tls;		/* NULL: plain HTTP */
	struct reach_key reach;
	int reach_on;		/* reach-key-file set and loaded */
	struct event *drain;
	int log_level_flag;	/* --log-level given: it wins over reloads */
	uint64_t drain_left_ms;
	int64_t started_ms;		/* for process_start_time_seconds */
};

/*
 * The reach key, checked: its problems are "FILE: what, what to do" on
 * stderr (before the log is set up, and for -n). 0, or -1.
 */
static int
load_reach_key(struct kanald *k)
{
	char err[512];

	if (reach_key_load(k->cfg.reach_key_file, &k->reach, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", k->cfg.reach_key_file, err);
		return -1;
	}
	k->reach_on = 1;
	return 0;
}

/* Start-up: the batch-id memory learns the WAL's batches. */
static void
remember_batch(void *arg, const struct wal_record *rec)
{
	dedup_add_record(arg, rec);
}

/* Flush thread: first contact with the database. */
static int
on_checkpoint(void *arg, uint64_t checkpoint, char *err, size_t errlen)
{
	struct kanald *k = arg;

	return wal_go_live(k->wal, checkpoint, err, errlen);
}

static int
persist_batch(void *arg, const struct wal_record *rec)
{
	struct kanald *k = arg;

	return dedup_persist_record(k->dedup, rec, clock_wall_ms());
}

/* Flush thread: counts up to checkpoint are in PostgreSQL. */
static void
on_committed(void *arg, uint64_t checkpoint)
{
	struct kanald *k = arg;

	dedup_persist_reset(k->dedup);
	wal_remove_before(k->wal, checkpoint, persist_batch, k);
}

/*
 * After a write met a full disk (ENOSPC, EDQUOT), the disk counts as full
 * until its file system has this much room again: enough for the next
 * group commits and a segment header, and far from the last block.
 */
#define FREE_TO_RESUME (4LL << 20)

static int
ready(void *arg, char *why, size_t len)
{
	struct kanald *k = arg;
	struct flush_stats st;
	struct wal_stats ws;
	struct dedup_stats ds;

	wal_get_stats(k->wal, &ws);
	if (ws.failed) {
		snprintf(why, len, "the write-ahead log cannot be written "
		    "(see the log)");
		return 0;
	}
	dedup_get_stats(k->dedup, &ds);
	if (ws.no_space || ds.no_space) {
		long long room = fs_free_bytes(k->cfg.wal_dir);

		/* Room unknown (statvfs failed): the next write will tell. */
		if (room >= 0 && room < FREE_TO_RESUME) {
			snprintf(why, len, "the disk of the write-ahead log is "
			    "full (%s failed; %lld bytes free): batches are "
			    "answered 503 until it has room again",
			    ws.no_space ? "a WAL write" : "a write of "
			    "batches.idx", room);
			return 0;
		}
	}
	if (ws.full) {
		snprintf(why, len, "the write-ahead log is full (%llu bytes): "
		    "PostgreSQL is behind or unreachable",
		    (unsigned long long)ws.bytes);
		return 0;
	}
	flush_get_stats(k->flush, &st);
	if (!st.db_reached) {
		snprintf(why, len, "PostgreSQL has not been reached yet");
		return 0;
	}
	return 1;
}

/* GET /metrics, on the loop thread: a copy of each module's counters. */
static int
render_metrics(void *arg, struct evbuffer *out)
{
	struct kanald *k = arg;
	struct metrics_snapshot s = {
		.version = KANAL_VERSION,
		.start_time_ms = k->started_ms,
		.inflight = ingest_inflight(k->ingest),
		.reach_on = k->reach_on,
	};

	ingest_get_stats(k->ingest, &s.ingest);
	wal_get_stats(k->wal, &s.wal);
	flush_get_stats(k->flush, &s.flush);
	agg_get_stats(k->agg, &s.agg);
	dedup_get_stats(k->dedup, &s.dedup);
	httpd_get_stats(k->httpd, &s.http);
	return metrics_render(&s, out);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct kanald *k = arg;

	(void)what;
	log_notice("stopping: signal=%d keys_held=%zu", (int)sig,
	    agg_keys(k->agg));
	notify_send("STOPPING=1\nSTATUS=stopping: writing held counts");
	httpd_close_listener(k->httpd);
	k->drain_left_ms = k->cfg.shutdown_timeout_ms;
	event_active(k->drain, 0, 0);
}

/* After a stop signal: wait for the requests that wait for the WAL. */
static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct kanald *k = arg;
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (ingest_inflight(k->ingest) == 0 || k->drain_left_ms == 0) {
		event_base_loopexit(k->base, NULL);
		return;
	}
	k->drain_left_ms = k->drain_left_ms > DRAIN_POLL_MS ?
	    k->drain_left_ms - DRAIN_POLL_MS : 0;
	evtimer_add(k->drain, &tv);
}

/*
 * SIGHUP: the certificate and key are read again from the same paths (a
 * renewed certificate replaces the files); new connections get the new
 * pair, open ones keep theirs. A pair that does not load keeps the old.
 */
static void
reload_tls(struct kanald *k)
{
	char err[1536];

	if (k->tls == NULL)
		return;
	if (tls_reload(k->tls, k->cfg.tls_cert, k->cfg.tls_key, err,
	    sizeof(err)) == -1)
		log_warnx("reload: TLS certificate not reloaded, keeping the "
		    "old one: %s", err);
	else
		log_notice("reloaded TLS certificate: cert=%s", k->cfg.tls_cert);
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct kanald *k = arg;
	struct config fresh;
	struct sources *s;
	char *problems = NULL;
	size_t plen = 0;
	FILE *errs;
	int lvl, bad = 0;

	(void)sig;
	(void)what;
	notify_send("RELOADING=1");
	/*
	 * Problems are gathered and logged line by line, so that under
	 * journald they carry a priority like every other line.
	 */
	errs = open_memstream(&problems, &plen);
	if (errs == NULL)
		errs = stderr;
	/* Only the sources file and the log level can change at run time. */
	config_defaults(&fresh);
	if (k->cfg.config_file[0] != '\0') {
		if (config_read_file(&fresh, k->cfg.config_file, errs) != 0)
			bad = 1;
		else if (!k->log_level_flag) {
			lvl = log_level_parse(fresh.log_level);
			if (lvl != -1)
				log_set_level((enum log_level)lvl);
		}
	}
	s = sources_load(k->cfg.sources, errs);
	if (errs != stderr) {
		fclose(errs);
		for (char *line = problems, *nl; line != NULL && *line != '\0';
		    line = nl + 1) {
			nl = strchr(line, '\n');
			if (nl == NULL)
				nl = line + strlen(line) - 1;
			else
				*nl = '\0';
			log_warnx("%s", line);
		}
		free(problems);
	}
	if (bad)
		log_warnx("reload: the config file has problems (above); "
		    "log level unchanged: file=%s", k->cfg.config_file);
	if (s == NULL) {
		reload_tls(k);
		log_warnx("reload failed, keeping the old sources: file=%s",
		    k->cfg.sources);
		notify_send("READY=1\nSTATUS=serving; last reload failed, "
		    "old sources kept");
		return;
	}
	reload_tls(k);
	log_notice("reloaded: sources=%zu file=%s", sources_count(s),
	    k->cfg.sources);
	ingest_set_sources(k->ingest, s);
	notify_send("READY=1\nSTATUS=serving on %s", k->cfg.listen);
}

int
main(int argc, char **argv)
{
	struct kanald k;
	struct sources *sources;
	struct event *ev_term, *ev_int, *ev_hup;

	memset(&k, 0, sizeof(k));
	k.started_ms = clock_wall_ms();
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--log-level", 11) == 0)
			k.log_level_flag = 1;
	switch (config_from_argv(&k.cfg, argc, argv, stdout, stderr)) {
	case CONFIG_HELP:
	case CONFIG_VERSION:
		return 0;
	case CONFIG_INVALID:
		fprintf(stderr, "kanald: configuration has problems; see "
		    "above\n");
		return 1;
	case CONFIG_CHECK:
		sources = sources_load(k.cfg.sources, stderr);
		if (k.cfg.tls_cert[0] != '\0') {
			char err[1536];

			k.tls = tls_new(k.cfg.tls_cert, k.cfg.tls_key, err,
			    sizeof(err));
			if (k.tls == NULL)
				fprintf(stderr, "%s: %s\n", k.cfg.tls_set_at, err);
			tls_free(k.tls);
		}
		if (k.cfg.reach_key_file[0] != '\0' && load_reach_key(&k) == -1)
			k.reach_on = -1;
		if (sources == NULL || (k.cfg.tls_cert[0] != '\0' &&
		    k.tls == NULL) || k.reach_on == -1)
			return 1;
		sources_free(sources);
		printf("configuration OK\n");
		return 0;
	case CONFIG_RUN:
		break;
	}
	log_init("kanald", (enum log_level)log_level_parse(k.cfg.log_level));
	notify_init();
	sources = sources_load(k.cfg.sources, stderr);
	if (sources == NULL)
		fatalx("cannot start: the sources file has problems (above)");
	if (sources_count(sources) == 0)
		log_warnx("the sources file lists no source: every batch will "
		    "get 401: file=%s", k.cfg.sources);
	signal(SIGPIPE, SIG_IGN);
	if (k.cfg.tls_cert[0] != '\0') {
		char err[1536];

		k.tls = tls_new(k.cfg.tls_cert, k.cfg.tls_key, err, sizeof(err));
		if (k.tls == NULL)
			fatalx("cannot start: %s", err);
	}
	if (k.cfg.reach_key_file[0] != '\0' && load_reach_key(&k) == -1)
		fatalx("cannot start: the reach key is unusable (above)");
	if (k.reach_on)
		log_notice("reach on: citizen_refs are counted as distinct "
		    "residents, keyed: key_id=%lld file=%s",
		    (long long)k.reach.id, k.cfg.reach_key_file);
	else
		log_notice("reach off: reach-key-file is not set; citizen_refs "
		    "are checked and dropped, no residents are counted");
	if (k.cfg.rate_limit != 0 && (k.cfg.rate_limit_burst != 0 ?
	    k.cfg.rate_limit_burst : k.cfg.rate_limit) < k.cfg.max_batch_events)
		log_notice("rate-limit-burst is below max-batch-events: larger "
		    "batches get 413: burst=%llu max_batch_events=%llu",
		    (unsigned long long)(k.cfg.rate_limit_burst != 0 ?
		    k.cfg.rate_limit_burst : k.cfg.rate_limit),
		    (unsigned long long)k.cfg.max_batch_events);

	{
		struct wal_config wc = {
			.dir = k.cfg.wal_dir,
			.collector_id = k.cfg.collector_id,
			.segment_size = k.cfg.wal_segment_size,
			.max_size = k.cfg.wal_max_size,
		};
		char err[1024];

		k.wal = wal_open(&wc, err, sizeof(err));
		if (k.wal == NULL) {
			log_errx("cannot start: %s", err);
			return EXIT_WAL;
		}
		k.dedup = dedup_new(k.cfg.wal_dir, k.cfg.dedup_window_ms,
		    (size_t)k.cfg.dedup_max_batches);
		if (k.dedup == NULL)
			fatalx("out of memory at start-up");
		if (dedup_load(k.dedup, clock_wall_ms()) == -1)
			log_warn("cannot read the batch index; retries of "
			    "batches older than the WAL may be counted again");
		if (wal_scan(k.wal, 0, remember_batch, k.dedup, err,
		    sizeof(err)) == -1) {
			log_errx("cannot start: %s", err);
			return EXIT_WAL;
		}
	}

	if (evthread_use_pthreads() == -1)
		fatalx("libevent has no pthreads support");
	k.base = event_base_new();
	k.agg = agg_new();
	if (k.base == NULL || k.agg == NULL)
		fatalx("out of memory at start-up");
	{
		struct ingest_config ic = {
			.limits = {
				.max_age_ms = (int64_t)k.cfg.event_max_age_ms,
				.max_ahead_ms = (int64_t)k.cfg.event_max_ahead_ms,
			},
			.max_batch_events = k.cfg.max_batch_events,
			.max_body_size = k.cfg.max_body_size,
			.wal = k.wal,
			.dedup = k.dedup,
			.rate_limit = k.cfg.rate_limit,
			.rate_limit_burst = k.cfg.rate_limit_burst,
			.reach = k.reach_on ? &k.reach : NULL,
		};
		k.ingest = ingest_new(k.agg, &ic);
		if (k.ingest == NULL)
			fatalx("out of memory at start-up");
		ingest_set_sources(k.ingest, sources);
	}
	{
		struct flush_config fc = {
			.conninfo = k.cfg.pg,
			.collector_id = k.cfg.collector_id,
			.interval_ms = k.cfg.flush_interval_ms,
			.max_backoff_ms = 30000,
			.wal_dir = k.cfg.wal_dir,
			.ledger_epoch_ms = k.cfg.dedup_window_ms / 3,
			.lease_grace_ms = k.cfg.lease_grace_ms,
			.event_max_age_ms = k.cfg.event_max_age_ms,
			.hourly_days = k.cfg.retention_hourly_days,
			.reach_on = k.reach_on,
			.reach_key_id = k.reach.id,
			.on_checkpoint = on_checkpoint,
			.on_committed = on_committed,
			.arg = &k,
		};
		k.flush = flush_new(k.agg, &fc);
		if (k.flush == NULL)
			fatalx("out of memory at start-up");
	}
	{
		struct httpd_config hc = {
			.listen = k.cfg.listen,
			.max_body_size = k.cfg.max_body_size,
			.max_header_size = k.cfg.max_header_size,
			.timeout_ms = k.cfg.timeout_ms,
			.ready = ready,
			.ready_arg = &k,
			.metrics = render_metrics,
			.metrics_arg = &k,
			.tls = k.tls,
			.max_connections = k.cfg.max_connections,
		};
		k.httpd = httpd_new(k.base, &hc, k.ingest);
		if (k.httpd == NULL)
			fatalx("cannot start: cannot serve on %s", k.cfg.listen);
	}
	if (wal_start(k.wal, k.base, ingest_apply, k.ingest) == -1)
		fatal("cannot start the WAL writer");
	if (flush_start(k.flush) == -1)
		fatal("cannot start the flush thread");
	k.drain = evtimer_new(k.base, on_drain, &k);
	if (k.drain == NULL)
		fatalx("out of memory at start-up");

	ev_term = evsignal_new(k.base, SIGTERM, on_stop, &k);
	ev_int = evsignal_new(k.base, SIGINT, on_stop, &k);
	ev_hup = evsignal_new(k.base, SIGHUP, on_reload, &k);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL ||
	    evsignal_add(ev_term, NULL) == -1 ||
	    evsignal_add(ev_int, NULL) == -1 ||
	    evsignal_add(ev_hup, NULL) == -1)
		fatalx("cannot install signal handlers");
	log_notice("kanald %s started: listen=%s collector_id=%s "
	    "flush_interval_ms=%llu tls=%s rate_limit=%llu", KANAL_VERSION,
	    k.cfg.listen, k.cfg.collector_id,
	    (unsigned long long)k.cfg.flush_interval_ms,
	    k.tls != NULL ? "on" : "off",
	    (unsigned long long)k.cfg.rate_limit);

	notify_send("READY=1\nSTATUS=serving on %s", k.cfg.listen);
	{
		/* WATCHDOG=1 while the loop and the WAL writer progress. */
		struct watchdog_config wdc = {
			.listen = k.cfg.listen,
			.wal = k.wal,
			.ingest = k.ingest,
			.flush = k.flush,
		};

		k.watchdog = watchdog_new(k.base, &wdc);
		if (k.watchdog == NULL)
			fatalx("out of memory at start-up");
	}

	event_base_dispatch(k.base);

	/* Write what was appended; answer it (the done callbacks run here). */
	wal_stop(k.wal);
	event_base_loop(k.base, EVLOOP_NONBLOCK);
	if (flush_stop(k.flush, k.cfg.shutdown_timeout_ms) == -1)
		log_notice("stopped: what PostgreSQL did not take is in the "
		    "write-ahead log and is counted after the next start");
	else
		log_notice("stopped: everything held was written");

	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	event_free(k.drain);
	watchdog_free(k.watchdog);
	flush_free(k.flush);
	wal_close(k.wal);
	httpd_free(k.httpd);
	tls_free(k.tls);
	ingest_free(k.ingest);
	agg_free(k.agg);
	dedup_free(k.dedup);
	event_base_free(k.base);
	return 0;
}
