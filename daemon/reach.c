/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reach: see reach.h.
 */
#include "reach.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "fsutil.h"
#include "siphash.h"

#define MS_PER_DAY 86400000LL
#define WIB_OFFSET_MS (7 * 3600 * 1000LL)

static const char hash_label[] = "kanal reach hash key v1";
static const char id_label[] = "kanal reach key id v1";

static void
derive(const char *label, const uint8_t file[REACH_KEY_FILE_BYTES],
    uint8_t out[SHA256_DIGEST_LENGTH])
{
	uint8_t msg[64 + REACH_KEY_FILE_BYTES];
	size_t n = strlen(label);

	memcpy(msg, label, n);
	memcpy(msg + n, file, REACH_KEY_FILE_BYTES);
	SHA256(msg, n + REACH_KEY_FILE_BYTES, out);
	OPENSSL_cleanse(msg, sizeof(msg));
}

int
reach_key_load(const char *path, struct reach_key *key, char *err,
    size_t errlen)
{
	uint8_t file[REACH_KEY_FILE_BYTES + 1], d[SHA256_DIGEST_LENGTH];
	struct stat st;
	ssize_t n;
	uint64_t id = 0;
	int fd;

	/* O_NONBLOCK: a FIFO named as the key must not hang the start. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1) {
		snprintf(err, errlen, "cannot open the reach key: %s; make one "
		    "with `kanalctl reach keygen %s`, or leave reach-key-file "
		    "empty to run with reach off", strerror(errno), path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "the reach key is not a regular file; "
		    "point reach-key-file at the file kanalctl reach keygen "
		    "made");
		goto fail;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "the reach key is owned by uid %u, not by "
		    "kanald's user (uid %u); chown it to that user (the key "
		    "must be readable by kanald alone)", (unsigned)st.st_uid,
		    (unsigned)geteuid());
		goto fail;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "the reach key has mode %04o: group or "
		    "others may read it; chmod 600 it (and treat the key as "
		    "leaked if others did read it: see docs/operations.md, "
		    "rotating the reach key)", (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size != REACH_KEY_FILE_BYTES) {
		snprintf(err, errlen, "the reach key has %lld bytes, not %d; "
		    "make a new one with `kanalctl reach keygen FILE` (a key is "
		    "32 random bytes, not text)", (long long)st.st_size,
		    REACH_KEY_FILE_BYTES);
		goto fail;
	}
	n = read(fd, file, sizeof(file));
	if (n != REACH_KEY_FILE_BYTES) {
		snprintf(err, errlen, "cannot read the reach key: %s",
		    n == -1 ? strerror(errno) : "it changed size while read");
		goto fail;
	}
	close(fd);
	derive(hash_label, file, d);
	memcpy(key->hash_key, d, sizeof(key->hash_key));
	derive(id_label, file, d);
	for (int i = 0; i < 8; i++)
		id = id << 8 | d[i];
	key->id = (int64_t)id;
	OPENSSL_cleanse(file, sizeof(file));
	OPENSSL_cleanse(d, sizeof(d));
	return 0;
fail:
	OPENSSL_cleanse(file, sizeof(file));
	close(fd);
	return -1;
}

int
reach_key_generate(const char *path, char *err, size_t errlen)
{
	uint8_t file[REACH_KEY_FILE_BYTES];
	char dir[4096];
	size_t got = 0;
	int fd;

	while (got < sizeof(file)) {
		ssize_t n = getrandom(file + got, sizeof(file) - got, 0);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "cannot read random bytes: %s",
			    strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		snprintf(err, errlen, errno == EEXIST ? "it exists already; a "
		    "key is never overwritten: remove it first if you really "
		    "mean to replace it (see docs/operations.md, rotating the "
		    "reach key)" : "cannot create it: %s", strerror(errno));
		OPENSSL_cleanse(file, sizeof(file));
		return -1;
	}
	/* The umask may have taken bits away, never added: still 0600. */
	if (fs_write_all(fd, file, sizeof(file)) == -1 || fsync(fd) == -1) {
		snprintf(err, errlen, "cannot write it: %s", strerror(errno));
		OPENSSL_cleanse(file, sizeof(file));
		close(fd);
		unlink(path);
		return -1;
	}
	OPENSSL_cleanse(file, sizeof(file));
	close(fd);
	snprintf(dir, sizeof(dir), "%s", path);
	if (fs_sync_dir(dirname(dir)) == -1) {
		snprintf(err, errlen, "written, but its directory could not be "
		    "synced: %s", strerror(errno));
		return -1;
	}
	return 0;
}

uint64_t
reach_hash(const struct reach_key *key, const void *ref, size_t len)
{
	return siphash24(key->hash_key, ref, len);
}

size_t
reach_region_len(const char *region, size_t len)
{
	int dots = 0;

	for (size_t i = 0; i < len; i++)
		if (region[i] == '.' && ++dots == 3)
			return i;
	return len;
}

int32_t
reach_wib_day(int64_t ms)
{
	return (int32_t)((ms + WIB_OFFSET_MS) / MS_PER_DAY);
}
