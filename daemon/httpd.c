/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: see httpd.h.
 */
#include "httpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "tls.h"

/* How long the listener pauses when accept() finds no file to use. */
#define ACCEPT_PAUSE_MS 100

struct httpd {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct ingest *ingest;
	httpd_ready_fn *ready;
	void *ready_arg;
	httpd_metrics_fn *metrics;
	void *metrics_arg;
	struct tls *tls;
	struct timeval deadline;	/* for a whole request: timeout */
	size_t max_input;		/* read no further ahead than this */
	struct conn **by_fd;		/* open connections by socket */
	size_t nby_fd;
	struct event *resume;		/* re-enables a paused listener */
	time_t pause_logged;		/* last "accept paused" line */
	struct httpd_stats stats;
};

/*
 * A connection just accepted, until the next turn of the loop: evhttp
 * makes its evhttp_connection only after the bufferevent callback
 * returns, so the close callback (which counts it out) is set from here.
 */
/*
 * The httpd whose listener this is: the listener's callback argument is
 * evhttp's own, and kanald has one httpd.
 */
static struct httpd *accepting;

struct conn_start {
	struct httpd *hd;
	struct bufferevent *bev;	/* a reference of our own */
	struct event *ev;
	int refused;
};

/*
 * An open connection. evhttp's timeout is one of inactivity, re-armed by
 * every byte read, so a client that trickles a byte at a time would keep
 * its connection forever: each connection also has a deadline for a whole
 * request, armed when it is accepted and again when an answer is sent
 * (and once more when it has gone out), and disarmed while a request that
 * arrived whole is worked on (handle up to send_reply). At the deadline
 * the connection is closed, whatever it was sending or failing to read:
 * a client that does not read its answers loses the connection as one
 * that does not send its request does.
 *
 * While an answer is being written evhttp does not parse, but the
 * bufferevent still reads: the read high-water mark (max_input: a whole
 * request, headers and body, and some) stops it, so what a client sends
 * ahead is never buffered beyond that.
 */
struct conn {
	struct httpd *hd;
	struct evhttp_connection *evcon;
	struct event *deadline;
	evutil_socket_t fd;
};

static const char *
status_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

static void send_reply(struct evhttp_request *, int);

static void
send_text(struct evhttp_request *req, int status, const char *text)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add(out, text, strlen(text));
	send_reply(req, status);
}

static void
reply_cb(void *arg, const struct ingest_reply *r)
{
	struct evhttp_request *req = arg;
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char ra[16];

	evhttp_add_header(h, "Content-Type", r->content_type);
	if (r->status == 401)
		evhttp_add_header(h, "WWW-Authenticate", "Bearer");
	if (r->retry_after_s != 0) {
		snprintf(ra, sizeof(ra), "%u", r->retry_after_s);
		evhttp_add_header(h, "Retry-After", ra);
	}
	evbuffer_add(out, r->body, r->len);
	send_reply(req, r->status);
}

static void
handle_events(struct httpd *hd, struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const void *body = len > 0 ? (const void *)evbuffer_pullup(in, -1)
	    : (const void *)"";

	if (body == NULL) {
		send_text(req, 503, "overloaded: out of memory; retry later\n");
		return;
	}
	ingest_batch(hd->ingest, evhttp_find_header(h, "Authorization"),
	    evhttp_find_header(h, "Content-Type"), body, len, clock_wall_ms(),
	    reply_cb, req);
}

static void
handle_metrics(struct httpd *hd, struct evhttp_request *req)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);

	if (hd->metrics(hd->metrics_arg, out) == -1) {
		evbuffer_drain(out, evbuffer_get_length(out));
		send_text(req, 503, "overloaded: out of memory; retry later\n");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", METRICS_CONTENT_TYPE);
	send_reply(req, 200);
}

static void
method_not_allowed(struct evhttp_request *req, const char *allow)
{
	char text[128];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	snprintf(text, sizeof(text), "method_not_allowed: use %s\n", allow);
	send_text(req, 405, text);
}

/*
 * Request smuggling: with several Content-Length headers evhttp 2.1 frames
 * the body by the first, and with a Transfer-Encoding other than exactly
 * "chunked" (say "gzip, chunked") by Content-Length; a proxy in front may
 * frame the same bytes otherwise and see another request in them. Such a
 * request is refused and its connection closed, so nothing after it is
 * read as a request. (Content-Length with Transfer-Encoding: chunked evhttp
 * refuses itself.)
 */
static int
framing_ambiguous(const struct evkeyvalq *h)
{
	const struct evkeyval *kv;
	int lengths = 0;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			lengths++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0 &&
		    strcasecmp(kv->value, "chunked") != 0)
			return 1;
	}
	return lengths > 1;
}

static void request_arrived(struct httpd *, struct evhttp_request *);

static void
handle(struct evhttp_request *req, void *arg)
{
	struct httpd *hd = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char why[256];

	request_arrived(hd, req);
	if (path == NULL)
		path = "";
	if (framing_ambiguous(evhttp_request_get_input_headers(req))) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Connection", "close");
		send_text(req, 400, "request_framing_invalid: send one "
		    "Content-Length, or Transfer-Encoding: chunked alone\n");
	} else if (strcmp(path, "/v1/events") == 0) {
		if (cmd != EVHTTP_REQ_POST)
			method_not_allowed(req, "POST");
		else
			handle_events(hd, req);
	} else if (strcmp(path, "/healthz") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
			method_not_allowed(req, "GET");
		else
			send_text(req, 200, "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
			method_not_allowed(req, "GET");
		else if (hd->ready == NULL ||
		    hd->ready(hd->ready_arg, why, sizeof(why)))
			send_text(req, 200, "ready\n");
		else {
			char text[300];
			snprintf(text, sizeof(text), "not_ready: %s\n", why);
			send_text(req, 503, text);
		}
	} else if (strcmp(path, "/metrics") == 0 && hd->metrics != NULL) {
		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
			method_not_allowed(req, "GET");
		else
			handle_metrics(hd, req);
	} else {
		send_text(req, 404, "not_found: no such path; events go to "
		    "POST /v1/events\n");
	}
}

/* ------------------------------------------------------ connections */

static void
count_out(struct httpd *hd)
{
	if (hd->stats.connections > 0)
		hd->stats.connections--;
}

static void
connection_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;

	(void)evcon;
	count_out(c->hd);
	if ((size_t)c->fd < c->hd->nby_fd && c->hd->by_fd[c->fd] == c)
		c->hd->by_fd[c->fd] = NULL;
	event_free(c->deadline);
	free(c);
}

/* A request did not arrive whole within the timeout. */
static void
request_overdue(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->hd->stats.overdue++;
	/* Calls connection_closed, which frees c. */
	evhttp_connection_free(c->evcon);
}

/* The connection that req came on; NULL if it is not tracked. */
static struct conn *
conn_of(struct httpd *hd, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	evutil_socket_t fd;

	if (evcon == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	fd = bufferevent_getfd(bev);
	if (fd < 0 || (size_t)fd >= hd->nby_fd || hd->by_fd[fd] == NULL ||
	    hd->by_fd[fd]->evcon != evcon)
		return NULL;
	return hd->by_fd[fd];
}

/* The answer to a request has been sent: the next one has timeout. */
static void
answer_sent(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;

	(void)req;
	evtimer_add(c->deadline, &c->hd->deadline);
}

/* A request arrived whole: no deadline while it is answered. */
static void
request_arrived(struct httpd *hd, struct evhttp_request *req)
{
	struct conn *c = conn_of(hd, req);

	if (c == NULL)
		return;
	evtimer_del(c->deadline);
	evhttp_request_set_on_complete_cb(req, answer_sent, c);
}

/*
 * Queues the answer to req and starts its connection's deadline again. The
 * connection is looked up first: it is still there after evhttp_send_reply,
 * which only queues (with the client gone, req has no connection and is
 * freed there).
 */
static void
send_reply(struct evhttp_request *req, int status)
{
	struct conn *c = accepting != NULL ? conn_of(accepting, req) : NULL;

	evhttp_send_reply(req, status, status_phrase(status), NULL);
	if (c != NULL)
		evtimer_add(c->deadline, &c->hd->deadline);
}

/* Tracks a new connection; -1 when out of memory (the caller closes it). */
static int
track(struct httpd *hd, struct evhttp_connection *evcon,
    struct bufferevent *bev)
{
	struct event_base *base = bufferevent_get_base(bev);
	evutil_socket_t fd = bufferevent_getfd(bev);
	struct conn *c;

	if (fd < 0)
		return -1;
	if ((size_t)fd >= hd->nby_fd) {
		size_t n = hd->nby_fd > 0 ? hd->nby_fd : 64;
		struct conn **t;

		while (n <= (size_t)fd)
			n *= 2;
		if ((t = realloc(hd->by_fd, n * sizeof(*t))) == NULL)
			return -1;
		memset(t + hd->nby_fd, 0, (n - hd->nby_fd) * sizeof(*t));
		hd->by_fd = t;
		hd->nby_fd = n;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -1;
	if ((c->deadline = evtimer_new(base, request_overdue, c)) == NULL) {
		free(c);
		return -1;
	}
	c->hd = hd;
	c->evcon = evcon;
	c->fd = fd;
	hd->by_fd[fd] = c;
	bufferevent_setwatermark(bev, EV_READ, 0, hd->max_input);
	evhttp_connection_set_closecb(evcon, connection_closed, c);
	evtimer_add(c->deadline, &hd->deadline);
	return 0;
}

static void
settle_connection(evutil_socket_t fd, short what, void *arg)
{
	struct conn_start *cs = arg;
	struct httpd *hd = cs->hd;
	void *cbarg = NULL;

	(void)fd;
	(void)what;
	/*
	 * evhttp set itself as the bufferevent's callbacks with its
	 * connection as their argument; bufferevent_free clears them, so
	 * NULL here means evhttp has already closed the connection.
	 */
	bufferevent_getcb(cs->bev, NULL, NULL, NULL, &cbarg);
	if (cbarg == NULL) {
		if (!cs->refused)
			count_out(hd);
	} else if (cs->refused) {
		evhttp_connection_free(cbarg);
	} else if (track(hd, cbarg, cs->bev) == -1) {
		log_warnx("out of memory tracking a connection; closed it");
		evhttp_connection_free(cbarg);
		count_out(hd);
	}
	bufferevent_decref(cs->bev);
	event_free(cs->ev);
	free(cs);
}

/*
 * evhttp's bufferevent callback: one per accepted connection, before
 * evhttp has made the connection. A NULL answer would make evhttp use a
 * plain socket, which on a TLS listener would serve plain HTTP: out of
 * memory here is fatal instead.
 */
static struct bufferevent *
new_connection(struct event_base *base, void *arg)
{
	struct httpd *hd = arg;
	struct conn_start *cs = malloc(sizeof(*cs));
	struct bufferevent *bev = NULL;
	SSL *ssl;

	if (cs == NULL)
		fatalx("out of memory accepting a connection");
	cs->ev = event_new(base, -1, 0, settle_connection, cs);
	if (cs->ev == NULL)
		fatalx("out of memory accepting a connection");
	cs->hd = hd;
	cs->refused = hd->stats.connections >= hd->stats.max_connections;
	if (cs->refused || hd->tls == NULL) {
		/* A refused one never reads: it is closed on this turn. */
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	} else {
		ssl = tls_ssl_new(hd->tls);
		if (ssl != NULL) {
			bev = bufferevent_openssl_socket_new(base, -1, ssl,
			    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
			if (bev == NULL)
				SSL_free(ssl);
		}
	}
	if (bev == NULL)
		fatalx("out of memory accepting a connection");
	if (cs->refused)
		hd->stats.refused++;
	else
		hd->stats.connections++;
	cs->bev = bev;
	bufferevent_incref(bev);
	event_active(cs->ev, EV_TIMEOUT, 1);
	return bev;
}

static void
resume_accepting(evutil_socket_t fd, short what, void *arg)
{
	struct httpd *hd = arg;

	(void)fd;
	(void)what;
	if (hd->bound != NULL)
		evconnlistener_enable(evhttp_bound_socket_get_listener(
		    hd->bound));
}

/*
 * accept() failed. Out of files (or memory) the listener would be woken
 * again at once by the same waiting client: pause it for a while and
 * say so, at most once a minute.
 */
static void
accept_failed(struct evconnlistener *l, void *arg)
{
	struct httpd *hd = accepting;
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int e = errno;
	time_t now = time(NULL);

	(void)arg;
	if (hd == NULL)
		return;
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_warnx("accept failed: err=\"%s\"", strerror(e));
		return;
	}
	evconnlistener_disable(l);
	evtimer_add(hd->resume, &tv);
	if (now - hd->pause_logged >= 60) {
		hd->pause_logged = now;
		log_warnx("accept paused: no file descriptor left; lower "
		    "max-connections or raise LimitNOFILE=: err=\"%s\" "
		    "connections=%llu", strerror(e),
		    (unsigned long long)hd->stats.connections);
	}
}

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit and returns want, or
 * the most connections that the limit can hold beside HTTPD_FD_RESERVE
 * other files (at least 1), with a log line.
 */
static uint64_t
fit_connections(uint64_t want)
{
	struct rlimit rl;
	uint64_t room;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
		log_warn("cannot read the open-file limit; max-connections "
		    "kept: max_connections=%llu", (unsigned long long)want);
		return want;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit up = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = rl.rlim_max;
		else
			log_warn("cannot raise the open-file limit: soft=%llu "
			    "hard=%llu", (unsigned long long)rl.rlim_cur,
			    (unsigned long long)rl.rlim_max);
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return want;
	room = rl.rlim_cur > HTTPD_FD_RESERVE + 1 ?
	    (uint64_t)rl.rlim_cur - HTTPD_FD_RESERVE : 1;
	if (want <= room)
		return want;
	log_warnx("max-connections lowered to fit the open-file limit; raise "
	    "LimitNOFILE= to allow more: max_connections=%llu wanted=%llu "
	    "nofile=%llu reserved=%d", (unsigned long long)room,
	    (unsigned long long)want, (unsigned long long)rl.rlim_cur,
	    HTTPD_FD_RESERVE);
	return room;
}

void
httpd_get_stats(const struct httpd *hd, struct httpd_stats *st)
{
	*st = hd->stats;
}

/* ------------------------------------------------------------ set-up */

struct httpd *
httpd_new(struct event_base *base, const struct httpd_config *cfg,
    struct ingest *in)
{
	struct httpd *hd;
	char host[256];
	uint16_t port;

	if (config_parse_hostport(cfg->listen, host, sizeof(host), &port)
	    == -1) {
		log_errx("bad listen address: listen=%s", cfg->listen);
		return NULL;
	}
	hd = calloc(1, sizeof(*hd));
	if (hd == NULL)
		return NULL;
	hd->ingest = in;
	hd->ready = cfg->ready;
	hd->ready_arg = cfg->ready_arg;
	hd->metrics = cfg->metrics;
	hd->metrics_arg = cfg->metrics_arg;
	hd->tls = cfg->tls;
	hd->stats.max_connections = fit_connections(cfg->max_connections);
	hd->http = evhttp_new(base);
	hd->resume = evtimer_new(base, resume_accepting, hd);
	if (hd->http == NULL || hd->resume == NULL)
		goto fail;
	evhttp_set_bevcb(hd->http, new_connection, hd);
	evhttp_set_max_body_size(hd->http, (ev_ssize_t)cfg->max_body_size);
	hd->max_input = (size_t)(cfg->max_header_size + cfg->max_body_size) +
	    (64 << 10);
	evhttp_set_max_headers_size(hd->http,
	    (ev_ssize_t)cfg->max_header_size);
	{
		struct timeval tv = {
			.tv_sec = (time_t)(cfg->timeout_ms / 1000),
			.tv_usec = (suseconds_t)(cfg->timeout_ms % 1000) * 1000,
		};
		evhttp_set_timeout_tv(hd->http, &tv);
		hd->deadline = tv;
	}
	/* Let every method through so that we answer 405, not 501. */
	evhttp_set_allowed_methods(hd->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(hd->http, handle, hd);
	hd->bound = evhttp_bind_socket_with_handle(hd->http, host, port);
	if (hd->bound == NULL) {
		log_warn("cannot listen: listen=%s", cfg->listen);
		goto fail;
	}
	accepting = hd;
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(
	    hd->bound), accept_failed);
	log_info("listening: listen=%s tls=%s max_connections=%llu",
	    cfg->listen, hd->tls != NULL ? "on" : "off",
	    (unsigned long long)hd->stats.max_connections);
	return hd;
fail:
	httpd_free(hd);
	return NULL;
}

void
httpd_close_listener(struct httpd *hd)
{
	if (hd->bound != NULL) {
		evhttp_del_accept_socket(hd->http, hd->bound);
		hd->bound = NULL;
	}
}

void
httpd_free(struct httpd *hd)
{
	if (hd == NULL)
		return;
	if (accepting == hd)
		accepting = NULL;
	if (hd->http != NULL)
		evhttp_free(hd->http);
	if (hd->resume != NULL)
		event_free(hd->resume);
	free(hd->by_fd);
	free(hd);
}
