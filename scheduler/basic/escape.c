/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/escape.h"

size_t utf8_sequence(const unsigned char *p, size_t n) {
        size_t len;
        uint32_t cp, min;

        if (p[0] < 0x80)
                return 1;
        if ((p[0] & 0xE0) == 0xC0)
                len = 2, cp = p[0] & 0x1F, min = 0x80;
        else if ((p[0] & 0xF0) == 0xE0)
                len = 3, cp = p[0] & 0x0F, min = 0x800;
        else if ((p[0] & 0xF8) == 0xF0)
                len = 4, cp = p[0] & 0x07, min = 0x10000;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return len;
}

size_t escape_controls_buf(const char *s, size_t n, const char *keep, char *buf, size_t size) {
        const unsigned char *p = (const unsigned char *) s;
        size_t o = 0;

        for (size_t i = 0; i < n;) {
                char esc[8];
                const char *out = (const char *) p + i;
                size_t k = utf8_sequence(p + i, n - i), w;
                if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7F) && !(p[i] && strchr(keep, p[i])))) {
                        w = (size_t) snprintf(esc, sizeof(esc), "\\x%02X", p[i]);
                        out = esc;
                        k = 1;
                } else if (k == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0) {
                        w = (size_t) snprintf(esc, sizeof(esc), "\\u%04X", p[i + 1]);
                        out = esc;
                } else
                        w = k;
                if (o + w >= size)
                        break;
                memcpy(buf + o, out, w);
                o += w;
                i += k;
        }
        buf[o] = '\0';
        return o;
}

char *escape_controls(const char *s, size_t n, const char *keep) {
        /* "\xNN" is the longest: 4 bytes for each byte */
        if (n > (SIZE_MAX - 1) / 4)
                return NULL;
        char *buf = malloc(n * 4 + 1);
        if (buf)
                (void) escape_controls_buf(s, n, keep, buf, n * 4 + 1);
        return buf;
}
