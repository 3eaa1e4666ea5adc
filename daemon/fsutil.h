/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fsutil: small file helpers shared by the WAL and its tools.
 */
#ifndef KANAL_FSUTIL_H
#define KANAL_FSUTIL_H

#include <stddef.h>

/*
 * Writes all len bytes, retrying short writes and EINTR. 0, or -1 with
 * errno (some bytes may have been written).
 */
int fs_write_all(int fd, const void *p, size_t len);

/*
 * fsync(2) of a directory, so that the creates, renames and unlinks in it
 * so far survive a power cut. 0, or -1 with errno.
 */
int fs_sync_dir(const char *dir);

/* 1 when errno e means the file system is out of room (ENOSPC, EDQUOT). */
int fs_errno_is_full(int e);

/*
 * Bytes an unprivileged writer may still allocate on path's file system
 * (statvfs f_bavail); -1 with errno when it can't be read.
 */
long long fs_free_bytes(const char *path);

#endif
