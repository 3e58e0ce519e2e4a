/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

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
        gate_shared *sh;
        size_t size;
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
        g->sh = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (g->sh == MAP_FAILED) {
                free(g->free_slots);
                free(g->opened);
                return -errno;
        }
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
        (void) munmap(g->sh, g->size);
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

void start_gate_interrupt(start_gate *g) {
        /* a sleeper that read the old value and has not slept yet gets EAGAIN; others go on */
        if (g)
                atomic_fetch_add(&g->sh->gen, 1);
}

int start_gate_wait(start_gate *g, unsigned slot, bool (*cancelled)(void), int64_t *ret_id) {
        gate_slot *s = &g->sh->slots[slot];
        for (;;) {
                uint32_t gen = atomic_load(&g->sh->gen);
                uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
                if (st == SLOT_OPEN) {
                        *ret_id = s->id;
                        return 0;
                }
                if (st != SLOT_WAITING)
                        return -ECANCELED;
                if (cancelled && cancelled())
                        return -EINTR;
                /* returns at once (EAGAIN) if the generation moved since it was read */
                (void) syscall(SYS_futex, &g->sh->gen, FUTEX_WAIT_BITSET, gen, NULL, NULL, slot_bit(slot));
        }
}
