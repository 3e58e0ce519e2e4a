/* SPDX-License-Identifier: MIT */
#pragma once

/* Retry policy arithmetic (SPEC section 5). Pure. */

#include <stdbool.h>
#include <stdint.h>

#include "basic/macro.h"
#include "core/registry.h"

/* Delay before retry number N (1-based) of POLICY: backoff * 2^(N-1), capped at max_backoff,
 * then spread by +-10% using RANDOM (any uniformly random 32-bit value) so runs that failed
 * together do not retry in lockstep; the result never exceeds max_backoff. */
usec_t retry_delay(const retry_policy *policy, unsigned n, uint32_t random);
