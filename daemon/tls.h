/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls: the server side of HTTPS, an OpenSSL context made from a PEM
 * certificate chain and its private key.
 *
 * Settings: TLS 1.2 at least, the server picks the cipher (ECDHE with
 * AES-GCM or ChaCha20-Poly1305 for TLS 1.2; TLS 1.3's own suites), no
 * compression, no renegotiation, no session tickets (nothing to rotate).
 * A context is reference-counted by OpenSSL: each connection's SSL holds
 * the context it was made from, so tls_reload can put a new one in place
 * for new connections while those already open keep theirs.
 *
 * The loop thread alone uses a struct tls.
 */
#ifndef KANAL_TLS_H
#define KANAL_TLS_H

#include <stddef.h>

struct tls;
struct ssl_st;

/*
 * Loads cert and key and checks that the key is the certificate's. NULL
 * with the reason in err ("FILE: what is wrong") when they do not load or
 * do not match.
 */
struct tls *tls_new(const char *cert, const char *key, char *err,
    size_t errlen);

/*
 * Loads cert and key again into a new context for new connections. On
 * error -1 with the reason in err, and the old context stays in use.
 */
int tls_reload(struct tls *t, const char *cert, const char *key, char *err,
    size_t errlen);

/* A new server-side SSL for one connection, or NULL (out of memory). */
struct ssl_st *tls_ssl_new(struct tls *t);

/* tls_free(NULL) is a no-op. Connections still open keep their context. */
void tls_free(struct tls *t);

#endif
