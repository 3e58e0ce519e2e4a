/* SPDX-License-Identifier: MIT */
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Forks a process whose parent is the caller's parent (the daemon), not the caller (a launcher
 * or a worker zygote): fork() with CLONE_PARENT. glibc has no wrapper for that flag without a
 * new stack; the raw system call is fork's own, and glibc (>= 2.34) takes the thread id from
 * the kernel when a process signals itself, so raise() and abort() in the child reach the
 * child. The caller must be single-threaded and hold no lock. Returns as fork() does. */
static inline pid_t fork_sibling(void) {
        return (pid_t) syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
}
