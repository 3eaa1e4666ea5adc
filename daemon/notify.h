/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify: the systemd notification protocol (sd_notify), without
 * libsystemd: one datagram of "KEY=VALUE" lines to $NOTIFY_SOCKET.
 * Without NOTIFY_SOCKET (not run by systemd) every call does nothing.
 */
#ifndef KANAL_NOTIFY_H
#define KANAL_NOTIFY_H

/* Reads NOTIFY_SOCKET once; call before threads start. */
void notify_init(void);
/* Sends one message, e.g. "READY=1\nSTATUS=serving". 0, or -1 with errno. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
