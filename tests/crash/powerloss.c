/* SPDX-License-Identifier: Apache-2.0 */
/*
 * powerloss: an LD_PRELOAD shim that turns a crash of the process into a
 * power loss for chosen files.
 *
 *   LD_PRELOAD=libkanal_powerloss.so KANAL_POWERLOSS_MATCH=.wal,batches.idx \
 *       kanald ...
 *
 * WHAT IT MODELS
 *
 * SIGKILL loses nothing that write(2) returned for: the page cache keeps it
 * and the kernel writes it back later. A power loss loses every byte that
 * was not made durable by fsync/fdatasync. With this shim, the bytes
 * written to a held file stay in the process's memory until the program
 * syncs that file descriptor; only then are they written to the real file
 * and the real sync called. SIGKILL then loses exactly what a power loss
 * would, so a missing or misplaced fsync in the program loses data in a
 * crash test, where with plain SIGKILL it would go unnoticed.
 *
 * A file is held when it is opened for writing (open, open64, openat,
 * openat64, creat, creat64) by a path that ends with one of the
 * comma-separated suffixes in KANAL_POWERLOSS_MATCH (unset or empty: the
 * shim holds nothing and only passes calls on). On a held descriptor:
 *
 * - write, writev, pwrite, pwrite64 succeed at once and keep the bytes in
 *   memory: at the end of the file for O_APPEND descriptors (pwrite too, as
 *   Linux does), else at the file offset (moved on with a real lseek) or
 *   at pwrite's offset;
 * - fsync, fdatasync write the held bytes to the real file, in the order
 *   they were written, then call the real sync; a real write error drops
 *   the rest (as the kernel drops dirty pages whose writeback failed) and
 *   the sync fails with it;
 * - ftruncate, ftruncate64 drop held bytes at or past the new length; a length below
 *   what is on the real file cuts the real file at once; a length past the
 *   end is held, as zeros;
 * - close drops the held bytes: they were never made durable.
 *
 * KANAL_POWERLOSS_TORN=P (0-100, default 0): on each held write, with
 * probability P %, a random prefix of the bytes held on that descriptor is
 * written through to the real file at once (not synced): the part of an
 * unsynced write that the disk had already stored when the power went. A
 * crash then leaves a torn tail, as real disks do. KANAL_POWERLOSS_SEED
 * seeds its choices (default: the process id).
 *
 * KANAL_POWERLOSS_SYNC_DELAY_US=N (default 0): fsync and fdatasync of a
 * held descriptor first wait N microseconds, the bytes still held: a
 * slower disk. A program that writes and syncs at once (kanald's WAL
 * writer) holds unsynced bytes for microseconds only; the delay widens
 * that window so that kills at random moments land in it, and lose (or
 * tear) what was written but not yet synced.
 *
 * WHAT IT DOES NOT MODEL
 *
 * - Anything inside a synced range: a sync is all or nothing here, never
 *   reordered or partly lost; held bytes are never reordered either.
 * - Directory entries and metadata: open(O_CREAT), O_TRUNC, rename,
 *   unlink, mkdir and the size change of a cutting ftruncate are real at
 *   once, as if the directory had been synced.
 * - Reads: read, mmap, stat and fstat see only the real file (what was
 *   synced or written through), not the held bytes, even in the process
 *   that wrote them. kanald reads its WAL only up to the last synced
 *   position, and batches.idx only at start-up, so that is enough here.
 * - Buffers are per descriptor: a sync of one descriptor does not write
 *   what another descriptor of the same file holds (the kernel's would);
 *   dup, dup2, dup3, fcntl(F_DUPFD), fork, pwritev, sendfile,
 *   copy_file_range, shared writable mmap and stdio (fopen and fwrite
 *   call glibc's internal entry points, which LD_PRELOAD cannot catch)
 *   are passed through untouched.
 *
 * Thread-safe: one mutex guards the held descriptors (kanald's WAL writer
 * thread and its flush thread write held files); calls on other
 * descriptors take no lock, only an atomic flag per descriptor number.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FD_LIMIT 65536		/* descriptors numbered at or past it: fatal */
#define MATCH_MAX 16

/* One run of held bytes: data[0..len) belongs at file offset off. */
struct extent {
	off_t off;
	size_t len, cap;
	char *data;
};

struct held {
	int append;
	struct extent *v;
	size_t n, cap;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uchar is_held[FD_LIMIT];
static struct held *held[FD_LIMIT];	/* under mu */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char match_buf[1024];
static const char *match[MATCH_MAX];
static size_t nmatch;
static unsigned torn_pct;
static unsigned long sync_delay_us;
static uint64_t rng_state;

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_close)(int);

static void
die(const char *msg)
{
	/* No stdio and no interposed write: this may run inside one. */
	static const char pre[] = "kanal_powerloss: ";

	(void)!syscall(SYS_write, 2, pre, sizeof(pre) - 1);
	(void)!syscall(SYS_write, 2, msg, strlen(msg));
	(void)!syscall(SYS_write, 2, "\n", 1);
	abort();
}

static void *
sym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL)
		die(name);
	return p;
}

static void
init(void)
{
	const char *m = getenv("KANAL_POWERLOSS_MATCH");
	const char *t = getenv("KANAL_POWERLOSS_TORN");
	const char *s = getenv("KANAL_POWERLOSS_SEED");
	const char *d = getenv("KANAL_POWERLOSS_SYNC_DELAY_US");

	real_write = sym("write");
	real_open = sym("open");
	real_open64 = sym("open64");
	real_openat = sym("openat");
	real_openat64 = sym("openat64");
	real_creat = sym("creat");
	real_creat64 = sym("creat64");
	real_writev = sym("writev");
	real_pwrite = sym("pwrite");
	real_pwrite64 = sym("pwrite64");
	real_fsync = sym("fsync");
	real_fdatasync = sym("fdatasync");
	real_ftruncate = sym("ftruncate");
	real_ftruncate64 = sym("ftruncate64");
	real_close = sym("close");

	if (m != NULL && strlen(m) < sizeof(match_buf)) {
		char *p, *save = NULL;
		memcpy(match_buf, m, strlen(m) + 1);
		for (p = strtok_r(match_buf, ",", &save); p != NULL &&
		    nmatch < MATCH_MAX; p = strtok_r(NULL, ",", &save))
			if (*p != '\0')
				match[nmatch++] = p;
	} else if (m != NULL) {
		die("KANAL_POWERLOSS_MATCH is too long");
	}
	if (t != NULL && *t != '\0') {
		char *end;
		unsigned long v = strtoul(t, &end, 10);
		if (*end != '\0' || v > 100)
			die("KANAL_POWERLOSS_TORN must be 0 to 100");
		torn_pct = (unsigned)v;
	}
	if (d != NULL && *d != '\0') {
		char *end;
		sync_delay_us = strtoul(d, &end, 10);
		if (*end != '\0' || sync_delay_us > 10000000)
			die("KANAL_POWERLOSS_SYNC_DELAY_US must be 0 to 10000000");
	}
	rng_state = s != NULL && *s != '\0' ? strtoull(s, NULL, 10) :
	    (uint64_t)getpid();
	rng_state = rng_state * 0x9e3779b97f4a7c15ULL + 1;
}

static void
setup(void)
{
	pthread_once(&once, init);
}

/* splitmix64; under mu. */
static uint64_t
rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int
path_matches(const char *path)
{
	size_t n;

	if (path == NULL)
		return 0;
	n = strlen(path);
	for (size_t i = 0; i < nmatch; i++) {
		size_t k = strlen(match[i]);
		if (n >= k && memcmp(path + n - k, match[i], k) == 0)
			return 1;
	}
	return 0;
}

static int
fd_held(int fd)
{
	return fd >= 0 && fd < FD_LIMIT &&
	    atomic_load_explicit(&is_held[fd], memory_order_acquire);
}

static void
held_free(struct held *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].data);
	free(h->v);
	free(h);
}

/* After a successful real open: hold fd if path and flags say so. */
static int
opened(int fd, const char *path, int flags)
{
	struct held *h;

	if (fd < 0 || (flags & O_ACCMODE) == O_RDONLY || !path_matches(path))
		return fd;
	if (fd >= FD_LIMIT)
		die("a held file got a descriptor past FD_LIMIT");
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		die("out of memory");
	h->append = (flags & O_APPEND) != 0;
	pthread_mutex_lock(&mu);
	if (held[fd] != NULL)		/* closed behind our back */
		held_free(held[fd]);
	held[fd] = h;
	atomic_store_explicit(&is_held[fd], 1, memory_order_release);
	pthread_mutex_unlock(&mu);
	return fd;
}

static int
open_mode_needed(int flags)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	setup();
	if (open_mode_needed(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return opened(real_open(path, flags, mode), path, flags);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	setup();
	if (open_mode_needed(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return opened(real_open64(path, flags, mode), path, flags);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	setup();
	if (open_mode_needed(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return opened(real_openat(dirfd, path, flags, mode), path, flags);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	setup();
	if (open_mode_needed(flags)) {
		va_list ap;
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return opened(real_openat64(dirfd, path, flags, mode), path, flags);
}

int
creat(const char *path, mode_t mode)
{
	setup();
	return opened(real_creat(path, mode), path, O_WRONLY | O_CREAT |
	    O_TRUNC);
}

int
creat64(const char *path, mode_t mode)
{
	setup();
	return opened(real_creat64(path, mode), path, O_WRONLY | O_CREAT |
	    O_TRUNC);
}

/* The real file's size, or -1. */
static off_t
real_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? st.st_size : -1;
}

/* End of the file as the program sees it: real size or held bytes. */
static off_t
logical_end(int fd, const struct held *h)
{
	off_t end = real_size(fd);

	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].off + (off_t)h->v[i].len > end)
			end = h->v[i].off + (off_t)h->v[i].len;
	return end;
}

/* Holds len bytes (p, or zeros when p is NULL) at off. Under mu. */
static int
hold(struct held *h, off_t off, const void *p, size_t len)
{
	struct extent *e = h->n > 0 ? &h->v[h->n - 1] : NULL;

	if (len == 0)
		return 0;
	if (e == NULL || e->off + (off_t)e->len != off) {
		if (h->n == h->cap) {
			size_t ncap = h->cap ? h->cap * 2 : 8;
			struct extent *nv = realloc(h->v, ncap * sizeof(*nv));
			if (nv == NULL)
				return -1;
			h->v = nv;
			h->cap = ncap;
		}
		e = &h->v[h->n++];
		memset(e, 0, sizeof(*e));
		e->off = off;
	}
	if (e->len + len > e->cap) {
		size_t ncap = e->cap ? e->cap : 4096;
		char *nd;
		while (ncap < e->len + len)
			ncap *= 2;
		nd = realloc(e->data, ncap);
		if (nd == NULL)
			return -1;
		e->data = nd;
		e->cap = ncap;
	}
	if (p != NULL)
		memcpy(e->data + e->len, p, len);
	else
		memset(e->data + e->len, 0, len);
	e->len += len;
	return 0;
}

/*
 * Writes up to limit held bytes (SIZE_MAX: all) of fd to the real file,
 * oldest first, and forgets them. 0, or -1 with errno (the rest is dropped
 * then). Under mu.
 */
static int
write_through(int fd, struct held *h, size_t limit)
{
	size_t i = 0;
	int rc = 0, saved = 0;

	for (; i < h->n && limit > 0; i++) {
		struct extent *e = &h->v[i];
		size_t todo = e->len < limit ? e->len : limit, done = 0;

		while (done < todo) {
			ssize_t r = h->append ?
			    real_write(fd, e->data + done, todo - done) :
			    real_pwrite(fd, e->data + done, todo - done,
			    e->off + (off_t)done);
			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0) {
				saved = r == 0 ? EIO : errno;
				rc = -1;
				break;
			}
			done += (size_t)r;
		}
		if (rc == -1)
			break;
		limit -= todo;
		if (todo < e->len) {
			/* Partly written: keep the rest. */
			memmove(e->data, e->data + todo, e->len - todo);
			e->off += (off_t)todo;
			e->len -= todo;
			break;
		}
		free(e->data);
		e->data = NULL;
	}
	if (rc == -1) {
		for (; i < h->n; i++)
			free(h->v[i].data);
		h->n = 0;
		errno = saved;
		return -1;
	}
	memmove(h->v, h->v + i, (h->n - i) * sizeof(*h->v));
	h->n -= i;
	return 0;
}

/* Maybe writes a random prefix of what fd holds through. Under mu. */
static void
maybe_tear(int fd, struct held *h)
{
	size_t total = 0;

	if (torn_pct == 0 || rnd() % 100 >= torn_pct)
		return;
	for (size_t i = 0; i < h->n; i++)
		total += h->v[i].len;
	if (total > 0) {
		int saved = errno;
		(void)write_through(fd, h, (size_t)(rnd() % total));
		errno = saved;
	}
}

/* A held write of the iovecs at off (-1: the descriptor's position). */
static ssize_t
held_write(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	struct held *h;
	size_t total = 0;
	off_t at;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	pthread_mutex_lock(&mu);
	h = held[fd];
	if (h->append) {
		at = logical_end(fd, h);
	} else if (off >= 0) {
		at = off;
	} else {
		at = lseek(fd, 0, SEEK_CUR);
	}
	if (at < 0) {
		pthread_mutex_unlock(&mu);
		return -1;
	}
	for (int i = 0; i < iovcnt; i++) {
		if (hold(h, at, iov[i].iov_base, iov[i].iov_len) == -1) {
			pthread_mutex_unlock(&mu);
			errno = ENOMEM;
			return -1;
		}
		at += (off_t)iov[i].iov_len;
	}
	/* Move the real offset on, as the write would have. */
	if (!h->append && off < 0 && lseek(fd, (off_t)total, SEEK_CUR) == -1) {
		pthread_mutex_unlock(&mu);
		return -1;
	}
	maybe_tear(fd, h);
	pthread_mutex_unlock(&mu);
	return (ssize_t)total;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	struct iovec v = { (void *)(uintptr_t)buf, len };

	setup();
	if (!fd_held(fd))
		return real_write(fd, buf, len);
	return held_write(fd, &v, 1, -1);
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	setup();
	if (!fd_held(fd))
		return real_writev(fd, iov, iovcnt);
	if (iovcnt < 0 || iovcnt > IOV_MAX) {
		errno = EINVAL;
		return -1;
	}
	return held_write(fd, iov, iovcnt, -1);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec v = { (void *)(uintptr_t)buf, len };

	setup();
	if (!fd_held(fd))
		return real_pwrite(fd, buf, len, off);
	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	return held_write(fd, &v, 1, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	struct iovec v = { (void *)(uintptr_t)buf, len };

	setup();
	if (!fd_held(fd))
		return real_pwrite64(fd, buf, len, off);
	if (off < 0) {
		errno = EINVAL;
		return -1;
	}
	return held_write(fd, &v, 1, off);
}

static int
held_sync(int fd, int (*real_sync)(int))
{
	int rc;

	if (sync_delay_us > 0) {
		/* Not under mu: other descriptors go on meanwhile. */
		struct timespec ts = { (time_t)(sync_delay_us / 1000000),
		    (long)(sync_delay_us % 1000000) * 1000 };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	pthread_mutex_lock(&mu);
	rc = write_through(fd, held[fd], SIZE_MAX);
	if (rc == 0)
		rc = real_sync(fd);
	pthread_mutex_unlock(&mu);
	return rc;
}

int
fsync(int fd)
{
	setup();
	if (!fd_held(fd))
		return real_fsync(fd);
	return held_sync(fd, real_fsync);
}

int
fdatasync(int fd)
{
	setup();
	if (!fd_held(fd))
		return real_fdatasync(fd);
	return held_sync(fd, real_fdatasync);
}

/* ftruncate on a held descriptor. */
static int
held_truncate(int fd, off_t len)
{
	struct held *h;
	off_t rsize, end;
	int rc = 0;

	if (len < 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&mu);
	h = held[fd];
	rsize = real_size(fd);
	end = logical_end(fd, h);
	if (rsize < 0) {
		pthread_mutex_unlock(&mu);
		return -1;
	}
	/* Drop held bytes at or past len. */
	for (size_t i = 0; i < h->n; i++) {
		struct extent *e = &h->v[i];
		if (e->off >= len)
			e->len = 0;
		else if (e->off + (off_t)e->len > len)
			e->len = (size_t)(len - e->off);
	}
	{
		size_t k = 0;
		for (size_t i = 0; i < h->n; i++) {
			if (h->v[i].len == 0)
				free(h->v[i].data);
			else
				h->v[k++] = h->v[i];
		}
		h->n = k;
	}
	if (len < rsize)
		rc = real_ftruncate(fd, len);
	else if (len > end && hold(h, end, NULL, (size_t)(len - end)) == -1) {
		errno = ENOMEM;
		rc = -1;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int
ftruncate(int fd, off_t len)
{
	setup();
	if (!fd_held(fd))
		return real_ftruncate(fd, len);
	return held_truncate(fd, len);
}

int
ftruncate64(int fd, off64_t len)
{
	setup();
	if (!fd_held(fd))
		return real_ftruncate64(fd, len);
	return held_truncate(fd, (off_t)len);
}

int
close(int fd)
{
	setup();
	if (fd_held(fd)) {
		pthread_mutex_lock(&mu);
		atomic_store_explicit(&is_held[fd], 0, memory_order_release);
		held_free(held[fd]);
		held[fd] = NULL;
		/* Under mu: the number can't be held again before it is shut. */
		{
			int rc = real_close(fd);
			pthread_mutex_unlock(&mu);
			return rc;
		}
	}
	return real_close(fd);
}
