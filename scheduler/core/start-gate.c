/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/start-gate.h"

enum {
        SLOT_FREE,
        SLOT_WAITING,
        SLOT_OPEN,
        SLOT_ABANDONED,
};

typedef struct gate_slot {
        _Atomic uint32_t state;
        uint32_t reserved;
        int64_t id;
} gate_slot;

/* What the processes share. Waiters sleep on GEN with their slot's bit (slot mod 32) as the
 * futex bitset, so a wake for a few slots does not rouse every waiting child. */
typedef struct gate_shared {
        _Atomic uint32_t gen;
        uint32_t reserved[15];
        gate_slot slots[];
} gate_shared;

struct start_gate {
        gate_shared *sh;       /* the owner's writable view: not inherited by children */
        const gate_shared *ro; /* the view children inherit and wait on */
        size_t size;
        pid_t owner; /* in a child, SH's range is unmapped and may hold something else since */
        unsigned n_slots;
        unsigned *free_slots; /* a stack */
        unsigned n_free;
        unsigned *opened; /* opened, not yet released */
        unsigned n_opened;
        uint32_t wake_mask;
};

static uint32_t slot_bit(unsigned slot) {
        return UINT32_C(1) << (slot % 32);
}

/* The two views of one sealed memfd. The writable one is MADV_DONTFORK: no child (the launcher,
 * the runs it or the daemon forks) has it, so no job can open or turn away another's slot. The
 * read-only one is mapped after F_SEAL_FUTURE_WRITE, so the kernel leaves it without VM_MAYWRITE:
 * mprotect(PROT_WRITE) on it fails, and so does any new writable shared mapping of the memfd
 * (reopened through /proc/self/map_files by a root job); F_SEAL_SHRINK keeps a job from
 * truncating it under the daemon (SIGBUS). The futex is keyed by the memfd's inode and offset,
 * so a wake through one view reaches sleepers on the other. */
static int map_views(size_t size, gate_shared **ret_rw, const gate_shared **ret_ro) {
        int fd = memfd_create("schedulerd-start-gate", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        gate_shared *rw = MAP_FAILED;
        void *ro = MAP_FAILED;
        int q = 0;

        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t) size) < 0)
                q = -errno;
        else if ((rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
                q = -errno;
        else if (madvise(rw, size, MADV_DONTFORK) < 0 ||
                 fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
                q = -errno; /* F_SEAL_FUTURE_WRITE: Linux >= 5.1 */
        else if ((ro = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
                q = -errno;
        close(fd);
        if (q < 0) {
                if (rw != MAP_FAILED)
                        (void) munmap(rw, size);
                return q;
        }
        *ret_rw = rw;
        *ret_ro = ro;
        return 0;
}

int start_gate_new(unsigned n_slots, start_gate **ret) {
        _cleanup_free_ start_gate *g = calloc(1, sizeof(start_gate));
        if (!g || n_slots == 0)
                return g ? -EINVAL : -ENOMEM;
        g->free_slots = calloc(n_slots, sizeof(unsigned));
        g->opened = calloc(n_slots, sizeof(unsigned));
        if (!g->free_slots || !g->opened) {
                free(g->free_slots);
                free(g->opened);
                return -ENOMEM;
        }
        g->size = sizeof(gate_shared) + (size_t) n_slots * sizeof(gate_slot);
        int q = map_views(g->size, &g->sh, &g->ro);
        if (q < 0) {
                free(g->free_slots);
                free(g->opened);
                return q;
        }
        g->owner = getpid();
        g->n_slots = n_slots;
        for (unsigned i = 0; i < n_slots; i++)
                g->free_slots[i] = n_slots - 1 - i;
        g->n_free = n_slots;
        *ret = TAKE_PTR(g);
        return 0;
}

start_gate *start_gate_free(start_gate *g) {
        if (!g)
                return NULL;
        if (getpid() == g->owner)
                (void) munmap(g->sh, g->size);
        (void) munmap((void *) g->ro, g->size);
        free(g->free_slots);
        free(g->opened);
        free(g);
        return NULL;
}

int start_gate_take(start_gate *g, unsigned *ret_slot) {
        if (g->n_free == 0)
                return -EBUSY;
        unsigned slot = g->free_slots[--g->n_free];
        g->sh->slots[slot].id = 0;
        atomic_store_explicit(&g->sh->slots[slot].state, SLOT_WAITING, memory_order_release);
        *ret_slot = slot;
        return 0;
}

void start_gate_put(start_gate *g, unsigned slot) {
        if (!g || slot >= g->n_slots || atomic_load(&g->sh->slots[slot].state) == SLOT_FREE)
                return;
        /* opened and given back before the release: its next owner must not inherit that */
        for (unsigned i = 0; i < g->n_opened; i++)
                if (g->opened[i] == slot) {
                        g->opened[i] = g->opened[--g->n_opened];
                        break;
                }
        atomic_store(&g->sh->slots[slot].state, SLOT_FREE);
        g->free_slots[g->n_free++] = slot;
}

void start_gate_open(start_gate *g, unsigned slot, int64_t id) {
        /* the id now, the state at the release: a child woken before (it shares its futex bit
         * with an abandoned one) must go on waiting */
        g->sh->slots[slot].id = id;
        g->opened[g->n_opened++] = slot;
}

void start_gate_release(start_gate *g) {
        if (!g)
                return;
        for (unsigned i = 0; i < g->n_opened; i++) {
                unsigned slot = g->opened[i];
                /* a slot given back or turned away since it was opened stays as it is */
                if (atomic_load(&g->sh->slots[slot].state) != SLOT_WAITING)
                        continue;
                atomic_store_explicit(&g->sh->slots[slot].state, SLOT_OPEN, memory_order_release);
                g->wake_mask |= slot_bit(slot);
        }
        g->n_opened = 0;
        start_gate_wake(g);
}

void start_gate_abandon(start_gate *g, unsigned slot) {
        atomic_store_explicit(&g->sh->slots[slot].state, SLOT_ABANDONED, memory_order_release);
        g->wake_mask |= slot_bit(slot);
}

void start_gate_wake(start_gate *g) {
        if (!g || g->wake_mask == 0)
                return;
        /* a waiter that read the old generation and has not slept yet finds it changed */
        atomic_fetch_add(&g->sh->gen, 1);
        (void) syscall(SYS_futex, &g->sh->gen, FUTEX_WAKE_BITSET, INT_MAX, NULL, NULL, g->wake_mask);
        g->wake_mask = 0;
}

/* Where a waiting child's signal handler leaves start_gate_wait() for: the wait cannot be woken
 * through the gate by the child itself (it has no writable view), so a signal that lands between
 * the check of CANCELLED and the futex call jumps out instead of being slept through. */
static sigjmp_buf wait_exit;
static volatile sig_atomic_t waiting;

void start_gate_interrupt(void) {
        if (waiting) {
                waiting = 0;
                siglongjmp(wait_exit, 1);
        }
}

int start_gate_wait(const start_gate *g, unsigned slot, bool (*cancelled)(void), int64_t *ret_id) {
        const gate_slot *s = &g->ro->slots[slot];
        int q = -EINTR;

        /* the handler's jump restores the signal mask it ran under */
        if (sigsetjmp(wait_exit, 1))
                return -EINTR;
        waiting = 1;
        atomic_signal_fence(memory_order_seq_cst);
        for (;;) {
                uint32_t gen = atomic_load(&g->ro->gen);
                uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
                if (st == SLOT_OPEN) {
                        *ret_id = s->id;
                        q = 0;
                        break;
                }
                if (st != SLOT_WAITING) {
                        q = -ECANCELED;
                        break;
                }
                if (cancelled && cancelled())
                        break;
                /* not FUTEX_PRIVATE: the daemon wakes it through its own mapping; waiting needs only
                 * read access. Returns at once (EAGAIN) if the generation moved since it was read. */
                (void) syscall(SYS_futex, &g->ro->gen, FUTEX_WAIT_BITSET, gen, NULL, NULL, slot_bit(slot));
        }
        waiting = 0;
        atomic_signal_fence(memory_order_seq_cst);
        return q;
}
