/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_reach: the city's reach key and what is derived from it (reach.h),
 * on real files:
 *
 *  - keygen makes a 0600 file of 32 bytes, never overwrites one, and two
 *    keys differ;
 *  - a key file of the wrong size, mode, type or owner is refused with
 *    "what, what to do" (the owner case needs root to chown; it is
 *    skipped, and says so, for a normal user);
 *  - the key id and the hash are fixed by the file's bytes: the same file
 *    gives the same values, another file others, and the hash is not the
 *    plain SipHash of the citizen_ref under any key taken straight from
 *    the file;
 *  - a desa code is cut to its kecamatan; the WIB day turns at 17:00 UTC;
 *  - kanalctl reach answers bad arguments with usage (exit 2) and a file
 *    it cannot use with "FILE: what" (exit 1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "reach.h"
#include "siphash.h"

static void
write_file(const char *path, const void *p, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_keygen_makes_a_private_32_byte_file_once(void **state)
{
	char dir[512], a[600], b[600], err[512];
	struct reach_key ka, kb;
	struct stat st;

	(void)state;
	th_tmpdir("reach-keygen", dir, sizeof(dir));
	snprintf(a, sizeof(a), "%s/a.key", dir);
	snprintf(b, sizeof(b), "%s/b.key", dir);
	umask(022);
	assert_int_equal(reach_key_generate(a, err, sizeof(err)), 0);
	assert_int_equal(stat(a, &st), 0);
	assert_int_equal(st.st_size, REACH_KEY_FILE_BYTES);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Never overwritten. */
	assert_int_equal(reach_key_generate(a, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exists already"));
	assert_int_equal(stat(a, &st), 0);
	assert_int_equal(st.st_size, REACH_KEY_FILE_BYTES);
	assert_int_equal(reach_key_generate(b, err, sizeof(err)), 0);
	assert_int_equal(reach_key_load(a, &ka, err, sizeof(err)), 0);
	assert_int_equal(reach_key_load(b, &kb, err, sizeof(err)), 0);
	assert_true(ka.id != kb.id);
	assert_memory_not_equal(ka.hash_key, kb.hash_key, 16);
	assert_true(reach_hash(&ka, "r-000001", 8) !=
	    reach_hash(&kb, "r-000001", 8));
}

struct bad_key {
	const char *what;
	size_t len;
	mode_t mode;
	const char *want;	/* in the message */
};

static const struct bad_key bad_keys[] = {
	{ "empty", 0, 0600, "has 0 bytes, not 32" },
	{ "31 bytes", 31, 0600, "has 31 bytes, not 32" },
	{ "33 bytes", 33, 0600, "has 33 bytes, not 32" },
	{ "a hex text of the key", 65, 0600, "not text" },
	{ "readable by the group", 32, 0640, "mode 0640" },
	{ "readable by all", 32, 0644, "chmod 600" },
	{ "writable by others", 32, 0602, "mode 0602" },
};

static void
test_bad_key_files_are_refused_with_what_to_do(void **state)
{
	char dir[512], path[600], err[512];
	uint8_t bytes[80];
	struct reach_key k;

	(void)state;
	th_tmpdir("reach-bad", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/city.key", dir);
	memset(bytes, 7, sizeof(bytes));
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		const struct bad_key *c = &bad_keys[i];

		write_file(path, bytes, c->len, c->mode);
		err[0] = '\0';
		if (reach_key_load(path, &k, err, sizeof(err)) != -1)
			fail_msg("%s: accepted", c->what);
		if (strstr(err, c->want) == NULL)
			fail_msg("%s: \"%s\" does not say \"%s\"", c->what, err,
			    c->want);
	}
	/* Missing: says how to make one. */
	unlink(path);
	assert_int_equal(reach_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "kanalctl reach keygen"));
	/* A directory, and a symbolic link (not followed). */
	assert_int_equal(reach_key_load(dir, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	write_file(path, bytes, 32, 0600);
	{
		char link[700];

		snprintf(link, sizeof(link), "%s/link.key", dir);
		unlink(link);
		assert_int_equal(symlink(path, link), 0);
		assert_int_equal(reach_key_load(link, &k, err, sizeof(err)), -1);
	}
	/* The good one loads. */
	assert_int_equal(reach_key_load(path, &k, err, sizeof(err)), 0);
}

static void
test_a_key_owned_by_another_user_is_refused(void **state)
{
	char dir[512], path[600], err[512];
	uint8_t bytes[32] = { 1 };
	struct reach_key k;

	(void)state;
	if (geteuid() != 0) {
		fprintf(stderr, "skipped: chown to another user needs root\n");
		skip();
	}
	th_tmpdir("reach-owner", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/city.key", dir);
	write_file(path, bytes, sizeof(bytes), 0600);
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(reach_key_load(path, &k, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "owned by uid 65534"));
	assert_non_null(strstr(err, "chown"));
}

/*
 * The values come from the file's bytes alone, and the hash key is
 * derived: neither half of the file is used as the SipHash key directly.
 */
static void
test_key_id_and_hash_are_derived_from_the_file(void **state)
{
	char dir[512], path[600], err[512];
	uint8_t bytes[32];
	struct reach_key k1, k2;
	const char *ref = "r-000042";

	(void)state;
	th_tmpdir("reach-derive", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/city.key", dir);
	for (int i = 0; i < 32; i++)
		bytes[i] = (uint8_t)(i * 37 + 1);
	write_file(path, bytes, sizeof(bytes), 0600);
	assert_int_equal(reach_key_load(path, &k1, err, sizeof(err)), 0);
	assert_int_equal(reach_key_load(path, &k2, err, sizeof(err)), 0);
	assert_true(k1.id == k2.id);
	assert_true(reach_hash(&k1, ref, 8) == reach_hash(&k2, ref, 8));
	assert_true(reach_hash(&k1, ref, 8) != reach_hash(&k1, "r-000043", 8));
	assert_true(reach_hash(&k1, ref, 8) != siphash24(bytes, ref, 8));
	assert_true(reach_hash(&k1, ref, 8) != siphash24(bytes + 16, ref, 8));
	/* The key id is not the first bytes of the hash key. */
	{
		uint64_t head = 0;

		for (int i = 0; i < 8; i++)
			head = head << 8 | k1.hash_key[i];
		assert_true((uint64_t)k1.id != head);
	}
	bytes[31] ^= 1;
	write_file(path, bytes, sizeof(bytes), 0600);
	assert_int_equal(reach_key_load(path, &k2, err, sizeof(err)), 0);
	assert_true(k1.id != k2.id);
	assert_true(reach_hash(&k1, ref, 8) != reach_hash(&k2, ref, 8));
}

static void
test_region_is_cut_to_the_kecamatan(void **state)
{
	static const struct {
		const char *code;
		size_t want;
	} cases[] = {
		{ "32", 2 },
		{ "32.73", 5 },
		{ "32.73.01", 8 },
		{ "32.73.01.1001", 8 },
		{ "32.73.01.2001", 8 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(reach_region_len(cases[i].code,
		    strlen(cases[i].code)), cases[i].want);
}

static void
test_the_wib_day_turns_at_17_utc(void **state)
{
	/* 2026-11-30T16:59:59.999Z is 23:59:59.999 WIB on 30 November. */
	const int64_t last = 1796057999999LL;
	const int32_t nov30 = 20787;	/* days from 1970-01-01 to 2026-11-30 */

	(void)state;
	assert_int_equal(reach_wib_day(last), nov30);
	assert_int_equal(reach_wib_day(last + 1), nov30 + 1);
	assert_int_equal(reach_wib_day(0), 0);
	assert_int_equal(reach_wib_day(17 * 3600 * 1000LL - 1), 0);
	assert_int_equal(reach_wib_day(17 * 3600 * 1000LL), 1);
}

/* kanalctl reach: its usage errors, help and failures, as a table. */
static void
test_kanalctl_reach_arguments(void **state)
{
	static const struct {
		const char *args[4];
		int rc;
		const char *say;	/* in stdout+stderr */
	} cases[] = {
		{ { NULL }, 2, "usage: kanalctl reach keygen FILE" },
		{ { "keygen", NULL }, 2, "see --help" },
		{ { "check", NULL }, 2, "see --help" },
		{ { "rotate", "x", NULL }, 2, "see --help" },
		{ { "keygen", "a", "b", NULL }, 2, "see --help" },
		{ { "--help", NULL }, 0, "Rotation: docs/operations.md" },
		{ { "check", "/nonexistent/city.key", NULL }, 1,
		  "/nonexistent/city.key: cannot open the reach key" },
		{ { "keygen", "/nonexistent/city.key", NULL }, 1,
		  "/nonexistent/city.key: cannot create it" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char cmd[1024], out[4096];
		const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
		size_t o;

		o = (size_t)snprintf(cmd, sizeof(cmd), "'%s' reach",
		    th_env("KANALCTL"));
		for (int a = 0; a < 4 && cases[i].args[a] != NULL; a++)
			o += (size_t)snprintf(cmd + o, sizeof(cmd) - o, " '%s'",
			    cases[i].args[a]);
		snprintf(cmd + o, sizeof(cmd) - o, " 2>&1");
		if (th_run(out, sizeof(out), argv) != cases[i].rc ||
		    strstr(out, cases[i].say) == NULL)
			fail_msg("case %zu (%s): want exit %d and \"%s\", got: %s",
			    i, cmd, cases[i].rc, cases[i].say, out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keygen_makes_a_private_32_byte_file_once),
		cmocka_unit_test(test_bad_key_files_are_refused_with_what_to_do),
		cmocka_unit_test(test_a_key_owned_by_another_user_is_refused),
		cmocka_unit_test(test_key_id_and_hash_are_derived_from_the_file),
		cmocka_unit_test(test_region_is_cut_to_the_kecamatan),
		cmocka_unit_test(test_the_wib_day_turns_at_17_utc),
		cmocka_unit_test(test_kanalctl_reach_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
