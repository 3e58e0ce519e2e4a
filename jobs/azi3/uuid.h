/* SPDX-License-Identifier: MIT */
#pragma once

/* Random (version 4) UUIDs, used as the Call-Ref of every Megazord request so a call can be
 * found in both services' logs; time-ordered (version 7) ones in alarm reference ids. */

#include <stdbool.h>
#include <stdint.h>

/* 36 characters and the terminating NUL. */
#define AZI3_UUID_STRING_MAX 37

/* Formats the 16 bytes BYTES as a version 4, variant 1 UUID in lowercase
 * ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx"), overwriting the version and variant bits.
 * Pure: the randomness comes from the caller. */
void azi3_uuid_format_v4(const uint8_t bytes[16], char ret[AZI3_UUID_STRING_MAX]);

/* Writes a fresh random UUID (from getrandom(2)) to RET. Returns 0, or a negative errno if
 * the kernel could not provide randomness; RET is untouched then. */
int azi3_uuid_random(char ret[AZI3_UUID_STRING_MAX]);

/* Formats a version 7, variant 1 UUID (RFC 9562): the 48-bit big-endian MSEC, then the random
 * bits of BYTES (74 of them used). Ids made in time order sort in time order, so a unique index
 * on them is appended to rather than written at random. Pure. */
void azi3_uuid_format_v7(uint64_t msec, const uint8_t bytes[16], char ret[AZI3_UUID_STRING_MAX]);

/* Writes a fresh version 7 UUID for MSEC with random bits from getrandom(2) to RET. Returns 0,
 * or a negative errno; RET is untouched then. */
int azi3_uuid_v7(uint64_t msec, char ret[AZI3_UUID_STRING_MAX]);

/* True if S is a lowercase or uppercase version 4, variant 1 UUID string and nothing else. */
bool azi3_uuid_is_v4(const char *s);

/* As azi3_uuid_is_v4(), for version 7. */
bool azi3_uuid_is_v7(const char *s);
