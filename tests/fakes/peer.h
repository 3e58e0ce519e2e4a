/* SPDX-License-Identifier: MIT */
#pragma once

/* Starting and stopping the test peers of tests/fakes (the fake Megazord, fauxqs, the SigV4
 * verifier) from Check programs, and a tiny HTTP helper for their control endpoints. */

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

typedef struct peer {
        pid_t pid;
        json_t *ready; /* the JSON line the peer printed when it was ready */
} peer;

/* Where tests/fakes is: $top_srcdir/tests/fakes, or ./tests/fakes without top_srcdir.
 * Returns a static buffer. */
const char *peer_fakes_dir(void);

/* True if PROGRAM (searched in PATH) runs `PROGRAM ARG` with exit status 0, quietly. */
bool peer_program_works(const char *program, const char *arg);

/* True if ARGV (ARGV[0] searched in PATH) runs with exit status 0, quietly. */
bool peer_command_works(char *const argv[]);

/* Spawns ARGV (ARGV[0] searched in PATH) with stdin from /dev/null and waits up to 30 s
 * for its first stdout line, a JSON object, stored in RET->ready. Returns 0 or a negative
 * errno (-ETIMEDOUT, -EBADMSG when the line is not JSON, -ECHILD when it exited first). */
int peer_start(char *const argv[], peer *ret);

/* SIGTERM, then reap (SIGKILL after 5 s). Safe on a zeroed peer. */
void peer_stop(peer *p);

/* Performs METHOD URL with BODY (NULL: none; sent as application/json). Stores the status
 * and the body (malloc'd, may be NULL). Returns 0 or -EIO if no response came. */
int peer_http(const char *method, const char *url, const char *body, long *ret_status, char **ret_body);
