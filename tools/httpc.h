/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc: a small blocking HTTP/1.1 client for kanalctl and the tests.
 *
 * One keep-alive connection to one http:// base URL; a request that finds
 * the connection closed by the server is sent again once on a new one.
 * Only what kanald answers is understood: Content-Length bodies (and
 * chunked, for robustness). Not thread-safe: one httpc per thread.
 */
#ifndef KANAL_HTTPC_H
#define KANAL_HTTPC_H

#include <stddef.h>

struct httpc;

struct httpc_response {
	int status;
	char content_type[128];
	char retry_after[16];
	char *body;		/* NUL-terminated; owned by the httpc, valid */
	size_t len;		/* until its next request */
};

/*
 * url is "http://HOST:PORT" (IPv6 as [::1]); a path in it is ignored.
 * NULL with a message in err when the URL can't be used.
 */
struct httpc *httpc_new(const char *url, unsigned timeout_ms, char *err,
    size_t errlen);
/* httpc_free(NULL) is a no-op. */
void httpc_free(struct httpc *c);

/*
 * Sends one request. headers: extra header lines, each ending in "\r\n",
 * or NULL. Returns 0 with *resp filled for any HTTP status, -1 with a
 * message in err on a transport error.
 */
int httpc_request(struct httpc *c, const char *method, const char *path,
    const char *headers, const void *body, size_t len,
    struct httpc_response *resp, char *err, size_t errlen);

#endif
