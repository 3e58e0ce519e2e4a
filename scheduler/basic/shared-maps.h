/* SPDX-License-Identifier: MIT */
#pragma once

/* Writable shared memory a forked process inherited. A run is forked from the daemon (or from a
 * launcher forked from it) and so holds whatever the daemon had mapped MAP_SHARED and writable:
 * SQLite's WAL index of history.db, for one. A job writing there corrupts the history of every
 * job, whatever the permissions of the files, so a run's process drops those mappings before any
 * job code runs. */

/* Unmaps every writable MAP_SHARED mapping of the calling process (per /proc/self/maps). Only for
 * a freshly forked, single-threaded process that will not touch what it shared. Returns the
 * number unmapped, or -errno (/proc not mounted). */
int shared_maps_drop_writable(void);
