/* SPDX-License-Identifier: MIT */
#pragma once

/* Whether a file may steer what runs as the daemon's user: the registry, its drop-ins and the
 * job plugins. The rule is cron's and sshd's StrictModes':
 *
 *   - the file and every directory from / down to it are owned by root or by the effective
 *     uid of this process (the daemon's user), and are not writable by group or others;
 *   - one exception for directories above the one holding the file: a sticky directory owned
 *     by root or the daemon's user (like /tmp, mode 1777) is accepted, because others may add
 *     entries there but cannot rename or remove ours; the entry below it must itself pass.
 *     The directory that holds the file never gets that exception: others could add files to
 *     it (a plugin_dir or jobs.d of mode 1777 is refused).
 *
 * Paths are resolved once (realpath) and then walked from / with O_NOFOLLOW, checking each
 * opened descriptor, so what was checked is what is opened. */

#include <stdbool.h>

typedef enum trust_flags {
        /* resolve symbolic links in the last component too (the registry named on the command
         * line); without it a symbolic link there is refused */
        TRUST_FOLLOW = 1 << 0,
        /* the file is named, not found by listing its directory (as drop-ins and plugins in
         * plugin_dir are): a sticky directory may hold it too, as others cannot replace it there */
        TRUST_STICKY_HOLDER = 1 << 1,
} trust_flags;

/* Opens directory PATH (O_PATH) after checking it and every directory above it. Returns 0 and
 * the descriptor, or a negative errno and (if RET_ERROR) a malloc'ed sentence naming the path,
 * its owner or mode, and the command that fixes it: -EPERM for a trust refusal, else the
 * error of realpath()/open(). */
int trust_open_dir(const char *path, int *ret_fd, char **ret_error);

/* trust_open_dir() with FLAGS (TRUST_STICKY_HOLDER: PATH itself may be sticky). */
int trust_open_dir_full(const char *path, trust_flags flags, int *ret_fd, char **ret_error);

/* Opens the regular file PATH read-only after checking it and the directories above it as
 * described above; the file itself must not be a symbolic link unless TRUST_FOLLOW. Returns 0
 * and the descriptor (O_CLOEXEC), or a negative errno with *RET_ERROR as for
 * trust_open_dir(). */
int trust_open_file(const char *path, trust_flags flags, int *ret_fd, char **ret_error);

/* Whether UID may own trusted files: root or this process's effective uid. */
bool trust_uid_ok(unsigned uid);
