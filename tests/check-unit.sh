#!/usr/bin/env bash
# The shipped systemd unit, as built: `systemd-analyze verify` must have nothing to say about it
# (any output is a problem: unknown keys are only warnings there), and `systemd-analyze security`
# must score it at most MAX_EXPOSURE. Skips (77) only when systemd-analyze is not installed.
set -euo pipefail

MAX_EXPOSURE=${MAX_EXPOSURE:-2.3} # 2.0 before CAP_SETUID/CAP_SETGID, which per-job user: needs
top_builddir=${top_builddir:-$(pwd)}
unit="$top_builddir/contrib/systemd/schedulerd.service"

if ! command -v systemd-analyze >/dev/null; then
        echo "SKIP: systemd-analyze is not installed"
        exit 77
fi
[ -f "$unit" ] || { echo "FAIL: $unit was not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# verify wants the programs it starts to exist: point them at the build tree's
sbindir=$(sed -n 's|^ExecStart=\(.*\)/schedulerd .*|\1|p' "$unit")
bindir=$(sed -n 's|^ExecReload=\(.*\)/schedctl .*|\1|p' "$unit")
sed -e "s|^ExecStart=$sbindir/|ExecStart=$top_builddir/|" -e "s|^ExecReload=$bindir/|ExecReload=$top_builddir/|" \
        "$unit" >"$tmp/schedulerd.service"

out=$(systemd-analyze verify --man=no "$tmp/schedulerd.service" 2>&1) || { echo "FAIL: verify: $out"; exit 1; }
if [ -n "$out" ]; then
        echo "FAIL: systemd-analyze verify has something to say about the unit:"
        echo "$out"
        exit 1
fi
echo "verify: clean"

out=$(systemd-analyze security --offline=true --no-pager "$tmp/schedulerd.service" 2>&1) || true
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
        echo "FAIL: no score in systemd-analyze security output:"
        echo "$out"
        exit 1
fi
echo "security: exposure $score (at most $MAX_EXPOSURE)"
printf '%s\n' "$out" | grep '✗' || true
if ! awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
        echo "FAIL: exposure $score is above $MAX_EXPOSURE: the unit lost some of its hardening"
        exit 1
fi
