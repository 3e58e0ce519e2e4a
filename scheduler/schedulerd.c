/* SPDX-License-Identifier: MIT */
/* schedulerd: the daemon. Runs in the foreground, as systemd (Type=notify) expects. */

#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>

#include "control/metrics-http.h"
#include "control/server.h"
#include "basic/log.h"
#include "core/cgroup.h"
#include "core/manager.h"
#include "basic/tz.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG SYSCONFDIR "/schedulerd/schedulerd.yaml"

/* A configuration the daemon refuses: an invalid or untrusted registry, a control_socket that
 * cannot be a socket. Restarting cannot help until someone fixes it, so the unit lists this
 * status (sysexits.h's EX_CONFIG) in RestartPreventExitStatus=. */
#define EXIT_CONFIG 78

static int exit_status(int r) {
        return r == -EINVAL || r == -ENAMETOOLONG || r == -EEXIST ? EXIT_CONFIG : EXIT_FAILURE;
}

static void help(void) {
        printf("Usage: schedulerd [OPTIONS]\n"
               "\n"
               "Runs the job scheduler in the foreground.\n"
               "\n"
               "  -c, --config FILE      registry (default %s)\n"
               "      --state-dir DIR    override scheduler.state_dir (history.db lives there)\n"
               "      --plugin-dir DIR   override scheduler.plugin_dir\n"
               "      --socket PATH      override scheduler.control_socket\n"
               "  -h, --help             this text\n"
               "      --version          print the version\n"
               "\n"
               "Signals: SIGHUP reloads the registry, SIGTERM/SIGINT stop gracefully.\n"
               "Exit status: 0 after a clean stop, 78 for a configuration it refuses (fix it, then\n"
               "start again), 1 for other failures, 2 for a usage error.\n",
               DEFAULT_CONFIG);
}

int main(int argc, char **argv) {
        enum { ARG_STATE_DIR = 0x100, ARG_PLUGIN_DIR, ARG_SOCKET, ARG_VERSION };
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "plugin-dir", required_argument, NULL, ARG_PLUGIN_DIR },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        manager_options o = { .config = DEFAULT_CONFIG };
        _cleanup_(manager_freep) manager *m = NULL;
        control *c = NULL;
        metrics_http *mh = NULL;
        sigset_t ss;
        int opt, r;

        while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) >= 0) {
                switch (opt) {
                case 'c':
                        o.config = optarg;
                        break;
                case ARG_STATE_DIR:
                        o.state_dir = optarg;
                        break;
                case ARG_PLUGIN_DIR:
                        o.plugin_dir = optarg;
                        break;
                case ARG_SOCKET:
                        o.control_socket = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        puts(PACKAGE_STRING);
                        return 0;
                default:
                        fprintf(stderr, "Try 'schedulerd --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "schedulerd: unexpected argument \"%s\"; try 'schedulerd --help'.\n", argv[optind]);
                return 2;
        }

        log_open("schedulerd");

        /* signals are taken through the event loop; SIGCHLD must be blocked for child sources */
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        /* a peer that hangs up on the control socket must not kill the daemon */
        signal(SIGPIPE, SIG_IGN);
        /* Every run in flight (and every run forked ahead of its fire) holds a few descriptors:
         * take the whole hard limit, as no select() is used here; runs get the original back. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur < nofile.rlim_max) {
                run_set_default_nofile(&nofile);
                nofile.rlim_cur = nofile.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &nofile);
        }

        /* before anything forks: every run then gets a cgroup of its own, where one is delegated */
        (void) cgroup_setup();

        r = manager_new(&o, &m);
        if (r < 0)
                return exit_status(r);
        r = control_new(m, &c);
        if (r < 0)
                return exit_status(r);
        r = metrics_http_new(m, &mh);
        if (r < 0)
                return exit_status(r);
        r = manager_run(m);
        metrics_http_free(mh);
        control_free(c);
        m = manager_free(m);
        tz_cache_clear();
        /* stopped because another daemon took its cluster node name: a configuration to fix, not a
         * fault a restart cures (the unit's RestartPreventExitStatus) */
        if (r == -EADDRINUSE)
                return EXIT_CONFIG;
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
