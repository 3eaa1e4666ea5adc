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
 *
 * With a struct tls the listener speaks HTTPS only: each connection is an
 * OpenSSL bufferevent in the accepting state, and bytes that are not a
 * TLS handshake close the connection without an HTTP answer.
 *
 * Connections are counted (libevent 2.1 has no cap of its own): one over
 * max_connections is accepted and closed at once, so that the client
 * learns at once and retries, rather than waiting in the kernel's backlog
 * with no answer while the listener is paused. At start the soft limit
 * of open files is raised to the hard one, and a cap that it cannot hold
 * (with HTTPD_FD_RESERVE files kept for the WAL, PostgreSQL and the
 * rest) is lowered, with a log line.
 */
#ifndef KANAL_HTTPD_H
#define KANAL_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct ingest;
struct httpd;
struct tls;

/*
 * Files kept for everything but client connections: 64 for the WAL,
 * PostgreSQL and the rest, and 128 more because the listener accepts
 * what its backlog (128 in evhttp 2.1) holds before the ones over the cap
 * are closed, so at the cap up to that many sockets are open at once.
 */
#define HTTPD_FD_RESERVE (64 + 128)

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
	struct tls *tls;		/* NULL: plain HTTP; else borrowed */
	uint64_t max_connections;
};

struct httpd_stats {
	uint64_t connections;		/* open now */
	uint64_t refused;		/* closed at once: over the cap */
	uint64_t max_connections;	/* the cap in force */
	uint64_t overdue;		/* closed: no whole request in time */
};

/*
 * Binds and starts serving on base. NULL on error, which was logged (an
 * address in use, say). ingest is borrowed.
 */
struct httpd *httpd_new(struct event_base *base,
    const struct httpd_config *cfg, struct ingest *in);
/* Stop accepting new connections; requests under way finish. */
void httpd_close_listener(struct httpd *h);
void httpd_get_stats(const struct httpd *h, struct httpd_stats *st);

/* httpd_free(NULL) is a no-op. */
void httpd_free(struct httpd *h);

#endif
