/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "basic/listen-address.h"
#include "basic/macro.h"

static int parse_port(const char *p, uint16_t *ret) {
        char *end;
        if (*p < '0' || *p > '9')
                return -EINVAL;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

int listen_address_parse(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len, const char **ret_error) {
        struct sockaddr_storage ss = {};
        char host[64];
        const char *colon;
        uint16_t port;

        if (!s || s[0] == '\0') {
                *ret_error = "found an empty value";
                return -EINVAL;
        }
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':') {
                        *ret_error = "an IPv6 address must be written [ADDRESS]:PORT";
                        return -EINVAL;
                }
                colon = close + 1;
                if ((size_t) (close - s - 1) >= sizeof(host)) {
                        *ret_error = "the address is too long";
                        return -EINVAL;
                }
                memcpy(host, s + 1, (size_t) (close - s - 1));
                host[close - s - 1] = '\0';
        } else {
                colon = strrchr(s, ':');
                if (!colon) {
                        *ret_error = "no port: expected ADDRESS:PORT";
                        return -EINVAL;
                }
                if ((size_t) (colon - s) >= sizeof(host)) {
                        *ret_error = "the address is too long";
                        return -EINVAL;
                }
                memcpy(host, s, (size_t) (colon - s));
                host[colon - s] = '\0';
        }
        if (parse_port(colon + 1, &port) < 0) {
                *ret_error = "the port is not a number from 1 to 65535";
                return -EINVAL;
        }

        if (s[0] == '[') {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *) &ss;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons(port);
                if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
                        *ret_error = "not an IPv6 address";
                        return -EINVAL;
                }
                *ret_len = sizeof(struct sockaddr_in6);
        } else {
                struct sockaddr_in *a = (struct sockaddr_in *) &ss;
                a->sin_family = AF_INET;
                a->sin_port = htons(port);
                if (host[0] == '\0')
                        a->sin_addr.s_addr = htonl(INADDR_ANY);
                else if (streq(host, "localhost"))
                        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                else if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
                        *ret_error = "not an IPv4 address (names other than localhost are not resolved)";
                        return -EINVAL;
                }
                *ret_len = sizeof(struct sockaddr_in);
        }
        *ret = ss;
        return 0;
}
