/* SPDX-License-Identifier: MIT */
#pragma once

/* Makes room for a listening AF_UNIX socket at PATH: removes a socket left there by a process
 * that is gone (nothing accepts a connection on it), and nothing else. Logs what is in the way
 * and what to do. Returns 0 (PATH is free), -EADDRINUSE (something answers there),
 * -EEXIST (PATH is not a socket) or another negative errno. */
int socket_remove_stale(const char *path);
