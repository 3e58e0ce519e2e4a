/* SPDX-License-Identifier: MIT */
#include "basic/line-budget.h"

void line_budget_init(line_budget *b, unsigned burst, unsigned per_sec, uint64_t cap) {
        *b = (line_budget) { .burst = burst, .per_sec = per_sec, .cap = cap, .tokens = burst };
}

bool line_budget_take(line_budget *b, usec_t now) {
        if (!b->started) {
                b->started = true;
                b->refilled = now;
        }
        if (now > b->refilled) {
                uint64_t add = (now - b->refilled) * b->per_sec / USEC_PER_SEC;
                if (add > 0) {
                        b->tokens = MIN(b->tokens + add, (uint64_t) b->burst);
                        /* keep the fraction of a token not added yet */
                        b->refilled += add * USEC_PER_SEC / b->per_sec;
                }
        }
        if (b->tokens == 0 || b->passed >= b->cap) {
                b->dropped++;
                return false;
        }
        b->tokens--;
        b->passed++;
        return true;
}

bool line_budget_capped(const line_budget *b) {
        return b->passed >= b->cap;
}
