/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kanald: wires the modules together and owns the event loop.
 *
 * Threads: the event-loop thread runs HTTP and ingest; the flush thread
 * writes rollups to PostgreSQL (flush.h). SIGTERM and SIGINT stop intake,
 * flush what is held and exit; SIGHUP reloads the sources file and the log
 * level from the config file.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "agg.h"
#include "config.h"
#include "flush.h"
#include "httpd.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "sources.h"

struct kanald {
	struct config cfg;
	struct event_base *base;
	struct agg *agg;
	struct ingest *ingest;
	struct flush *flush;
	struct httpd *httpd;
};

static int
ready(void *arg, char *why, size_t len)
{
	struct kanald *k = arg;
	struct flush_stats st;

	flush_get_stats(k->flush, &st);
	if (!st.db_reached) {
		snprintf(why, len, "PostgreSQL has not been reached yet");
		return 0;
	}
	return 1;
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
	event_base_loopexit(k->base, NULL);
}

static void
on_reload(evutil_socket_t sig, short what, void *arg)
{
	struct kanald *k = arg;
	struct config fresh;
	struct sources *s;
	int lvl;

	(void)sig;
	(void)what;
	notify_send("RELOADING=1");
	/* Only the sources file and the log level can change at run time. */
	config_defaults(&fresh);
	if (k->cfg.config_file[0] != '\0' &&
	    config_read_file(&fresh, k->cfg.config_file, stderr) == 0) {
		lvl = log_level_parse(fresh.log_level);
		if (lvl != -1)
			log_set_level((enum log_level)lvl);
	}
	s = sources_load(k->cfg.sources, stderr);
	if (s == NULL) {
		log_warnx("reload failed, keeping the old sources: file=%s",
		    k->cfg.sources);
		notify_send("READY=1\nSTATUS=serving; last reload failed, "
		    "old sources kept");
		return;
	}
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
	int rc = 0;

	memset(&k, 0, sizeof(k));
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
		if (sources == NULL)
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
		};
		k.httpd = httpd_new(k.base, &hc, k.ingest);
		if (k.httpd == NULL)
			fatalx("cannot start: cannot serve on %s", k.cfg.listen);
	}
	if (flush_start(k.flush) == -1)
		fatal("cannot start the flush thread");

	ev_term = evsignal_new(k.base, SIGTERM, on_stop, &k);
	ev_int = evsignal_new(k.base, SIGINT, on_stop, &k);
	ev_hup = evsignal_new(k.base, SIGHUP, on_reload, &k);
	if (ev_term == NULL || ev_int == NULL || ev_hup == NULL ||
	    evsignal_add(ev_term, NULL) == -1 ||
	    evsignal_add(ev_int, NULL) == -1 ||
	    evsignal_add(ev_hup, NULL) == -1)
		fatalx("cannot install signal handlers");
	log_notice("kanald %s started: listen=%s collector_id=%s "
	    "flush_interval_ms=%llu", KANAL_VERSION, k.cfg.listen,
	    k.cfg.collector_id, (unsigned long long)k.cfg.flush_interval_ms);

	notify_send("READY=1\nSTATUS=serving on %s", k.cfg.listen);

	event_base_dispatch(k.base);

	if (flush_stop(k.flush, k.cfg.shutdown_timeout_ms) == -1)
		rc = 1;
	else
		log_notice("stopped: everything held was written");
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_hup);
	httpd_free(k.httpd);
	flush_free(k.flush);
	ingest_free(k.ingest);
	agg_free(k.agg);
	event_base_free(k.base);
	return rc;
}
