/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc: see httpc.h.
 */
#include "httpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct httpc {
	char host[256];
	char port[8];
	char hosthdr[300];
	unsigned timeout_ms;
	int fd;
	char *buf;		/* received bytes */
	size_t len, cap;
	char *body;
	size_t body_cap;
};

struct httpc *
httpc_new(const char *url, unsigned timeout_ms, char *err, size_t errlen)
{
	struct httpc *c;
	const char *p, *hend, *pstart;
	size_t hlen, plen;

	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "URL must start with http:// (got %s)",
		    url);
		return NULL;
	}
	p = url + 7;
	if (*p == '[') {
		hend = strchr(p, ']');
		if (hend == NULL) {
			snprintf(err, errlen, "bad IPv6 address in %s", url);
			return NULL;
		}
		p++;
		hlen = (size_t)(hend - p);
		pstart = hend + 1;
	} else {
		hlen = strcspn(p, ":/");
		pstart = p + hlen;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	if (hlen == 0 || hlen >= sizeof(c->host)) {
		snprintf(err, errlen, "no host in %s", url);
		free(c);
		return NULL;
	}
	memcpy(c->host, p, hlen);
	if (*pstart == ':') {
		plen = strspn(pstart + 1, "0123456789");
		if (plen == 0 || plen >= sizeof(c->port)) {
			snprintf(err, errlen, "bad port in %s", url);
			free(c);
			return NULL;
		}
		memcpy(c->port, pstart + 1, plen);
	} else {
		strcpy(c->port, "80");
	}
	snprintf(c->hosthdr, sizeof(c->hosthdr), strchr(c->host, ':') ?
	    "[%s]:%s" : "%s:%s", c->host, c->port);
	return c;
}

void
httpc_free(struct httpc *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
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

	r = getaddrinfo(c->host, c->port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "%s: %s", c->host, gai_strerror(r));
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
	return 0;
}

static int
send_all(int fd, const void *p, size_t len)
{
	const char *s = p;

	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
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
		n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
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
	if (v != NULL)
		clen = strtoul(v, NULL, 10);
	else if (!chunked)
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
			n = strtoul(c->buf + pos, NULL, 16);
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
	if (!keep) {
		close(c->fd);
		c->fd = -1;
	}
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
	for (int attempt = 0; attempt < 2; attempt++) {
		int reused = c->fd != -1;

		if (c->fd == -1 && connect_to(c, err, errlen) == -1)
			return -1;
		if (send_all(c->fd, head, (size_t)n) == 0 &&
		    (len == 0 || send_all(c->fd, body, len) == 0) &&
		    read_response(c, resp, &eof_early, err, errlen) == 0)
			return 0;
		if (errno == 0 || err[0] == '\0')
			snprintf(err, errlen, "sending to %s: %s", c->hosthdr,
			    strerror(errno));
		close(c->fd);
		c->fd = -1;
		c->len = 0;
		/* A kept-alive connection the server closed: once more. */
		if (!reused)
			return -1;
	}
	return -1;
}
