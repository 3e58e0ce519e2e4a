/* SPDX-License-Identifier: MIT */
/* Fuzzes azi3_config_parse(): any bytes give either a configuration or a list of errors, each
 * with a message and a place, never both and never neither. */
#include <errno.h>
#include <string.h>
#include "azi3/config.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        azi3_config_errors errs = {};
        azi3_config *c = NULL;
        int r;

        r = azi3_config_parse((const char *) data, size, "/etc/schedulerd/azi3.yaml", &c, &errs);
        FUZZ_CHECK(r == 0 || r == -EINVAL, "azi3_config_parse returned %d", r);
        if (r == 0) {
                FUZZ_CHECK(c && errs.n == 0, "success with %zu errors", errs.n);
                for (size_t i = 0; i < c->n_rules; i++) {
                        const azi3_rule *rule = &c->rules[i];
                        FUZZ_CHECK(azi3_config_find_rule(c, rule->robot_id, rule->rule_id) == rule,
                                   "rule %zu not found by its own key", i);
                        FUZZ_CHECK(rule->start_minute < 24 * 60 && rule->end_minute < 24 * 60 && rule->window > 0,
                                   "rule %zu out of range", i);
                }
        } else {
                FUZZ_CHECK(errs.n > 0, "failure without an error");
                for (size_t i = 0; i < errs.n; i++) {
                        char *m = azi3_config_error_format(&errs, i);
                        FUZZ_CHECK(m && errs.items[i].message && errs.items[i].message[0], "error %zu is empty", i);
                        free(m);
                }
        }
        azi3_config_free(c);
        azi3_config_errors_clear(&errs);
        return 0;
}
