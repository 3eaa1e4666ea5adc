/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httpc: a small blocking HTTP/1.1 client for kanalctl and the tests.
 *
 * One keep-alive connection to one http:// or https:// base URL; a
 * request that finds the connection closed by the server is sent again
 * once on a new one. Only what kanald answers is understood:
 * Content-Length bodies (and chunked, for robustness). Not thread-safe:
 * one httpc per thread.
 *
 * https:// is TLS 1.2 or later through OpenSSL, and the server is always
 * verified: its chain against the system trust store or a given CA file,
 * and its name (DNS name, or the IP address of an IP literal) against the
 * certificate. There is deliberately no way to turn verification off: a
 * client that sends its bearer token to whoever answers hands the token
 * to anyone on the path. SNI is sent for names, not for IP literals.
 * OpenSSL writes with write(2): SIGPIPE is blocked around TLS I/O in the
 * calling thread, so a reset connection is an error, not a signal.
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

/* A base URL taken apart. */
struct httpc_url {
	int tls;		/* https:// */
	char host[256];		/* a name, or an IP literal without [] */
	char port[8];		/* digits; 80 or 443 by default */
};

/*
 * Parses "http[s]://HOST[:PORT][/...]", IPv6 as [::1]; the path is
 * ignored. Returns 0, or -1 with a message in err naming what is wrong.
 * Can be called without an httpc (loadgen, tests).
 */
int httpc_url_parse(const char *url, struct httpc_url *u, char *err,
    size_t errlen);

/*
 * url as httpc_url_parse takes it. cacert: for https://, a PEM file of the
 * CA certificate(s) to verify the server by instead of the system trust
 * store (NULL or "": the system's); ignored for http://. NULL with a message in
 * err when the URL or the CA file can't be used. Nothing is connected yet.
 */
struct httpc *httpc_new_ca(const char *url, const char *cacert,
    unsigned timeout_ms, char *err, size_t errlen);
/* httpc_new_ca with the system trust store. */
struct httpc *httpc_new(const char *url, unsigned timeout_ms, char *err,
    size_t errlen);
/*
 * 1 when the last httpc_request failed in a way that trying again cannot
 * fix: the server's certificate was refused, or the TLS handshake failed
 * on a protocol error (a plain-HTTP server, no common TLS version).
 */
int httpc_error_is_final(const struct httpc *c);
/* How many connections (TCP, and TLS handshakes for https) it has made. */
unsigned httpc_connects(const struct httpc *c);
/* httpc_free(NULL) is a no-op. */
void httpc_free(struct httpc *c);

/*
 * Sends one request. headers: extra header lines, each ending in "\r\n",
 * or NULL. Returns 0 with *resp filled for any HTTP status, -1 with a
 * message in err on a transport error; a TLS failure says which, e.g.
 * "TLS to 127.0.0.1:8443: certificate verify failed: hostname mismatch".
 */
int httpc_request(struct httpc *c, const char *method, const char *path,
    const char *headers, const void *body, size_t len,
    struct httpc_response *resp, char *err, size_t errlen);

#endif
