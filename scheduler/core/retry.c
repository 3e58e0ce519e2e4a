/* SPDX-License-Identifier: MIT */
#include "core/retry.h"

usec_t retry_delay(const retry_policy *policy, unsigned n, uint32_t random) {
        usec_t d = policy->backoff;

        if (n == 0)
                n = 1;
        for (unsigned i = 1; i < n && d < policy->max_backoff; i++)
                d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
        if (d > policy->max_backoff)
                d = policy->max_backoff;

        /* jitter in [-10%, +10%) */
        usec_t span = d / 5;
        usec_t j = span > 0 ? (usec_t) (((unsigned __int128) span * random) >> 32) : 0;
        d = d - d / 10 + j;
        return MIN(d, policy->max_backoff);
}
