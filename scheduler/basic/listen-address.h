/* SPDX-License-Identifier: MIT */
#pragma once

/* A TCP address to listen on, as the registry writes it: "127.0.0.1:9163", "[::1]:9163",
 * "localhost:9163" (127.0.0.1) or ":9163" (every address; not recommended). Literals only: a
 * registry is checked without the network, so no name is resolved. */

#include <sys/socket.h>

/* Parses S into *RET (and *RET_LEN). Returns 0, or -EINVAL with *RET_ERROR (static text)
 * saying what is wrong. */
int listen_address_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, const char **ret_error);
