/* SPDX-License-Identifier: MIT */
#pragma once
/* The libFuzzer entry points every target in tests/fuzz defines. The same target files are
 * linked either with libFuzzer (tests/fuzz/build.sh) or with replay-main.c, which feeds the
 * checked-in corpus to them under `make check`. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property the code under test promised does not hold: report it and abort, so libFuzzer
 * keeps the input as a crash and the replay test fails. */
#define FUZZ_CHECK(cond, ...)                                                                         \
        do {                                                                                          \
                if (!(cond)) {                                                                        \
                        fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                                 \
                        fputc('\n', stderr);                                                          \
                        abort();                                                                      \
                }                                                                                     \
        } while (0)

/* DATA as a NUL-terminated string (bytes after an embedded NUL are cut off by the consumer).
 * Returns NULL on OOM. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < size; i++)
                s[i] = (char) data[i];
        s[size] = '\0';
        return s;
}
