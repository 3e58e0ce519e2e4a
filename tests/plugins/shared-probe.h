/* SPDX-License-Identifier: MIT */
#pragma once

/* What a job process can do to the shared memory it was forked with. For every MAP_SHARED
 * mapping in /proc/self/maps: is it mapped writable, does mprotect() make it writable, does a
 * store into it go through (tried in a forked process with a compare-and-swap of the value
 * there, so a success changes nothing), and does opening it again through /proc/self/map_files give a writable
 * mapping. Shared by the probe test plugin and tests/unit/test_start_gate.c. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct shared_probe {
        unsigned n_shared;   /* MAP_SHARED mappings seen */
        unsigned n_writable; /* of which writable in any of the four ways */
        char names[256];     /* the names of the shared mappings, ", "-separated */
        char first[512];     /* the first writable one: "NAME: how" */
} shared_probe;

static bool shared_probe_store(void *addr) {
        pid_t pid = fork();
        int st;
        if (pid < 0)
                return false;
        if (pid == 0) {
                (void) signal(SIGSEGV, SIG_DFL);
                (void) signal(SIGBUS, SIG_DFL);
                /* a compare-and-swap of the value there: a real store (compilers turn an add
                 * of 0 into a load), and nothing changes if it goes through */
                char *c = addr, v = __atomic_load_n(c, __ATOMIC_SEQ_CST);
                while (!__atomic_compare_exchange_n(c, &v, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
                        ;
                _exit(0);
        }
        if (waitpid(pid, &st, 0) != pid)
                return false;
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static bool shared_probe_remap(uintptr_t lo, uintptr_t hi) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/map_files/%" PRIxPTR "-%" PRIxPTR, lo, hi);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return false; /* not root (CAP_SYS_ADMIN), or not openable for writing */
        void *p = mmap(NULL, hi - lo, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED)
                return false;
        munmap(p, hi - lo);
        return true;
}

static void shared_probe_note(shared_probe *p, const char *name, const char *how) {
        if (p->n_writable++ == 0)
                snprintf(p->first, sizeof(p->first), "%s: %s", name, how);
}

/* Fills P; returns 0, or -1 when /proc/self/maps cannot be read. */
static int shared_probe_run(shared_probe *p) {
        char line[512];
        FILE *f = fopen("/proc/self/maps", "re");
        *p = (shared_probe) {};
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f)) {
                uintptr_t lo, hi;
                char perms[8] = "", name[256] = "";
                if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %255[^\n]", &lo, &hi, perms, name) < 3 ||
                    perms[3] != 's')
                        continue;
                p->n_shared++;
                size_t used = strlen(p->names);
                snprintf(p->names + used, sizeof(p->names) - used, "%s%s", used ? ", " : "", name[0] ? name : "[anon]");
                int prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0);
                if (perms[1] == 'w')
                        shared_probe_note(p, name, "mapped writable");
                else if (mprotect((void *) lo, hi - lo, PROT_READ | PROT_WRITE) == 0) {
                        shared_probe_note(p, name, "mprotect() made it writable");
                        (void) mprotect((void *) lo, hi - lo, prot);
                } else if (shared_probe_store((void *) lo))
                        shared_probe_note(p, name, "a store went through");
                else if (shared_probe_remap(lo, hi))
                        shared_probe_note(p, name, "reopened through /proc/self/map_files and mapped writable");
        }
        fclose(f);
        return 0;
}
