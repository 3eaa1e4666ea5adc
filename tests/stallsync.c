/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stallsync: an LD_PRELOAD shim that makes fdatasync(2) hang, for the
 * watchdog test in tests/test_systemd.py.
 *
 *   LD_PRELOAD=libkanal_stallsync.so KANAL_STALL_FILE=/tmp/x/stall kanald ...
 *
 * While the file KANAL_STALL_FILE exists, every fdatasync waits (polling
 * every 10 ms) before it does the real sync: kanald's WAL writer is stuck
 * the way it is on a disk that stopped answering, while the rest of the
 * process runs on. Remove the file and the syncs go through. Unset: the
 * shim only passes calls on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int fdatasync(int fd);

int
fdatasync(int fd)
{
	static int (*real)(int);
	const char *path = getenv("KANAL_STALL_FILE");
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	if (real == NULL)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	while (path != NULL && path[0] != '\0' && access(path, F_OK) == 0)
		nanosleep(&ts, NULL);
	return real(fd);
}
