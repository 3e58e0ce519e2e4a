/* SPDX-License-Identifier: MIT */
#include "basic/jitter.h"

/* splitmix64's finalizer: every input bit reaches every output bit, so instants a second apart
 * get unrelated delays */
static uint64_t mix64(uint64_t z) {
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

usec_t jitter_delay(const char *job, usec_t instant, usec_t max) {
        uint64_t h = 14695981039346656037ULL; /* FNV-1a of the name */

        if (max == 0)
                return 0;
        for (const char *p = job; *p; p++)
                h = (h ^ (unsigned char) *p) * 1099511628211ULL;
        h = mix64(h ^ mix64(instant));
        /* the high half of h * max: uniform over [0, max) without the bias of h % max */
        return (usec_t) (((unsigned __int128) h * max) >> 64);
}
