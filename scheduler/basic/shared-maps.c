/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mman.h>

#include "basic/macro.h"
#include "basic/shared-maps.h"

/* ranges per pass: the daemon has two or three; more take another pass */
#define BATCH 32

int shared_maps_drop_writable(void) {
        int total = 0;
        for (;;) {
                uintptr_t lo[BATCH], hi[BATCH];
                unsigned n = 0;
                bool more = false;
                char line[512];

                /* collected, then unmapped: the file is not read while the maps change */
                FILE *f = fopen("/proc/self/maps", "re");
                if (!f)
                        return -errno;
                while (fgets(line, sizeof(line), f)) {
                        uintptr_t a, b;
                        char perms[8];
                        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &a, &b, perms) != 3 || perms[1] != 'w' ||
                            perms[3] != 's')
                                continue;
                        if (n == BATCH) {
                                more = true;
                                break;
                        }
                        lo[n] = a;
                        hi[n++] = b;
                }
                fclose(f);
                for (unsigned i = 0; i < n; i++)
                        if (munmap((void *) lo[i], hi[i] - lo[i]) < 0)
                                return -errno;
                total += (int) n;
                if (!more)
                        return total;
        }
}
