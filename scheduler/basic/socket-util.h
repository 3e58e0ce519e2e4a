/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Makes room for a listening AF_UNIX socket at PATH: removes a socket left there by a process
 * that is gone (nothing accepts a connection on it), and nothing else. Logs what is in the way
 * and what to do. Returns 0 (PATH is free), -EADDRINUSE (something answers there),
 * -EEXIST (PATH is not a socket) or another negative errno. */
int socket_remove_stale(const char *path);

/* The descriptors one datagram carries at most (send_with_fds(), recv_with_fds()). */
#define SOCKET_FDS_MAX 4

/* Sends one datagram of LEN bytes at BUF on SOCK, with the N_FDS descriptors FDS (at most
 * SOCKET_FDS_MAX) as SCM_RIGHTS; FLAGS as send(). Returns 0 or -errno (EINTR retried). */
int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t n_fds, int flags);

/* Receives one datagram of up to LEN bytes into BUF from SOCK, and exactly N_FDS descriptors
 * into FDS (each -EBADF when the datagram carried another number; those it did carry are then
 * closed), close-on-exec. Returns its size (0 at end of file) or -errno; -EMSGSIZE when it was
 * truncated (its descriptors, if any, are in FDS for the caller to close). */
ssize_t recv_with_fds(int sock, void *buf, size_t len, int *fds, size_t n_fds);

/* Forks a helper process connected to the caller by a SOCK_SEQPACKET socket pair (close-on-exec):
 * returns its pid in the parent and 0 in the child, each with its own end in *RET_FD, or
 * -errno (no process, no socket). */
pid_t fork_with_socket(int *ret_fd);
