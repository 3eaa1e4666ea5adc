/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc: see httpc.h.
 */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct httpc {
	struct httpc_url u;
	char hosthdr[300];
	unsigned timeout_ms;
	unsigned connects;
	int fd;
	SSL_CTX *ctx;		/* https:// only */
	SSL *ssl;		/* with fd, while connected over TLS */
	int own_ca;		/* ctx verifies with a given CA file */
	int final;		/* see httpc_error_is_final */
	char *buf;		/* received bytes */
	size_t len, cap;
	char *body;
	size_t body_cap;
};

/* ------------------------------------------------------------------ URLs */

int
httpc_url_parse(const char *url, struct httpc_url *u, char *err,
    size_t errlen)
{
	const char *p, *hend, *rest;
	size_t hlen, plen;
	long port;

	memset(u, 0, sizeof(*u));
	if (strncmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncmp(url, "https://", 8) == 0) {
		p = url + 8;
		u->tls = 1;
	} else {
		snprintf(err, errlen, "URL must start with http:// or https:// "
		    "(got %s)", url);
		return -1;
	}
	if (*p == '[') {
		hend = strchr(p, ']');
		if (hend == NULL) {
			snprintf(err, errlen, "bad IPv6 address in %s (no ])",
			    url);
			return -1;
		}
		p++;
		hlen = (size_t)(hend - p);
		rest = hend + 1;
	} else {
		hlen = strcspn(p, ":/?#");
		rest = p + hlen;
	}
	if (hlen == 0 || hlen >= sizeof(u->host) ||
	    memchr(p, '@', hlen) != NULL) {
		snprintf(err, errlen, hlen == 0 || hlen >= sizeof(u->host) ?
		    "no host in %s" : "user@ in %s is not supported", url);
		return -1;
	}
	memcpy(u->host, p, hlen);
	if (*rest == ':') {
		plen = strspn(rest + 1, "0123456789");
		port = plen > 0 && plen < 6 ? strtol(rest + 1, NULL, 10) : 0;
		if (port < 1 || port > 65535) {
			snprintf(err, errlen, "bad port in %s (1..65535)", url);
			return -1;
		}
		snprintf(u->port, sizeof(u->port), "%ld", port);
		rest += 1 + plen;
	}
	if (*rest != '\0' && *rest != '/' && *rest != '?' && *rest != '#') {
		snprintf(err, errlen, "bad URL %s: \"%s\" after the %s", url,
		    rest, u->port[0] != '\0' ? "port" : "host");
		return -1;
	}
	if (u->port[0] == '\0')
		strcpy(u->port, u->tls ? "443" : "80");
	return 0;
}

/* ------------------------------------------------------------------- TLS */

/* The first error on OpenSSL's queue, as text; "" when it is empty. */
static const char *
tls_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	if (e == 0)
		return "";
	r = ERR_reason_error_string(e);
	return r != NULL ? r : "unknown error";
}

static SSL_CTX *
tls_ctx_new(const char *cacert, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	FILE *fp;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "TLS: %s", tls_reason());
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* A server that closes without close_notify ends a body like EOF. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (cacert == NULL) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			snprintf(err, errlen, "TLS: cannot load the system "
			    "trust store: %s", tls_reason());
			goto fail;
		}
		return ctx;
	}
	/* fopen first: "No such file" says more than "system lib". */
	fp = fopen(cacert, "r");
	if (fp == NULL) {
		snprintf(err, errlen, "CA file %s: %s", cacert,
		    strerror(errno));
		goto fail;
	}
	fclose(fp);
	if (SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1) {
		snprintf(err, errlen, "CA file %s: no PEM certificate in it "
		    "(%s)", cacert, tls_reason());
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * OpenSSL writes with write(2), which raises SIGPIPE on a connection the
 * peer reset (send() has MSG_NOSIGNAL, SSL_write has nothing like it).
 * SIGPIPE is blocked around each TLS call and one it raised is taken off
 * the pending set before it is unblocked; one that was pending before is
 * left alone.
 */
struct sigpipe_guard {
	sigset_t old;
	int was_pending;
};

static void
sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
}

static void
sigpipe_restore(struct sigpipe_guard *g)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t set, pending;
	int saved = errno;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!g->was_pending && sigismember(&pending, SIGPIPE))
		sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

/* The chain ends in a CA the trust store does not hold. */
static int
issuer_unknown(long vr)
{
	return vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	    vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
	    vr == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
}

/*
 * The TLS handshake on the connected c->fd, verifying the server's chain
 * and its name. 0, or -1 with a message in err.
 */
static int
tls_connect(struct httpc *c, char *err, size_t errlen)
{
	struct sigpipe_guard g;
	unsigned char addr[16];
	long vr;
	int r, e, is_ip;

	ERR_clear_error();
	c->ssl = SSL_new(c->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(err, errlen, "TLS: %s", tls_reason());
		return -1;
	}
	is_ip = inet_pton(AF_INET, c->u.host, addr) == 1 ||
	    inet_pton(AF_INET6, c->u.host, addr) == 1;
	if (is_ip)
		r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl),
		    c->u.host);
	else
		r = SSL_set_tlsext_host_name(c->ssl, c->u.host) == 1 &&
		    SSL_set1_host(c->ssl, c->u.host) == 1;
	if (r != 1) {
		snprintf(err, errlen, "TLS: cannot verify the name %s: %s",
		    c->u.host, tls_reason());
		return -1;
	}
	errno = 0;
	sigpipe_block(&g);
	r = SSL_connect(c->ssl);
	e = SSL_get_error(c->ssl, r);
	sigpipe_restore(&g);
	if (r == 1)
		return 0;
	vr = SSL_get_verify_result(c->ssl);
	c->final = vr != X509_V_OK || e == SSL_ERROR_SSL;
	if (vr != X509_V_OK)
		snprintf(err, errlen, "TLS to %s: certificate verify failed: "
		    "%s%s", c->hosthdr, X509_verify_cert_error_string(vr),
		    !c->own_ca && issuer_unknown(vr) ? " (a certificate from "
		    "a private CA needs that CA's certificate: --cacert FILE)" :
		    "");
	else if (e == SSL_ERROR_SYSCALL && errno != 0)
		snprintf(err, errlen, "TLS handshake with %s: %s", c->hosthdr,
		    errno == EAGAIN ? "timed out" : strerror(errno));
	else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
	    tls_reason()[0] == '\0')
		snprintf(err, errlen, "TLS handshake with %s: connection "
		    "closed by the server", c->hosthdr);
	else
		snprintf(err, errlen, "TLS handshake with %s failed: %s%s",
		    c->hosthdr, tls_reason(), ERR_GET_REASON(
		    ERR_peek_last_error()) == SSL_R_WRONG_VERSION_NUMBER ?
		    " (is it plain http://?)" : "");
	return -1;
}

/* --------------------------------------------------------------- httpc */

struct httpc *
httpc_new_ca(const char *url, const char *cacert, unsigned timeout_ms,
    char *err, size_t errlen)
{
	struct httpc *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	if (httpc_url_parse(url, &c->u, err, errlen) == -1) {
		free(c);
		return NULL;
	}
	snprintf(c->hosthdr, sizeof(c->hosthdr), strchr(c->u.host, ':') ?
	    "[%s]:%s" : "%s:%s", c->u.host, c->u.port);
	if (c->u.tls) {
		c->own_ca = cacert != NULL && cacert[0] != '\0';
		c->ctx = tls_ctx_new(c->own_ca ? cacert : NULL, err, errlen);
		if (c->ctx == NULL) {
			free(c);
			return NULL;
		}
	}
	return c;
}

struct httpc *
httpc_new(const char *url, unsigned timeout_ms, char *err, size_t errlen)
{
	return httpc_new_ca(url, NULL, timeout_ms, err, errlen);
}

unsigned
httpc_connects(const struct httpc *c)
{
	return c->connects;
}

int
httpc_error_is_final(const struct httpc *c)
{
	return c->final;
}

/*
 * Drops the connection. No close_notify: kanald needs none, and the
 * server may be gone already.
 */
static void
conn_close(struct httpc *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

void
httpc_free(struct httpc *c)
{
	if (c == NULL)
		return;
	conn_close(c);
	SSL_CTX_free(c->ctx);
	free(c->buf);
	free(c->body);
	free(c);
}

static int
connect_to(struct httpc *c, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct timeval tv = { (time_t)(c->timeout_ms / 1000),
	    (suseconds_t)(c->timeout_ms % 1000) * 1000 };
	int r, one = 1, saved = 0;

	r = getaddrinfo(c->u.host, c->u.port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "%s: %s", c->u.host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (c->fd == -1)
			continue;
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (c->fd == -1) {
		snprintf(err, errlen, "cannot connect to %s: %s", c->hosthdr,
		    strerror(saved));
		return -1;
	}
	c->len = 0;
	c->connects++;
	if (c->ctx != NULL && tls_connect(c, err, errlen) == -1) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/*
 * One TLS read or write of at most len bytes: the count, 0 at the end of
 * the stream (read), or -1 with errno set (EPROTO for a TLS error).
 */
static ssize_t
tls_io(struct httpc *c, int writing, void *p, size_t len)
{
	struct sigpipe_guard g;
	int n, e;

	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	sigpipe_block(&g);
	n = writing ? SSL_write(c->ssl, p, (int)len) :
	    SSL_read(c->ssl, p, (int)len);
	e = SSL_get_error(c->ssl, n);
	sigpipe_restore(&g);
	if (n > 0)
		return n;
	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL &&
	    errno == 0))
		return writing ? (errno = EPIPE, -1) : 0;
	if (e != SSL_ERROR_SYSCALL)
		errno = EPROTO;
	return -1;
}

static int
send_all(struct httpc *c, const void *p, size_t len)
{
	const char *s = p;

	while (len > 0) {
		ssize_t n = c->ssl != NULL ? tls_io(c, 1, (void *)s, len) :
		    send(c->fd, s, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads more bytes into buf. 1 read, 0 EOF, -1 error. */
static int
fill(struct httpc *c)
{
	ssize_t n;

	if (c->cap - c->len < 65536) {
		size_t ncap = c->cap ? c->cap * 2 : 131072;
		char *nb = realloc(c->buf, ncap);
		if (nb == NULL)
			return -1;
		c->buf = nb;
		c->cap = ncap;
	}
	do
		n = c->ssl != NULL ? tls_io(c, 0, c->buf + c->len,
		    c->cap - c->len - 1) : recv(c->fd, c->buf + c->len,
		    c->cap - c->len - 1, 0);
	while (n == -1 && errno == EINTR);
	if (n < 0)
		return -1;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return n > 0;
}

static const char *
header_value(const char *headers, const char *end, const char *name,
    size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = strstr(headers, "\r\n");

	while (p != NULL && p < end) {
		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			while (*v == ' ')
				v++;
			*vlen = strcspn(v, "\r");
			return v;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

/*
 * The largest response kanalctl takes, headers or body: kanald's biggest
 * answer (an ack of 10,000 rejections) is about 1.5 MB. Sizes a server
 * sends are checked against it before any arithmetic, so none can wrap.
 */
#define RESPONSE_MAX ((size_t)16 << 20)

/*
 * A Content-Length (base 10) or chunk size (base 16, up to ';' or the
 * line's end) of at most RESPONSE_MAX: 0, else -1 (no digits, a sign,
 * junk, or too big).
 */
static int
parse_size(const char *s, int base, size_t *out)
{
	size_t v = 0;
	int any = 0;

	for (;; s++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * (size_t)base + (size_t)d;
		if (v > RESPONSE_MAX)
			return -1;
		any = 1;
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (!any || !(*s == '\r' || (base == 16 && *s == ';')))
		return -1;
	*out = v;
	return 0;
}

static int
body_reserve(struct httpc *c, size_t need)
{
	if (need + 1 > c->body_cap) {
		char *nb = realloc(c->body, need + 1);
		if (nb == NULL)
			return -1;
		c->body = nb;
		c->body_cap = need + 1;
	}
	return 0;
}

/* Reads one response. 0, or -1 (err set); *eof_early when nothing came. */
static int
read_response(struct httpc *c, struct httpc_response *resp, int *eof_early,
    char *err, size_t errlen)
{
	char *hend;
	const char *v;
	size_t vlen, hsize, clen = 0;
	int r, keep = 1, chunked = 0;

	*eof_early = 0;
	while ((hend = c->len ? strstr(c->buf, "\r\n\r\n") : NULL) == NULL) {
		if (c->len > RESPONSE_MAX) {
			snprintf(err, errlen, "response headers from %s over "
			    "%zu bytes", c->hosthdr, RESPONSE_MAX);
			return -1;
		}
		r = fill(c);
		if (r <= 0) {
			*eof_early = c->len == 0;
			snprintf(err, errlen, "connection to %s %s", c->hosthdr,
			    r == 0 ? "closed" : strerror(errno));
			return -1;
		}
	}
	hsize = (size_t)(hend - c->buf) + 4;
	if (sscanf(c->buf, "HTTP/1.%*d %d", &resp->status) != 1) {
		snprintf(err, errlen, "not an HTTP response from %s", c->hosthdr);
		return -1;
	}
	resp->content_type[0] = resp->retry_after[0] = '\0';
	v = header_value(c->buf, hend, "Content-Type", &vlen);
	if (v != NULL)
		snprintf(resp->content_type, sizeof(resp->content_type), "%.*s",
		    (int)vlen, v);
	v = header_value(c->buf, hend, "Retry-After", &vlen);
	if (v != NULL)
		snprintf(resp->retry_after, sizeof(resp->retry_after), "%.*s",
		    (int)vlen, v);
	v = header_value(c->buf, hend, "Connection", &vlen);
	if (v != NULL && strncasecmp(v, "close", 5) == 0)
		keep = 0;
	v = header_value(c->buf, hend, "Transfer-Encoding", &vlen);
	if (v != NULL && strncasecmp(v, "chunked", 7) == 0)
		chunked = 1;
	v = header_value(c->buf, hend, "Content-Length", &vlen);
	if (v != NULL && !chunked && parse_size(v, 10, &clen) == -1) {
		snprintf(err, errlen, "bad Content-Length from %s (a size of "
		    "at most %zu bytes expected)", c->hosthdr, RESPONSE_MAX);
		return -1;
	} else if (v == NULL && !chunked)
		keep = 0;	/* body runs to EOF */

	resp->len = 0;
	if (chunked) {
		size_t pos = hsize;
		for (;;) {
			char *eol;
			size_t n;
			while ((eol = strstr(c->buf + pos, "\r\n")) == NULL)
				if (fill(c) <= 0)
					goto short_read;
			if (parse_size(c->buf + pos, 16, &n) == -1 ||
			    resp->len + n > RESPONSE_MAX) {
				snprintf(err, errlen, "bad chunk size from %s "
				    "(the body may be at most %zu bytes)",
				    c->hosthdr, RESPONSE_MAX);
				return -1;
			}
			pos = (size_t)(eol - c->buf) + 2;
			while (c->len < pos + n + 2)
				if (fill(c) <= 0)
					goto short_read;
			if (n == 0) {
				pos += 2;
				break;
			}
			if (body_reserve(c, resp->len + n) == -1)
				goto nomem;
			memcpy(c->body + resp->len, c->buf + pos, n);
			resp->len += n;
			pos += n + 2;
		}
		hsize = pos;
		clen = 0;
	} else if (v != NULL) {
		while (c->len < hsize + clen)
			if (fill(c) <= 0)
				goto short_read;
	} else {
		for (;;) {
			if (c->len - hsize > RESPONSE_MAX) {
				snprintf(err, errlen, "response from %s over %zu "
				    "bytes", c->hosthdr, RESPONSE_MAX);
				return -1;
			}
			r = fill(c);
			if (r == 0)
				break;
			if (r < 0)
				goto short_read;
		}
		clen = c->len - hsize;
	}
	if (!chunked) {
		if (body_reserve(c, clen) == -1)
			goto nomem;
		memcpy(c->body, c->buf + hsize, clen);
		resp->len = clen;
		hsize += clen;
	}
	if (body_reserve(c, resp->len) == -1)
		goto nomem;
	c->body[resp->len] = '\0';
	resp->body = c->body;
	/* Keep what follows (nothing, for a well-behaved server). */
	memmove(c->buf, c->buf + hsize, c->len - hsize);
	c->len -= hsize;
	if (!keep)
		conn_close(c);
	return 0;
short_read:
	snprintf(err, errlen, "response from %s cut short", c->hosthdr);
	return -1;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int
httpc_request(struct httpc *c, const char *method, const char *path,
    const char *headers, const void *body, size_t len,
    struct httpc_response *resp, char *err, size_t errlen)
{
	char head[2048];
	int n, eof_early;

	n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s\r\n"
	    "Content-Length: %zu\r\n%s\r\n", method, path, c->hosthdr, len,
	    headers != NULL ? headers : "");
	if (n < 0 || (size_t)n >= sizeof(head)) {
		snprintf(err, errlen, "request headers too long");
		return -1;
	}
	c->final = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		int reused = c->fd != -1;

		eof_early = 0;
		if (c->fd == -1 && connect_to(c, err, errlen) == -1)
			return -1;
		if (send_all(c, head, (size_t)n) == -1 ||
		    (len > 0 && send_all(c, body, len) == -1)) {
			snprintf(err, errlen, "sending to %s: %s", c->hosthdr,
			    strerror(errno));
			eof_early = 1;	/* the server had closed it */
		} else if (read_response(c, resp, &eof_early, err, errlen) ==
		    0)
			return 0;
		conn_close(c);
		c->len = 0;
		/*
		 * A kept-alive connection that the server closed before
		 * answering (its idle timeout): once more on a new one. Any
		 * other failure (a timeout, an answer cut short) is the
		 * caller's to retry, visibly.
		 */
		if (!reused || !eof_early)
			return -1;
	}
	return -1;
}
