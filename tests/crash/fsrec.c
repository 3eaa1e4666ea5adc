/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsrec: an LD_PRELOAD recorder of what a program does to one directory,
 * for tests/crash/explore (see tests/crash/README.md, "Crash states").
 *
 *   LD_PRELOAD=libkanal_fsrec.so KANAL_FSREC_DIR=/abs/wal \
 *       KANAL_FSREC_LOG=/abs/rec.log kanald ...
 *
 * WHAT IT RECORDS
 *
 * In one log, in the order they returned, under one lock (so the order is
 * a real-time order across the program's threads and, the log being
 * O_APPEND, across the processes run one after another on it):
 *
 * - for files in KANAL_FSREC_DIR (names directly in it; kanald's WAL
 *   directory is flat): open/creat with O_CREAT, O_TRUNC and O_EXCL and
 *   whether the call created the file, write, writev, pwrite, ftruncate,
 *   fallocate (data and length), fsync and fdatasync, close, rename,
 *   unlink, mkdir; fsync of the directory itself;
 * - every HTTP response the program writes to a socket (write, writev,
 *   send, sendmsg whose bytes start with "HTTP/1."), before it is sent:
 *   the acknowledgements;
 * - PostgreSQL: the checkpoint that a flush transaction sets (libpq's
 *   PQexecParams of the checkpoint INSERT, its $2) and each COMMIT (PQexec)
 *   before it is sent and after its result came back, with the outcome.
 *   Between the two the database may or may not have it.
 *
 * A write is logged after it returned (its bytes are then in the page
 * cache), a sync after it returned (only then is it durable), an
 * acknowledgement before it is sent: a crash state cut just before a sync's
 * entry must not need it, and one cut after an acknowledgement's entry must
 * hold what it acknowledged. The explorer builds crash states from this.
 *
 * Entries: a text line "SEQ PID OP ARGS... LEN\n", then LEN bytes of data
 * (written bytes, a name, a response) and "\n". OP and ARGS:
 *
 *   open FD FLAGS CREATED NAME      (NAME as data; FLAGS decimal)
 *   opendir FD                      (the directory itself opened)
 *   write FD OFFSET                 (the bytes as data)
 *   trunc FD LENGTH
 *   falloc FD MODE OFFSET LENGTH
 *   sync FD | datasync FD | syncdir FD
 *   close FD
 *   rename FROMLEN                  (data: FROM then TO)
 *   unlink | mkdir                  (data: NAME)
 *   http FD                         (data: the response's first bytes)
 *   ckpt POSITION                   (the checkpoint the open transaction sets)
 *   commit-begin | commit-end OK    (OK: 1 committed, 0 not)
 *   eio FD                          (an injected sync failure, below)
 *   enospc FD                       (an injected full disk, below)
 *
 * FAULTS
 *
 * KANAL_FSREC_FAIL_SYNC=N: the N-th fsync or fdatasync (counted from 1 in
 * this process) of a file in the directory fails with EIO instead of
 * syncing, and so does every later sync of that descriptor (the kernel
 * reports a writeback error once; kanald must not trust the file after
 * it). Logged as eio. KANAL_FSREC_FAIL_SYNC_NAME=SUFFIX counts only the
 * syncs of files whose name ends in SUFFIX (".wal": the WAL's own).
 *
 * KANAL_FSREC_ENOSPC=PATH (absolute): while PATH exists, the disk is full:
 * every write, pwrite and fallocate of a file in the directory fails with
 * ENOSPC and writes nothing (logged as enospc), and statvfs/fstatvfs of
 * the directory or a file in it report no blocks free. The test creates
 * and removes PATH to fill the disk and give the room back at the moment
 * it wants.
 *
 * KANAL_FSREC_WALL_OFFSET_MS=N: CLOCK_REALTIME reads N ms later (a restart
 * a while after the last run: the dedup window has passed).
 *
 * Not recorded: reads, mmap, stdio (fopen and fwrite call glibc's internal
 * entry points, which LD_PRELOAD cannot catch; kanald writes its WAL
 * directory with write(2) only), dup, sendfile, copy_file_range, and files
 * in subdirectories. The recorder itself is never built with sanitizers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define FD_LIMIT 65536
#define HTTP_KEEP 4096		/* bytes of a response kept */

enum fdkind { FD_NONE, FD_FILE, FD_DIR };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uchar kind[FD_LIMIT];
static atomic_uchar failed[FD_LIMIT];
static int logfd = -1;
static char dir[PATH_MAX];
static size_t dirlen;
static uint64_t seq;
static long fail_sync_at;	/* 0: never */
static char fail_sync_name[64];	/* "": every file's syncs count */
static atomic_uchar sync_counts[FD_LIMIT];
static char space_flag[PATH_MAX];	/* "": the disk is never full */
static long syncs;
static int64_t wall_offset_ms;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_close)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_statvfs)(const char *, struct statvfs *);
static int (*real_fstatvfs)(int, struct statvfs *);
static void *(*real_PQexec)(void *, const char *);
static void *(*real_PQexecParams)(void *, const char *, int, const unsigned *,
    const char *const *, const int *, const int *, int);
static int (*real_PQresultStatus)(const void *);

static void
die(const char *msg)
{
	static const char pre[] = "kanal_fsrec: ";

	(void)!syscall(SYS_write, 2, pre, sizeof(pre) - 1);
	(void)!syscall(SYS_write, 2, msg, strlen(msg));
	(void)!syscall(SYS_write, 2, "\n", 1);
	abort();
}

static void *
sym(const char *name, int required)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL && required)
		die(name);
	return p;
}

static long
env_long(const char *name, long lo, long hi)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (s == NULL || *s == '\0')
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		die("a KANAL_FSREC_* number is out of range");
	return v;
}

static void
init(void)
{
	const char *d = getenv("KANAL_FSREC_DIR");
	const char *l = getenv("KANAL_FSREC_LOG");
	const char *s;

	real_open = sym("open", 1);
	real_openat = sym("openat", 1);
	real_write = sym("write", 1);
	real_writev = sym("writev", 1);
	real_pwrite = sym("pwrite", 1);
	real_send = sym("send", 1);
	real_sendmsg = sym("sendmsg", 1);
	real_fsync = sym("fsync", 1);
	real_fdatasync = sym("fdatasync", 1);
	real_ftruncate = sym("ftruncate", 1);
	real_fallocate = sym("fallocate", 1);
	real_close = sym("close", 1);
	real_rename = sym("rename", 1);
	real_renameat = sym("renameat", 1);
	real_unlink = sym("unlink", 1);
	real_unlinkat = sym("unlinkat", 1);
	real_mkdir = sym("mkdir", 1);
	real_clock_gettime = sym("clock_gettime", 1);
	real_statvfs = sym("statvfs", 1);
	real_fstatvfs = sym("fstatvfs", 1);
	/* libpq: only in programs linked with it. */
	real_PQexec = sym("PQexec", 0);
	real_PQexecParams = sym("PQexecParams", 0);
	real_PQresultStatus = sym("PQresultStatus", 0);

	fail_sync_at = env_long("KANAL_FSREC_FAIL_SYNC", 0, LONG_MAX);
	s = getenv("KANAL_FSREC_FAIL_SYNC_NAME");
	if (s != NULL) {
		if (strlen(s) >= sizeof(fail_sync_name))
			die("KANAL_FSREC_FAIL_SYNC_NAME is too long");
		strcpy(fail_sync_name, s);
	}
	s = getenv("KANAL_FSREC_ENOSPC");
	if (s != NULL && *s != '\0') {
		if (*s != '/' || strlen(s) >= sizeof(space_flag))
			die("KANAL_FSREC_ENOSPC must be an absolute path");
		strcpy(space_flag, s);
	}
	wall_offset_ms = env_long("KANAL_FSREC_WALL_OFFSET_MS",
	    -(1L << 40), 1L << 40);
	if (d == NULL || l == NULL || *d != '/' || *l != '/')
		die("KANAL_FSREC_DIR and KANAL_FSREC_LOG must be absolute paths");
	dirlen = strlen(d);
	while (dirlen > 1 && d[dirlen - 1] == '/')
		dirlen--;
	if (dirlen >= sizeof(dir))
		die("KANAL_FSREC_DIR is too long");
	memcpy(dir, d, dirlen);
	dir[dirlen] = '\0';
	logfd = (int)syscall(SYS_openat, AT_FDCWD, l,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd == -1)
		die("cannot open KANAL_FSREC_LOG");
}

static void
ensure(void)
{
	pthread_once(&once, init);
}

static void
raw_write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = syscall(SYS_write, logfd, p, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			die("cannot write the log");
		p += w;
		n -= (size_t)w;
	}
}

/*
 * One entry: "SEQ PID OP ARGS LEN\n" then the data (two pieces, either may
 * be empty) and "\n". Called with mu held, so that the order of the log is
 * the order of the calls.
 */
static void
entry_locked(const char *op, const char *args, const void *a, size_t alen,
    const void *b, size_t blen)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%" PRIu64 " %ld %s%s%s %zu\n",
	    ++seq, (long)getpid(), op, *args != '\0' ? " " : "", args,
	    alen + blen);

	if (n < 0 || (size_t)n >= sizeof(line))
		die("entry line too long");
	raw_write_all(line, (size_t)n);
	if (alen > 0)
		raw_write_all(a, alen);
	if (blen > 0)
		raw_write_all(b, blen);
	raw_write_all("\n", 1);
}

static void
entry(const char *op, const char *args, const void *a, size_t alen,
    const void *b, size_t blen)
{
	int saved = errno;

	pthread_mutex_lock(&mu);
	entry_locked(op, args, a, alen, b, blen);
	pthread_mutex_unlock(&mu);
	errno = saved;
}

/* The name inside the directory, or NULL when PATH is not directly in it. */
static const char *
name_in_dir(int dirfd, const char *path)
{
	const char *n;

	if (path == NULL)
		return NULL;
	if (path[0] != '/') {
		if (dirfd >= 0 && dirfd < FD_LIMIT && kind[dirfd] == FD_DIR)
			n = path;
		else
			return NULL;
	} else {
		if (strncmp(path, dir, dirlen) != 0 || path[dirlen] != '/')
			return NULL;
		n = path + dirlen + 1;
	}
	if (*n == '\0' || strchr(n, '/') != NULL)
		return NULL;
	return n;
}

static int
is_dir_itself(const char *path)
{
	size_t n = path != NULL ? strlen(path) : 0;

	while (n > 1 && path[n - 1] == '/')
		n--;
	return path != NULL && n == dirlen && strncmp(path, dir, n) == 0;
}

static int
tracked(int fd)
{
	return fd >= 0 && fd < FD_LIMIT && kind[fd] != FD_NONE;
}

/* KANAL_FSREC_ENOSPC: the flag file exists. */
static int
disk_full(void)
{
	return space_flag[0] != '\0' &&
	    syscall(SYS_faccessat, AT_FDCWD, space_flag, F_OK, 0) == 0;
}

static int
do_open(int dirfd, const char *path, int flags, mode_t mode)
{
	const char *n;
	int existed = 1, fd;
	struct stat st;

	ensure();
	n = name_in_dir(dirfd, path);
	if (n != NULL && (flags & O_CREAT))
		existed = fstatat(dirfd, path, &st, 0) == 0;
	pthread_mutex_lock(&mu);
	fd = real_openat(dirfd, path, flags, mode);
	if (fd >= 0 && fd < FD_LIMIT) {
		int saved = errno;
		if (n != NULL && (flags & O_ACCMODE) != O_RDONLY) {
			char args[64];
			size_t nl = strlen(n), sl = strlen(fail_sync_name);
			kind[fd] = FD_FILE;
			failed[fd] = 0;
			sync_counts[fd] = nl >= sl &&
			    strcmp(n + nl - sl, fail_sync_name) == 0;
			snprintf(args, sizeof(args), "%d %d %d", fd, flags,
			    !existed);
			entry_locked("open", args, n, strlen(n), NULL, 0);
		} else if (n == NULL && is_dir_itself(path)) {
			char args[32];
			kind[fd] = FD_DIR;
			snprintf(args, sizeof(args), "%d", fd);
			entry_locked("opendir", args, NULL, 0, NULL, 0);
		} else {
			kind[fd] = FD_NONE;
		}
		errno = saved;
	} else if (fd >= FD_LIMIT) {
		die("descriptor number past FD_LIMIT");
	}
	pthread_mutex_unlock(&mu);
	return fd;
}

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags, m);
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(AT_FDCWD, path, flags | O_LARGEFILE, m);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags, m);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;

	va_start(ap, flags);
	m = mode_arg(flags, ap);
	va_end(ap);
	return do_open(dirfd, path, flags | O_LARGEFILE, m);
}

int
creat(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int
creat64(const char *path, mode_t mode)
{
	return do_open(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC |
	    O_LARGEFILE, mode);
}

/* An HTTP response on a socket: logged before it is sent. */
static void
maybe_http(int fd, const struct iovec *iov, int n)
{
	char buf[HTTP_KEEP];
	size_t len = 0;
	struct stat st;
	char args[32];

	if (n <= 0 || fd < 0 || iov[0].iov_len < 7 ||
	    memcmp(iov[0].iov_base, "HTTP/1.", 7) != 0)
		return;
	if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
		return;
	for (int i = 0; i < n && len < sizeof(buf); i++) {
		size_t k = iov[i].iov_len;
		if (k > sizeof(buf) - len)
			k = sizeof(buf) - len;
		memcpy(buf + len, iov[i].iov_base, k);
		len += k;
	}
	snprintf(args, sizeof(args), "%d", fd);
	entry("http", args, buf, len, NULL, 0);
}

/* Called with mu held, after a write to a tracked file returned N > 0. */
static void
log_write_locked(int fd, const struct iovec *iov, int cnt, ssize_t n,
    off_t off)
{
	char args[64];
	char line[256];
	size_t left = (size_t)n;
	int k;

	snprintf(args, sizeof(args), "%d %lld", fd, (long long)off);
	k = snprintf(line, sizeof(line), "%" PRIu64 " %ld write %s %zd\n",
	    ++seq, (long)getpid(), args, n);
	raw_write_all(line, (size_t)k);
	for (int i = 0; i < cnt && left > 0; i++) {
		size_t l = iov[i].iov_len < left ? iov[i].iov_len : left;
		raw_write_all(iov[i].iov_base, l);
		left -= l;
	}
	raw_write_all("\n", 1);
}

static ssize_t
do_writev(int fd, const struct iovec *iov, int cnt, int positional,
    off_t pos)
{
	ssize_t n;
	off_t off;
	int saved;

	ensure();
	if (!tracked(fd) || kind[fd] != FD_FILE) {
		maybe_http(fd, iov, cnt);
		if (positional)
			return real_pwrite(fd, iov[0].iov_base, iov[0].iov_len,
			    pos);
		return real_writev(fd, iov, cnt);
	}
	if (disk_full()) {
		char args[32];
		snprintf(args, sizeof(args), "%d", fd);
		entry("enospc", args, NULL, 0, NULL, 0);
		errno = ENOSPC;
		return -1;
	}
	pthread_mutex_lock(&mu);
	if (positional) {
		n = real_pwrite(fd, iov[0].iov_base, iov[0].iov_len, pos);
		off = pos;
	} else {
		n = real_writev(fd, iov, cnt);
		/* O_APPEND or not, the offset is now past what was written. */
		off = n > 0 ? lseek(fd, 0, SEEK_CUR) - n : 0;
	}
	saved = errno;
	if (n > 0)
		log_write_locked(fd, iov, cnt, n, off);
	pthread_mutex_unlock(&mu);
	errno = saved;
	return n;
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return do_writev(fd, &v, 1, 0, 0);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	return do_writev(fd, iov, cnt, 0, 0);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	return do_writev(fd, &v, 1, 1, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	return pwrite(fd, buf, len, (off_t)off);
}

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	struct iovec v = { .iov_base = (void *)buf, .iov_len = len };

	ensure();
	maybe_http(fd, &v, 1);
	return real_send(fd, buf, len, flags);
}

ssize_t
sendmsg(int fd, const struct msghdr *m, int flags)
{
	ensure();
	if (m != NULL)
		maybe_http(fd, m->msg_iov, (int)m->msg_iovlen);
	return real_sendmsg(fd, m, flags);
}

static int
do_sync(int fd, int data)
{
	char args[32];
	int r, saved;

	ensure();
	if (!tracked(fd))
		return data ? real_fdatasync(fd) : real_fsync(fd);
	snprintf(args, sizeof(args), "%d", fd);
	if (kind[fd] == FD_FILE) {
		long n = 0;
		if (sync_counts[fd]) {
			pthread_mutex_lock(&mu);
			n = ++syncs;
			pthread_mutex_unlock(&mu);
		}
		if (failed[fd] || (fail_sync_at > 0 && n == fail_sync_at)) {
			failed[fd] = 1;
			entry("eio", args, NULL, 0, NULL, 0);
			errno = EIO;
			return -1;
		}
	}
	r = data ? real_fdatasync(fd) : real_fsync(fd);
	saved = errno;
	if (r == 0)
		entry(kind[fd] == FD_DIR ? "syncdir" : data ? "datasync" :
		    "sync", args, NULL, 0, NULL, 0);
	errno = saved;
	return r;
}

int
fsync(int fd)
{
	return do_sync(fd, 0);
}

int
fdatasync(int fd)
{
	return do_sync(fd, 1);
}

int
ftruncate(int fd, off_t len)
{
	char args[64];
	int r, saved;

	ensure();
	if (!tracked(fd) || kind[fd] != FD_FILE)
		return real_ftruncate(fd, len);
	pthread_mutex_lock(&mu);
	r = real_ftruncate(fd, len);
	saved = errno;
	if (r == 0) {
		snprintf(args, sizeof(args), "%d %lld", fd, (long long)len);
		entry_locked("trunc", args, NULL, 0, NULL, 0);
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
	return r;
}

int
ftruncate64(int fd, off64_t len)
{
	return ftruncate(fd, (off_t)len);
}

int
fallocate(int fd, int mode, off_t off, off_t len)
{
	char args[96];
	int r, saved;

	ensure();
	if (!tracked(fd) || kind[fd] != FD_FILE)
		return real_fallocate(fd, mode, off, len);
	if (disk_full()) {
		snprintf(args, sizeof(args), "%d", fd);
		entry("enospc", args, NULL, 0, NULL, 0);
		errno = ENOSPC;
		return -1;
	}
	pthread_mutex_lock(&mu);
	r = real_fallocate(fd, mode, off, len);
	saved = errno;
	if (r == 0) {
		snprintf(args, sizeof(args), "%d %d %lld %lld", fd, mode,
		    (long long)off, (long long)len);
		entry_locked("falloc", args, NULL, 0, NULL, 0);
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
	return r;
}

int
fallocate64(int fd, int mode, off64_t off, off64_t len)
{
	return fallocate(fd, mode, (off_t)off, (off_t)len);
}

int
close(int fd)
{
	char args[32];
	int r, saved;

	ensure();
	if (!tracked(fd))
		return real_close(fd);
	pthread_mutex_lock(&mu);
	snprintf(args, sizeof(args), "%d", fd);
	if (kind[fd] == FD_FILE)
		entry_locked("close", args, NULL, 0, NULL, 0);
	kind[fd] = FD_NONE;
	failed[fd] = 0;
	r = real_close(fd);
	saved = errno;
	pthread_mutex_unlock(&mu);
	errno = saved;
	return r;
}

static int
do_rename(int ofd, const char *from, int nfd, const char *to)
{
	const char *a, *b;
	char args[32];
	int r, saved;

	ensure();
	a = name_in_dir(ofd, from);
	b = name_in_dir(nfd, to);
	if (a == NULL && b == NULL)
		return real_renameat(ofd, from, nfd, to);
	if (a == NULL || b == NULL)
		die("a rename into or out of the recorded directory");
	pthread_mutex_lock(&mu);
	r = real_renameat(ofd, from, nfd, to);
	saved = errno;
	if (r == 0) {
		snprintf(args, sizeof(args), "%zu", strlen(a));
		entry_locked("rename", args, a, strlen(a), b, strlen(b));
	}
	pthread_mutex_unlock(&mu);
	errno = saved;
	return r;
}

int
rename(const char *from, const char *to)
{
	return do_rename(AT_FDCWD, from, AT_FDCWD, to);
}

int
renameat(int ofd, const char *from, int nfd, const char *to)
{
	return do_rename(ofd, from, nfd, to);
}

static int
do_unlink(int dirfd, const char *path, int flags)
{
	const char *n;
	int r, saved;

	ensure();
	n = name_in_dir(dirfd, path);
	if (n == NULL)
		return real_unlinkat(dirfd, path, flags);
	pthread_mutex_lock(&mu);
	r = real_unlinkat(dirfd, path, flags);
	saved = errno;
	if (r == 0)
		entry_locked("unlink", "", n, strlen(n), NULL, 0);
	pthread_mutex_unlock(&mu);
	errno = saved;
	return r;
}

int
unlink(const char *path)
{
	return do_unlink(AT_FDCWD, path, 0);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	return do_unlink(dirfd, path, flags);
}

int
mkdir(const char *path, mode_t mode)
{
	const char *n;
	int r, saved;

	ensure();
	n = name_in_dir(AT_FDCWD, path);
	r = real_mkdir(path, mode);
	saved = errno;
	if (r == 0 && n != NULL)
		entry("mkdir", "", n, strlen(n), NULL, 0);
	errno = saved;
	return r;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	int r;

	ensure();
	r = real_clock_gettime(id, ts);
	if (r == 0 && wall_offset_ms != 0 && (id == CLOCK_REALTIME ||
	    id == CLOCK_REALTIME_COARSE)) {
		int64_t ns = (int64_t)ts->tv_nsec + (wall_offset_ms % 1000) *
		    1000000;
		ts->tv_sec += wall_offset_ms / 1000 + ns / 1000000000 -
		    (ns < 0 ? 1 : 0);
		ts->tv_nsec = (long)((ns % 1000000000 + 1000000000) %
		    1000000000);
	}
	return r;
}

/* libpq's PGRES_COMMAND_OK (libpq-fe.h; not included, to need no -dev). */
#define FSREC_PGRES_COMMAND_OK 1

void *
PQexecParams(void *conn, const char *cmd, int n, const unsigned *types,
    const char *const *values, const int *lens, const int *formats,
    int rformat)
{
	ensure();
	if (real_PQexecParams == NULL)
		die("PQexecParams without libpq");
	if (cmd != NULL && n == 2 && values != NULL && values[1] != NULL &&
	    strncmp(cmd, "INSERT INTO kanal.collector_checkpoint", 38) == 0)
		entry("ckpt", values[1], NULL, 0, NULL, 0);
	return real_PQexecParams(conn, cmd, n, types, values, lens, formats,
	    rformat);
}

void *
PQexec(void *conn, const char *cmd)
{
	void *r;
	int commit;

	ensure();
	if (real_PQexec == NULL)
		die("PQexec without libpq");
	commit = cmd != NULL && strcmp(cmd, "COMMIT") == 0;
	if (commit)
		entry("commit-begin", "", NULL, 0, NULL, 0);
	r = real_PQexec(conn, cmd);
	if (commit)
		entry("commit-end", real_PQresultStatus(r) ==
		    FSREC_PGRES_COMMAND_OK ? "1" : "0", NULL, 0, NULL, 0);
	return r;
}

/* KANAL_FSREC_ENOSPC: no room reported while the disk is full. */
static void
no_room(struct statvfs *sv)
{
	sv->f_bfree = 0;
	sv->f_bavail = 0;
}

int
statvfs(const char *path, struct statvfs *sv)
{
	int r;

	ensure();
	r = real_statvfs(path, sv);
	if (r == 0 && disk_full() && (is_dir_itself(path) ||
	    name_in_dir(AT_FDCWD, path) != NULL))
		no_room(sv);
	return r;
}

int
fstatvfs(int fd, struct statvfs *sv)
{
	int r;

	ensure();
	r = real_fstatvfs(fd, sv);
	if (r == 0 && tracked(fd) && disk_full())
		no_room(sv);
	return r;
}
