/* SPDX-License-Identifier: MIT */
/* Replays fuzz inputs through one target without libFuzzer, for `make check`: every file named
 * on the command line (directories are read one level deep), or, with no arguments, every file
 * of $top_srcdir/tests/fuzz/corpus/FUZZ_NAME. A crash or a violated property aborts, so the
 * test fails and names the input on stderr. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

static int replay_file(const char *path) {
        FILE *f = fopen(path, "re");
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f) {
                fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 4096;
                        uint8_t *b = realloc(buf, cap);
                        if (!b) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = b;
                }
                size_t k = fread(buf + n, 1, cap - n, f);
                n += k;
                if (k == 0)
                        break;
        }
        fclose(f);
        /* a copy of exactly N bytes, so ASan sees reads past the input as libFuzzer would */
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        if (n)
                memcpy(exact, buf, n);
        free(buf);
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
        (void) LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        return 0;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static int replay_path(const char *path, unsigned *count) {
        struct stat st;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode)) {
                (*count)++;
                return replay_file(path);
        }
        DIR *d = opendir(path);
        if (!d) {
                fprintf(stderr, "replay: cannot read directory %s: %s\n", path, strerror(errno));
                return -1;
        }
        char **names = NULL;
        size_t n = 0;
        int r = 0;
        for (struct dirent *e; (e = readdir(d));) {
                if (e->d_name[0] == '.')
                        continue;
                char **v = realloc(names, (n + 1) * sizeof(char *));
                if (!v) {
                        r = -1;
                        break;
                }
                names = v;
                if (asprintf(&names[n], "%s/%s", path, e->d_name) < 0) {
                        r = -1;
                        break;
                }
                n++;
        }
        closedir(d);
        /* in name order, so a failure is reproducible from the log */
        if (n > 0)
                qsort(names, n, sizeof(char *), name_cmp);
        for (size_t i = 0; i < n; i++) {
                if (r >= 0 && replay_path(names[i], count) < 0)
                        r = -1;
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        unsigned count = 0;
        int r = 0;

        (void) LLVMFuzzerInitialize(&argc, &argv);
        if (argc > 1) {
                for (int i = 1; i < argc; i++)
                        if (replay_path(argv[i], &count) < 0)
                                r = -1;
        } else {
                const char *top = getenv("top_srcdir");
                char *dir;
                if (asprintf(&dir, "%s/tests/fuzz/corpus/%s", top ?: ".", FUZZ_NAME) < 0)
                        return EXIT_FAILURE;
                r = replay_path(dir, &count);
                free(dir);
        }
        if (r >= 0 && count == 0) {
                fprintf(stderr, "replay: no inputs found; expected corpus files\n");
                return EXIT_FAILURE;
        }
        fprintf(stderr, "replay: %u input%s replayed without a crash\n", count, count == 1 ? "" : "s");
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
