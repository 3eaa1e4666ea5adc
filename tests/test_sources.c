/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sources: the sources file (good shapes, each bad shape with its line
 * number), token authentication and rotation, and service grants.
 *
 * Lines are made at run time from known tokens, so every digest in a test
 * belongs to a token the test can present.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sources.h"

/* ------------------------------------------------------------- helpers */

/* "sha256:" and the digest of token, as a sources file holds it. */
static void
digest_field(const char *token, char out[7 + 65])
{
	char hex[65];

	sources_digest_hex(token, strlen(token), hex);
	snprintf(out, 7 + 65, "sha256:%s", hex);
}

/*
 * Copies tmpl to out, replacing "@A", "@B" and "@C" with the digest fields
 * of the tokens "token-a", "token-b" and "token-c".
 */
static void
expand(const char *tmpl, char *out, size_t outlen)
{
	size_t w = 0;

	for (const char *p = tmpl; *p != '\0'; p++) {
		char field[7 + 65];

		if (p[0] == '@' && p[1] >= 'A' && p[1] <= 'C') {
			char token[] = "token-?";

			token[6] = (char)(p[1] - 'A' + 'a');
			digest_field(token, field);
			assert_true(w + strlen(field) < outlen);
			memcpy(out + w, field, strlen(field));
			w += strlen(field);
			p++;
			continue;
		}
		assert_true(w + 1 < outlen);
		out[w++] = *p;
	}
	out[w] = '\0';
}

/* An in-memory FILE *; fclose it before reading buf. */
struct capture {
	FILE *f;
	char *buf;
	size_t len;
};

static void
capture_begin(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

static void
capture_end(struct capture *c)
{
	assert_int_equal(fclose(c->f), 0);
	c->f = NULL;
}

static size_t
count_lines(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* Parses tmpl after expand(); errs receives the messages. */
static struct sources *
parse_expanded(const char *tmpl, struct capture *errs)
{
	char text[4096];
	struct sources *s;

	expand(tmpl, text, sizeof(text));
	capture_begin(errs);
	s = sources_parse(text, strlen(text), "test.sources", errs->f);
	capture_end(errs);
	return s;
}

static const struct source *
auth(const struct sources *s, const char *token)
{
	return sources_auth(s, token, strlen(token));
}

/* -------------------------------------------------------------- digests */

struct digest_case {
	const char *name;
	const char *data;
	const char *hex;
};

static const struct digest_case digest_cases[] = {
	{ "the SHA-256 of \"abc\" is the FIPS 180-2 vector", "abc",
	  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "the SHA-256 of nothing is the well-known empty digest", "",
	  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "the SHA-256 of \"test\" is the one in DESIGN.md's example", "test",
	  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" },
};

static void
test_digest_hex_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(digest_cases) / sizeof(digest_cases[0]);
	    i++) {
		const struct digest_case *c = &digest_cases[i];
		char hex[65];

		memset(hex, 'X', sizeof(hex));
		sources_digest_hex(c->data, strlen(c->data), hex);
		if (strcmp(hex, c->hex) != 0)
			fail_msg("%s: got %.65s", c->name, hex);
	}
}

/* ---------------------------------------------------------- good files */

static void
test_good_file_with_comments_tabs_and_crlf_parses(void **state)
{
	static const char tmpl[] =
	    "# NAME          TOKEN DIGEST        SERVICES IT MAY REPORT\n"
	    "\n"
	    "   \t  \n"
	    "dukcapil-salaman @A dukcapil.*\n"
	    "\tdpmptsp-gampil\t\t@B\tdpmptsp.izin-usaha,dpmptsp.pbg   \n"
	    "  # an indented comment\n"
	    "pajak.bapenda @C pajak.pbb # a comment after the patterns\r\n"
	    "\r\n";
	struct capture errs;
	struct sources *s = parse_expanded(tmpl, &errs);

	(void)state;
	if (s == NULL)
		fail_msg("a good file was refused:\n%s", errs.buf);
	assert_string_equal(errs.buf, "");
	assert_int_equal(sources_count(s), 3);
	assert_string_equal(source_name(auth(s, "token-a")),
	    "dukcapil-salaman");
	assert_string_equal(source_name(auth(s, "token-b")), "dpmptsp-gampil");
	assert_string_equal(source_name(auth(s, "token-c")), "pajak.bapenda");
	/* CRLF: the '\r' is not part of the last pattern. */
	assert_true(source_allows(auth(s, "token-c"), "pajak.pbb", 9));
	assert_true(source_allows(auth(s, "token-b"), "dpmptsp.pbg", 11));
	sources_free(s);
	free(errs.buf);
}

static void
test_upper_case_digest_is_accepted(void **state)
{
	char field[7 + 65], text[256];
	struct capture errs;
	struct sources *s;

	(void)state;
	digest_field("token-a", field);
	for (char *p = field + 7; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	snprintf(text, sizeof(text), "src %s x\n", field);
	capture_begin(&errs);
	s = sources_parse(text, strlen(text), "upper.sources", errs.f);
	capture_end(&errs);
	assert_non_null(s);
	assert_non_null(auth(s, "token-a"));
	sources_free(s);
	free(errs.buf);
}

static void
test_text_need_not_end_in_nul(void **state)
{
	char line[256], text[512];
	size_t len;
	struct capture errs;
	struct sources *s;

	(void)state;
	expand("last-line-without-newline @A x", line, sizeof(line));
	len = strlen(line);
	/* What follows len is garbage the parser must not read. */
	snprintf(text, sizeof(text), "%s !!! not a sources line", line);
	capture_begin(&errs);
	s = sources_parse(text, len, "mem", errs.f);
	capture_end(&errs);
	if (s == NULL)
		fail_msg("the bytes past len were read:\n%s", errs.buf);
	assert_int_equal(sources_count(s), 1);
	sources_free(s);
	free(errs.buf);
}

/* ----------------------------------------------------------- bad lines */

struct bad_case {
	const char *name;
	const char *line;	/* line 3, after two good lines */
	const char *want;	/* in the message */
};

#define HEX63 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"

static const struct bad_case bad_cases[] = {
	{ "a line with two fields is refused", "lonely @C",
	  "expected three fields" },
	{ "a line with four fields is refused", "src @C dukcapil.* extra",
	  "expected three fields" },
	{ "a space after a comma makes four fields", "src @C a, b",
	  "expected three fields" },
	{ "a name with '/' is refused", "bad/name @C x", "source name" },
	{ "a name over 63 characters is refused",
	  "n234567890123456789012345678901234567890123456789012345678901234 "
	  "@C x", "source name" },
	{ "a digest without sha256: is refused",
	  "src " HEX63 "d x", "sha256: and 64 hex digits" },
	{ "a sha1: digest is refused", "src sha1:" HEX63 "d x",
	  "sha256: and 64 hex digits" },
	{ "a short digest is refused", "src sha256:" HEX63 " x",
	  "sha256: and 64 hex digits" },
	{ "a long digest is refused", "src sha256:" HEX63 "dd x",
	  "sha256: and 64 hex digits" },
	{ "a digest with a non-hex character is refused",
	  "src sha256:" HEX63 "g x", "not a hex digit" },
	{ "a pattern with upper case is refused", "src @C Dukcapil.*",
	  "bad service pattern" },
	{ "an empty pattern between commas is refused", "src @C a,,b",
	  "bad service pattern" },
	{ "a trailing comma is refused", "src @C a,b,", "bad service pattern" },
	{ "a leading comma is refused", "src @C ,a", "bad service pattern" },
	{ "a '*' not at the end is refused", "src @C *x",
	  "bad service pattern" },
	{ "a '*' in the middle is refused", "src @C dukcapil.*.x",
	  "bad service pattern" },
	{ "an exact code starting with '.' is refused", "src @C .x",
	  "bad service pattern" },
	{ "a pattern longer than a service code is refused",
	  "src @C "
	  "a2345678901234567890123456789012345678901234567890123456789012345",
	  "bad service pattern" },
	{ "a second line with the same digest is refused, naming the first",
	  "copy @A y", "same token digest as source first" },
	{ "the same digest under the same name is still refused",
	  "first @A y", "same token digest as source first" },
};

static void
test_bad_line_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char tmpl[512];
		struct capture errs;
		struct sources *s;

		snprintf(tmpl, sizeof(tmpl), "first @A dukcapil.*\n"
		    "second @B *\n%s\n# after\n", c->line);
		s = parse_expanded(tmpl, &errs);
		if (s != NULL)
			fail_msg("%s: \"%s\" was accepted", c->name, c->line);
		if (strncmp(errs.buf, "test.sources:3: ", 16) != 0)
			fail_msg("%s: message does not start with "
			    "\"test.sources:3: \":\n%s", c->name, errs.buf);
		if (strstr(errs.buf, c->want) == NULL)
			fail_msg("%s: message lacks \"%s\":\n%s", c->name,
			    c->want, errs.buf);
		if (count_lines(errs.buf) != 1)
			fail_msg("%s: want exactly one message:\n%s", c->name,
			    errs.buf);
		free(errs.buf);
	}
}

static void
test_every_bad_line_is_reported(void **state)
{
	static const char tmpl[] =
	    "good @A x\n"
	    "bad/name @B x\n"
	    "# comment\n"
	    "short sha256:abcd x\n"
	    "upper @C X\n"
	    "twin @A y\n";
	struct capture errs;
	struct sources *s = parse_expanded(tmpl, &errs);

	(void)state;
	assert_null(s);
	assert_int_equal(count_lines(errs.buf), 4);
	assert_non_null(strstr(errs.buf, "test.sources:2: "));
	assert_non_null(strstr(errs.buf, "test.sources:4: "));
	assert_non_null(strstr(errs.buf, "test.sources:5: "));
	assert_non_null(strstr(errs.buf, "test.sources:6: "));
	free(errs.buf);
}

static void
test_nul_byte_in_a_line_is_reported(void **state)
{
	char line[256], text[512];
	struct capture errs;
	struct sources *s;
	size_t n;

	(void)state;
	expand("good @A x\n", line, sizeof(line));
	n = strlen(line);
	memcpy(text, line, n);
	memcpy(text + n, "bad\0line\n", 9);
	capture_begin(&errs);
	s = sources_parse(text, n + 9, "nul.sources", errs.f);
	capture_end(&errs);
	assert_null(s);
	assert_non_null(strstr(errs.buf, "nul.sources:2: "));
	assert_non_null(strstr(errs.buf, "NUL"));
	free(errs.buf);
}

static void
test_messages_never_hold_a_token_or_digest(void **state)
{
	static const char tmpl[] = "first @A x\ncopy @A y\nsrc @B Bad\n";
	char a[7 + 65], b[7 + 65];
	struct capture errs;
	struct sources *s = parse_expanded(tmpl, &errs);

	(void)state;
	assert_null(s);
	digest_field("token-a", a);
	digest_field("token-b", b);
	assert_null(strstr(errs.buf, a + 7));
	assert_null(strstr(errs.buf, b + 7));
	free(errs.buf);
}

/* ---------------------------------------------------------- from a file */

static void
test_load_reads_a_file_and_names_it_in_messages(void **state)
{
	const char *base = getenv("KANAL_TEST_TMP");
	char dir[1024], path[1200], text[512], where[1300];
	struct capture errs;
	struct sources *s;
	FILE *f;

	(void)state;
	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	assert_true(mkdir(base, 0700) == 0 || errno == EEXIST);
	snprintf(dir, sizeof(dir), "%s/test_sources.XXXXXX", base);
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sources.conf", dir);

	expand("a @A x\nb @B y\n", text, sizeof(text));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	capture_begin(&errs);
	s = sources_load(path, errs.f);
	capture_end(&errs);
	assert_non_null(s);
	assert_int_equal(sources_count(s), 2);
	sources_free(s);
	free(errs.buf);

	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# only a comment\nbroken line\n", f);
	assert_int_equal(fclose(f), 0);
	capture_begin(&errs);
	s = sources_load(path, errs.f);
	capture_end(&errs);
	assert_null(s);
	snprintf(where, sizeof(where), "%s:2: ", path);
	assert_non_null(strstr(errs.buf, where));
	free(errs.buf);

	assert_int_equal(unlink(path), 0);
	capture_begin(&errs);
	s = sources_load(path, errs.f);
	capture_end(&errs);
	assert_null(s);
	assert_non_null(strstr(errs.buf, path));
	assert_non_null(strstr(errs.buf, "cannot open"));
	free(errs.buf);
	assert_int_equal(rmdir(dir), 0);
}

/* -------------------------------------------------------- authentication */

struct auth_case {
	const char *name;
	const char *token;
	int zero_len;		/* present it with a length of 0 */
	const char *source;	/* expected name, or NULL */
};

static const struct auth_case auth_cases[] = {
	{ "the first token finds its source", "token-a", 0, "alpha" },
	{ "the second token finds its source", "token-b", 0, "beta" },
	{ "a wrong token finds nothing", "token-x", 0, NULL },
	{ "a token's prefix finds nothing", "token-", 0, NULL },
	{ "a token with a byte more finds nothing", "token-aa", 0, NULL },
	{ "an upper-case token finds nothing", "TOKEN-A", 0, NULL },
	{ "the digest itself is not a token", "@A", 0, NULL },
	{ "an empty token finds nothing", "", 0, NULL },
	{ "a length of zero finds nothing whatever the bytes", "token-a", 1,
	  NULL },
};

static void
test_auth_table(void **state)
{
	struct capture errs;
	struct sources *s = parse_expanded("alpha @A a.*\nbeta @B b.*\n",
	    &errs);

	(void)state;
	assert_non_null(s);
	for (size_t i = 0; i < sizeof(auth_cases) / sizeof(auth_cases[0]);
	    i++) {
		const struct auth_case *c = &auth_cases[i];
		char token[128];
		size_t len;
		const struct source *src;

		expand(c->token, token, sizeof(token));
		len = c->zero_len ? 0 : strlen(token);
		src = sources_auth(s, token, len);
		if (c->source == NULL && src != NULL)
			fail_msg("%s: \"%s\" authenticated as %s", c->name,
			    c->token, source_name(src));
		if (c->source != NULL && src == NULL)
			fail_msg("%s: \"%s\" did not authenticate", c->name,
			    c->token);
		if (c->source != NULL && strcmp(source_name(src), c->source)
		    != 0)
			fail_msg("%s: \"%s\" authenticated as %s, want %s",
			    c->name, c->token, source_name(src), c->source);
	}
	sources_free(s);
	free(errs.buf);
}

static void
test_rotation_two_tokens_of_one_source_both_work(void **state)
{
	struct capture errs;
	struct sources *s = parse_expanded(
	    "kiosk @A dukcapil.*\n"
	    "other @B dpmptsp.*\n"
	    "kiosk @C dukcapil.*,pajak.pbb\n", &errs);
	const struct source *old, *new;

	(void)state;
	if (s == NULL)
		fail_msg("the same name on two lines was refused:\n%s",
		    errs.buf);
	assert_int_equal(sources_count(s), 3);
	old = auth(s, "token-a");
	new = auth(s, "token-c");
	assert_non_null(old);
	assert_non_null(new);
	assert_string_equal(source_name(old), "kiosk");
	assert_string_equal(source_name(new), "kiosk");
	/* Each line keeps its own grants. */
	assert_false(source_allows(old, "pajak.pbb", 9));
	assert_true(source_allows(new, "pajak.pbb", 9));
	sources_free(s);
	free(errs.buf);
}

/* ---------------------------------------------------------------- grants */

struct allow_case {
	const char *name;
	const char *patterns;
	const char *service;
	int allowed;
};

static const struct allow_case allow_cases[] = {
	{ "an exact code allows that code", "dpmptsp.pbg", "dpmptsp.pbg", 1 },
	{ "an exact code does not allow a longer code",
	  "dpmptsp.pbg", "dpmptsp.pbg2", 0 },
	{ "an exact code does not allow a shorter code",
	  "dpmptsp.pbg", "dpmptsp.pb", 0 },
	{ "an exact code does not allow a prefix-extended code",
	  "dukcapil", "dukcapil.akta-lahir", 0 },
	{ "a prefix allows a code below it",
	  "dukcapil.*", "dukcapil.akta-lahir", 1 },
	{ "a prefix allows the prefix itself", "dukcapil.*", "dukcapil.", 1 },
	{ "a prefix does not allow a shorter string",
	  "dukcapil.*", "dukcapil", 0 },
	{ "a prefix does not allow a sibling", "dukcapil.*", "dukcapik.x", 0 },
	{ "a prefix without a dot matches plain string prefixes",
	  "duk*", "dukcapil.x", 1 },
	{ "'*' alone allows every service", "*", "anything.at-all", 1 },
	{ "'*' alone allows a one-letter service", "*", "a", 1 },
	{ "the second pattern of a list is used",
	  "dpmptsp.izin-usaha,dpmptsp.pbg", "dpmptsp.pbg", 1 },
	{ "a list allows nothing outside it",
	  "dpmptsp.izin-usaha,dpmptsp.pbg", "dpmptsp.imb", 0 },
	{ "a list mixing prefix and exact allows the exact code",
	  "dukcapil.*,pajak.pbb", "pajak.pbb", 1 },
	{ "matching is case-sensitive", "dukcapil.*", "DUKCAPIL.x", 0 },
};

static void
test_allow_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(allow_cases) / sizeof(allow_cases[0]);
	    i++) {
		const struct allow_case *c = &allow_cases[i];
		char tmpl[512];
		struct capture errs;
		struct sources *s;
		int got;

		snprintf(tmpl, sizeof(tmpl), "src @A %s\n", c->patterns);
		s = parse_expanded(tmpl, &errs);
		if (s == NULL)
			fail_msg("%s: patterns \"%s\" were refused:\n%s",
			    c->name, c->patterns, errs.buf);
		got = source_allows(auth(s, "token-a"), c->service,
		    strlen(c->service));
		if (got != c->allowed)
			fail_msg("%s: \"%s\" allows \"%s\" = %d, want %d",
			    c->name, c->patterns, c->service, got, c->allowed);
		sources_free(s);
		free(errs.buf);
	}
}

static void
test_allows_reads_only_len_bytes_of_the_service(void **state)
{
	struct capture errs;
	struct sources *s = parse_expanded("src @A dpmptsp.pbg\n", &errs);

	(void)state;
	assert_non_null(s);
	/* "dpmptsp.pbg" followed by bytes that are not part of it. */
	assert_true(source_allows(auth(s, "token-a"), "dpmptsp.pbgXYZ", 11));
	assert_false(source_allows(auth(s, "token-a"), "dpmptsp.pbgXYZ", 12));
	sources_free(s);
	free(errs.buf);
}

static void
test_free_null_is_a_no_op(void **state)
{
	(void)state;
	sources_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_hex_table),
		cmocka_unit_test(test_good_file_with_comments_tabs_and_crlf_parses),
		cmocka_unit_test(test_upper_case_digest_is_accepted),
		cmocka_unit_test(test_text_need_not_end_in_nul),
		cmocka_unit_test(test_bad_line_table),
		cmocka_unit_test(test_every_bad_line_is_reported),
		cmocka_unit_test(test_nul_byte_in_a_line_is_reported),
		cmocka_unit_test(test_messages_never_hold_a_token_or_digest),
		cmocka_unit_test(test_load_reads_a_file_and_names_it_in_messages),
		cmocka_unit_test(test_auth_table),
		cmocka_unit_test(test_rotation_two_tokens_of_one_source_both_work),
		cmocka_unit_test(test_allow_table),
		cmocka_unit_test(test_allows_reads_only_len_bytes_of_the_service),
		cmocka_unit_test(test_free_null_is_a_no_op),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
