/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpd: see httpd.h.
 */
#include "httpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "config.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"

struct httpd {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct ingest *ingest;
	httpd_ready_fn *ready;
	void *ready_arg;
	httpd_metrics_fn *metrics;
	void *metrics_arg;
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

static void
send_text(struct evhttp_request *req, int status, const char *text)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add(out, text, strlen(text));
	evhttp_send_reply(req, status, status_phrase(status), NULL);
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
	evhttp_send_reply(req, r->status, status_phrase(r->status), NULL);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	    evhttp_find_header(h, "Content-Type"), body, len, now_ms(),
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
	evhttp_send_reply(req, 200, status_phrase(200), NULL);
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

static void
handle(struct evhttp_request *req, void *arg)
{
	struct httpd *hd = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char why[256];

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
	hd->http = evhttp_new(base);
	if (hd->http == NULL)
		goto fail;
	evhttp_set_max_body_size(hd->http, (ev_ssize_t)cfg->max_body_size);
	evhttp_set_max_headers_size(hd->http,
	    (ev_ssize_t)cfg->max_header_size);
	{
		struct timeval tv = {
			.tv_sec = (time_t)(cfg->timeout_ms / 1000),
			.tv_usec = (suseconds_t)(cfg->timeout_ms % 1000) * 1000,
		};
		evhttp_set_timeout_tv(hd->http, &tv);
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
	log_info("listening: listen=%s", cfg->listen);
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
	if (hd->http != NULL)
		evhttp_free(hd->http);
	free(hd);
}
