/* SPDX-License-Identifier: MIT */
#include "uuid.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* BYTES with VERSION and variant 1 set, as a string. */
static void uuid_format(const uint8_t bytes[16], unsigned version, char ret[AZI3_UUID_STRING_MAX]) {
        static const char hex[] = "0123456789abcdef";
        uint8_t b[16];
        size_t j = 0;

        memcpy(b, bytes, sizeof(b));
        b[6] = (uint8_t) ((b[6] & 0x0f) | (version << 4));
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80); /* variant 1: RFC 4122 */

        for (size_t i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        ret[j++] = '-';
                ret[j++] = hex[b[i] >> 4];
                ret[j++] = hex[b[i] & 0x0f];
        }
        ret[j] = '\0';
}

void azi3_uuid_format_v4(const uint8_t bytes[16], char ret[AZI3_UUID_STRING_MAX]) {
        uuid_format(bytes, 4, ret);
}

void azi3_uuid_format_v7(uint64_t msec, const uint8_t bytes[16], char ret[AZI3_UUID_STRING_MAX]) {
        uint8_t b[16];

        memcpy(b, bytes, sizeof(b));
        for (size_t i = 0; i < 6; i++)
                b[i] = (uint8_t) (msec >> (40 - 8 * i));
        uuid_format(b, 7, ret);
}

static int random_bytes(uint8_t b[16]) {
        size_t got = 0;

        while (got < 16) {
                ssize_t n = getrandom(b + got, 16 - got, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                got += (size_t) n;
        }
        return 0;
}

int azi3_uuid_random(char ret[AZI3_UUID_STRING_MAX]) {
        uint8_t b[16];
        int r = random_bytes(b);

        if (r < 0)
                return r;
        azi3_uuid_format_v4(b, ret);
        return 0;
}

int azi3_uuid_v7(uint64_t msec, char ret[AZI3_UUID_STRING_MAX]) {
        uint8_t b[16];
        int r = random_bytes(b);

        if (r < 0)
                return r;
        azi3_uuid_format_v7(msec, b, ret);
        return 0;
}

static bool uuid_is(const char *s, char version) {
        if (!s || strlen(s) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (s[i] != '-')
                                return false;
                } else if (!isxdigit((unsigned char) s[i]))
                        return false;
        }
        return s[14] == version && strchr("89abAB", s[19]);
}

bool azi3_uuid_is_v4(const char *s) {
        return uuid_is(s, '4');
}

bool azi3_uuid_is_v7(const char *s) {
        return uuid_is(s, '7');
}
