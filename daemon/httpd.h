/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: the HTTP front of kanald, on libevent's evhttp.
 *
 *   POST /v1/events   ingest (ingest.h)
 *   GET  /healthz     200 while the process serves
 *   GET  /readyz      200 when ready, else 503 with the reason
 *   GET  /metrics     Prometheus text format (metrics.h)
 *
 * Unknown paths get 404 and wrong methods 405 with an Allow header (evhttp
 * would answer 501 itself, so every method is let through and refused
 * here). Every error body is one line, "reason: message".
 */
#ifndef KANAL_HTTPD_H
#define KANAL_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct ingest;
struct httpd;

/* Fills why and returns 0 when not ready; returns 1 when ready. */
typedef int httpd_ready_fn(void *arg, char *why, size_t len);
/*
 * Appends the /metrics text to out; 0, or -1 when out of memory (the
 * request is answered 503). On the loop thread.
 */
typedef int httpd_metrics_fn(void *arg, struct evbuffer *out);

struct httpd_config {
	const char *listen;		/* HOST:PORT */
	uint64_t max_body_size;
	uint64_t max_header_size;
	uint64_t timeout_ms;
	httpd_ready_fn *ready;
	void *ready_arg;
	httpd_metrics_fn *metrics;	/* NULL: /metrics is 404 */
	void *metrics_arg;
};

/*
 * Binds and starts serving on base. NULL on error, which was logged (an
 * address in use, say). ingest is borrowed.
 */
struct httpd *httpd_new(struct event_base *base,
    const struct httpd_config *cfg, struct ingest *in);
/* Stop accepting new connections; requests under way finish. */
void httpd_close_listener(struct httpd *h);
/* httpd_free(NULL) is a no-op. */
void httpd_free(struct httpd *h);

#endif
