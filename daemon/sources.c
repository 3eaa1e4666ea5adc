/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sources: see sources.h for the file format.
 */
#include "sources.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define NAME_MAX_LEN 63
#define SERVICE_MAX_LEN 64

struct pattern {
	char *text;
	size_t len;
	int prefix;		/* text ended in '*', which is not in len */
};

struct source {
	char name[NAME_MAX_LEN + 1];
	unsigned char digest[SHA256_DIGEST_LENGTH];
	struct pattern *patterns;
	size_t npatterns;
};

struct sources {
	struct source *v;
	size_t n;
};

void
sources_digest_hex(const void *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[SHA256_DIGEST_LENGTH];

	SHA256(data, len, d);
	for (size_t i = 0; i < sizeof(d); i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
is_service_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
	    c == '_' || c == '-';
}

/* Service-code characters, plus a final '*'. */
static int
pattern_parse(const char *s, size_t len, struct pattern *p)
{
	int prefix = 0;

	if (len > 0 && s[len - 1] == '*') {
		prefix = 1;
		len--;
	}
	if (len == 0 && !prefix)
		return -1;
	if (len > SERVICE_MAX_LEN)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!is_service_char((unsigned char)s[i]))
			return -1;
	if (len > 0 && !prefix && (s[0] == '.' || s[0] == '_' || s[0] == '-'))
		return -1;
	p->text = strndup(s, len);
	if (p->text == NULL)
		return -1;
	p->len = len;
	p->prefix = prefix;
	return 0;
}

static void
source_clear(struct source *src)
{
	for (size_t i = 0; i < src->npatterns; i++)
		free(src->patterns[i].text);
	free(src->patterns);
	src->patterns = NULL;
	src->npatterns = 0;
}

void
sources_free(struct sources *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		source_clear(&s->v[i]);
	free(s->v);
	free(s);
}

size_t
sources_count(const struct sources *s)
{
	return s->n;
}

/* Splits line into at most 4 whitespace-separated fields. */
static int
split_fields(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (n == max)
			return max + 1;
		f[n++] = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		if (*p != '\0')
			*p++ = '\0';
	}
	return n;
}

/* Parses one non-comment line into *src; on error returns -1 and a message. */
static int
line_parse(char *line, struct source *src, const char **why)
{
	char *f[4];
	int nf = split_fields(line, f, 3);
	const char *hex;
	size_t namelen;
	char *pat;

	if (nf != 3) {
		*why = "expected three fields: NAME sha256:DIGEST PATTERNS "
		    "(make one with kanalctl token new)";
		return -1;
	}
	namelen = strlen(f[0]);
	if (namelen == 0 || namelen > NAME_MAX_LEN || strspn(f[0],
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789._-") != namelen) {
		*why = "source name must be 1 to 63 letters, digits, '.', '_' "
		    "or '-'";
		return -1;
	}
	memcpy(src->name, f[0], namelen + 1);
	if (strncmp(f[1], "sha256:", 7) != 0 || strlen(f[1]) != 7 + 64) {
		*why = "second field must be sha256: and 64 hex digits, the "
		    "token's digest (never the token itself)";
		return -1;
	}
	hex = f[1] + 7;
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		int hi = hexval((unsigned char)hex[2 * i]);
		int lo = hexval((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			*why = "digest holds a character that is not a hex digit";
			return -1;
		}
		src->digest[i] = (unsigned char)(hi << 4 | lo);
	}
	pat = f[2];
	for (;;) {
		char *comma = strchr(pat, ',');
		size_t len = comma != NULL ? (size_t)(comma - pat) : strlen(pat);
		struct pattern *grown;

		grown = realloc(src->patterns,
		    (src->npatterns + 1) * sizeof(*grown));
		if (grown == NULL) {
			*why = "out of memory";
			return -1;
		}
		src->patterns = grown;
		if (pattern_parse(pat, len, &src->patterns[src->npatterns])
		    == -1) {
			*why = "bad service pattern: use service codes "
			    "([a-z0-9][a-z0-9._-]*) or prefixes ending in '*', "
			    "separated by commas without spaces";
			return -1;
		}
		src->npatterns++;
		if (comma == NULL)
			break;
		pat = comma + 1;
	}
	return 0;
}

struct sources *
sources_parse(const char *text, size_t len, const char *name, FILE *errs)
{
	struct sources *s;
	size_t pos = 0, cap = 0;
	unsigned lineno = 0;
	int problems = 0;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t linelen = nl != NULL ? (size_t)(nl - (text + pos))
		    : len - pos;
		char *line, *hash;
		const char *why = NULL;
		struct source src;

		lineno++;
		line = strndup(text + pos, linelen);
		pos += linelen + (nl != NULL);
		if (line == NULL)
			goto fail;
		if (strlen(line) != linelen) {
			fprintf(errs, "%s:%u: line holds a NUL byte; the file "
			    "must be text\n", name, lineno);
			problems++;
			free(line);
			continue;
		}
		hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (line[strspn(line, " \t")] == '\0') {
			free(line);
			continue;
		}
		memset(&src, 0, sizeof(src));
		if (line_parse(line, &src, &why) == -1) {
			fprintf(errs, "%s:%u: %s\n", name, lineno, why);
			problems++;
			source_clear(&src);
			free(line);
			continue;
		}
		free(line);
		for (size_t i = 0; i < s->n; i++) {
			if (memcmp(s->v[i].digest, src.digest,
			    sizeof(src.digest)) == 0) {
				fprintf(errs, "%s:%u: same token digest as "
				    "source %s; give each line its own token\n",
				    name, lineno, s->v[i].name);
				problems++;
				source_clear(&src);
				goto next;
			}
		}
		if (s->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct source *v = realloc(s->v, ncap * sizeof(*v));
			if (v == NULL) {
				source_clear(&src);
				goto fail;
			}
			s->v = v;
			cap = ncap;
		}
		s->v[s->n++] = src;
next:		;
	}
	if (problems > 0)
		goto fail;
	return s;
fail:
	if (problems == 0)
		fprintf(errs, "%s: out of memory\n", name);
	sources_free(s);
	return NULL;
}

struct sources *
sources_load(const char *path, FILE *errs)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	struct sources *s;

	f = fopen(path, "r");
	if (f == NULL) {
		fprintf(errs, "%s: cannot open sources file: %s; set "
		    "--sources (make a line with kanalctl token new)\n", path,
		    strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			char *nbuf;
			cap = cap ? cap * 2 : 4096;
			if (cap > (64u << 20)) {
				fprintf(errs, "%s: larger than 64 MiB\n", path);
				goto fail;
			}
			nbuf = realloc(buf, cap);
			if (nbuf == NULL) {
				fprintf(errs, "%s: out of memory\n", path);
				goto fail;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(errs, "%s: read error: %s\n", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	s = sources_parse(buf, len, path, errs);
	free(buf);
	return s;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

const struct source *
sources_auth(const struct sources *s, const char *token, size_t len)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	const struct source *found = NULL;

	if (len == 0)
		return NULL;
	SHA256((const unsigned char *)token, len, d);
	/* No early exit: every digest is compared, each in constant time. */
	for (size_t i = 0; i < s->n; i++) {
		int same = CRYPTO_memcmp(s->v[i].digest, d, sizeof(d)) == 0;
		if (same)
			found = &s->v[i];
	}
	return found;
}

int
source_allows(const struct source *src, const char *service, size_t len)
{
	for (size_t i = 0; i < src->npatterns; i++) {
		const struct pattern *p = &src->patterns[i];

		if (p->prefix) {
			if (len >= p->len && memcmp(service, p->text, p->len)
			    == 0)
				return 1;
		} else if (len == p->len && memcmp(service, p->text, len) == 0)
			return 1;
	}
	return 0;
}

const char *
source_name(const struct source *src)
{
	return src->name;
}
