/* SPDX-License-Identifier: MIT */
#pragma once

#include <sys/types.h>

/* Creates directory PATH and any missing parents with MODE; an existing directory is fine.
 * Returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* mkdir_p() of the directory containing PATH (nothing for a bare name). */
int mkdir_parent(const char *path, mode_t mode);
