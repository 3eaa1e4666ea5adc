/* SPDX-License-Identifier: Apache-2.0 */
/*
 * watchdog: see watchdog.h.
 *
 * Timing. With WatchdogSec=30s the timer ticks every 10 s (half the
 * interval, capped by the status period) and the writer counts as stuck
 * after ceil(30 / 10) = 3 ticks without progress while bytes wait, so
 * systemd stops hearing from kanald 30 s into a stall and kills it at
 * most one interval later. The limit is never below 2: one tick that
 * lands in the middle of an ordinary fdatasync must not cost a ping.
 * Systemd arms its watchdog only after READY=1, so start-up work (the WAL
 * scan) is governed by TimeoutStartSec, not by this.
 */
#include "watchdog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "flush.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "wal.h"

#define STATUS_PERIOD_USEC (10ULL * 1000 * 1000)
/* The stall limit when systemd has no watchdog for us: log after 30 s. */
#define STALL_LOG_USEC (30ULL * 1000 * 1000)

struct watchdog {
	struct event *tick;
	struct wal *wal;
	struct ingest *ingest;
	struct flush *flush;
	char listen[128];
	uint64_t interval_usec;		/* 0: systemd's watchdog is off */
	uint64_t period_usec;
	struct watchdog_writer writer;
	int stuck;			/* logged as stuck, not yet recovered */
	char status[256];		/* last STATUS= sent */
	unsigned status_ticks;		/* ticks since it was sent */
	unsigned status_every;		/* ticks in STATUS_PERIOD_USEC */
};

uint64_t
watchdog_interval_usec(const char *usec, const char *pid, long self)
{
	unsigned long long u;
	long p;
	char *end;

	if (usec == NULL || usec[0] < '0' || usec[0] > '9')
		return 0;
	errno = 0;
	u = strtoull(usec, &end, 10);
	/* UINT64_MAX is systemd's "infinity": no watchdog either. */
	if (errno != 0 || *end != '\0' || u == 0 || u == UINT64_MAX)
		return 0;
	if (pid != NULL) {
		if (pid[0] < '0' || pid[0] > '9')
			return 0;
		errno = 0;
		p = strtol(pid, &end, 10);
		if (errno != 0 || *end != '\0' || p != self)
			return 0;
	}
	return (uint64_t)u;
}

int
watchdog_writer_check(struct watchdog_writer *s, uint64_t appended,
    uint64_t durable)
{
	if (appended <= durable || durable != s->durable) {
		s->durable = durable;
		s->stalled = 0;
		return 1;
	}
	if (s->stalled < s->limit)
		s->stalled++;
	return s->stalled < s->limit;
}

/* "serving on ADDR; N batches ok; WAL X MiB; db up|down", plus trouble. */
static void
status_line(struct watchdog *wd, const struct wal_stats *ws, char *buf,
    size_t len)
{
	struct ingest_stats is;
	struct flush_stats fs;

	ingest_get_stats(wd->ingest, &is);
	flush_get_stats(wd->flush, &fs);
	/* Integer MiB with one decimal: the line's length stays bounded. */
	snprintf(buf, len, "serving on %s; %" PRIu64 " batches ok; WAL %"
	    PRIu64 ".%" PRIu64 " MiB%s%s; db %s%s", wd->listen, is.batches_ok,
	    ws->bytes >> 20, ((ws->bytes & 0xfffff) * 10) >> 20,
	    ws->full ? " (full)" : "", ws->failed ? " (failed)" : "",
	    fs.connected ? "up" : "down",
	    wd->stuck ? "; WAL writer stuck" : "");
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct watchdog *wd = arg;
	struct wal_stats ws;
	char status[sizeof(wd->status)];
	int healthy;

	(void)fd;
	(void)what;
	wal_get_stats(wd->wal, &ws);
	healthy = watchdog_writer_check(&wd->writer, ws.appended, ws.durable);
	if (!healthy && !wd->stuck) {
		log_warnx("the WAL writer has made no progress with bytes "
		    "waiting; not telling systemd's watchdog that kanald is "
		    "alive: stalled_ms=%" PRIu64 " waiting_bytes=%" PRIu64
		    " durable=%" PRIu64,
		    wd->writer.stalled * wd->period_usec / 1000,
		    ws.appended - ws.durable, ws.durable);
		wd->stuck = 1;
	} else if (healthy && wd->stuck) {
		log_notice("the WAL writer is making progress again: "
		    "durable=%" PRIu64, ws.durable);
		wd->stuck = 0;
	}
	/* The loop runs (this fired) and the writer moves: alive. */
	if (healthy && wd->interval_usec != 0)
		notify_send("WATCHDOG=1");
	/*
	 * On change, and every 10 s anyway: main.c sends STATUS= of its own
	 * with READY=1 after a reload.
	 */
	status_line(wd, &ws, status, sizeof(status));
	if (strcmp(status, wd->status) != 0 ||
	    ++wd->status_ticks >= wd->status_every) {
		notify_send("STATUS=%s", status);
		memcpy(wd->status, status, sizeof(status));
		wd->status_ticks = 0;
	}
}

struct watchdog *
watchdog_new(struct event_base *base, const struct watchdog_config *cfg)
{
	struct watchdog *wd = calloc(1, sizeof(*wd));
	struct wal_stats ws;
	struct timeval tv;
	uint64_t span;

	if (wd == NULL)
		return NULL;
	wd->wal = cfg->wal;
	wd->ingest = cfg->ingest;
	wd->flush = cfg->flush;
	snprintf(wd->listen, sizeof(wd->listen), "%s", cfg->listen);
	wd->interval_usec = watchdog_interval_usec(getenv("WATCHDOG_USEC"),
	    getenv("WATCHDOG_PID"), (long)getpid());
	wd->period_usec = STATUS_PERIOD_USEC;
	if (wd->interval_usec != 0 && wd->interval_usec / 2 < wd->period_usec)
		wd->period_usec = wd->interval_usec / 2;
	if (wd->period_usec < 1000)
		wd->period_usec = 1000;
	span = wd->interval_usec != 0 ? wd->interval_usec : STALL_LOG_USEC;
	wd->writer.limit = (unsigned)((span + wd->period_usec - 1) /
	    wd->period_usec);
	if (wd->writer.limit < 2)
		wd->writer.limit = 2;
	wd->status_every = (unsigned)(STATUS_PERIOD_USEC / wd->period_usec);
	wal_get_stats(wd->wal, &ws);
	wd->writer.durable = ws.durable;

	wd->tick = event_new(base, -1, EV_PERSIST, on_tick, wd);
	if (wd->tick == NULL)
		goto fail;
	tv.tv_sec = (time_t)(wd->period_usec / 1000000);
	tv.tv_usec = (suseconds_t)(wd->period_usec % 1000000);
	if (evtimer_add(wd->tick, &tv) == -1)
		goto fail;
	if (wd->interval_usec != 0)
		log_info("systemd watchdog on: interval_ms=%" PRIu64
		    " ping_ms=%" PRIu64, wd->interval_usec / 1000,
		    wd->period_usec / 1000);
	return wd;
fail:
	watchdog_free(wd);
	return NULL;
}

void
watchdog_free(struct watchdog *wd)
{
	if (wd == NULL)
		return;
	if (wd->tick != NULL)
		event_free(wd->tick);
	free(wd);
}
