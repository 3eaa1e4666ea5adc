/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tls: see tls.h.
 *
 * The TLS 1.2 cipher list is the "intermediate" one of Mozilla's server
 * side TLS guidelines without the DHE suites (ECDHE only: forward secrecy
 * without finite-field parameters to keep). TLS 1.3 suites are OpenSSL's
 * defaults, all of them AEAD.
 */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#define TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls {
	SSL_CTX *ctx;
};

/* "what: OpenSSL's reason" from the error queue, which is then empty. */
static void
ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_error();
	char reason[256] = "unknown error";

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "%s: %s", what, reason);
}

static EVP_PKEY *
load_key(const char *path)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *pkey;

	if (fp == NULL) {
		ERR_raise_data(ERR_LIB_SYS, errno, "%s", strerror(errno));
		return NULL;
	}
	pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	return pkey;
}

static SSL_CTX *
ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *pkey;
	char what[1200];
	int ok;

	if (ctx == NULL) {
		ssl_error(err, errlen, "cannot make a TLS context");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		ssl_error(err, errlen, "cannot set the TLS versions and ciphers");
		goto fail;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		snprintf(what, sizeof(what), "%s: cannot load the certificate "
		    "chain (tls-cert, PEM)", cert);
		ssl_error(err, errlen, what);
		goto fail;
	}
	pkey = load_key(key);
	if (pkey == NULL) {
		snprintf(what, sizeof(what), "%s: cannot load the private key "
		    "(tls-key, PEM, not encrypted)", key);
		ssl_error(err, errlen, what);
		goto fail;
	}
	ok = SSL_CTX_use_PrivateKey(ctx, pkey) == 1 &&
	    SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(pkey);
	if (!ok) {
		snprintf(what, sizeof(what), "%s: the key is not the one of "
		    "the certificate in %s", key, cert);
		ssl_error(err, errlen, what);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls *
tls_new(const char *cert, const char *key, char *err, size_t errlen)
{
	struct tls *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ctx = ctx_new(cert, key, err, errlen);
	if (t->ctx == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

int
tls_reload(struct tls *t, const char *cert, const char *key, char *err,
    size_t errlen)
{
	SSL_CTX *ctx = ctx_new(cert, key, err, errlen);

	if (ctx == NULL)
		return -1;
	/* Open connections hold their own reference to the old context. */
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	return 0;
}

struct ssl_st *
tls_ssl_new(struct tls *t)
{
	return SSL_new(t->ctx);
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}
