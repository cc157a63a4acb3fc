#!/bin/sh
# Reproduces the figures of the README's "Performance" section: the measurements of
# issue 6 (backfill against mbsync, new-mail latency, memory, idle CPU),
# then the Go benchmarks of the parser, the store and the TUI.
#
# Needs root (the private Dovecot drops privileges itself) and Debian's
# dovecot-imapd, isync (mbsync) and time (GNU time, for peak RSS):
#   apt-get install dovecot-imapd isync time
#
# Environment:
#   MAILTAP_BENCH_MAX_LOAD=1.5  wait (up to 20 min) for the 1-minute load
#                               average to drop below this before starting
#   MAILTAP_BENCH_REPORT=FILE   where the Markdown table goes
#                               (default: $TMPDIR/mailtap-bench-results.md)
#   MAILTAP_BENCH_PROFILE=DIR   CPU and block profiles of the in-process
#                               backfill (go tool pprof -top DIR/backfill.cpu.pprof)
#   MAILTAP_BENCH_MESSAGES, _RUNS, _LATENCY_N, _IDLE_SECONDS, _LARGE_MB
#                               shrink the run (defaults 10000, 3, 200, 60, 100)
#   MAILTAP_BENCH_SCALE_ACCOUNTS, _FOLDERS, _MESSAGES, _IDLE_SECONDS,
#   MAILTAP_BENCH_BUDGET_SECONDS
#                               shrink the scale run (defaults 200, 5, 3, 60, 60);
#                               at full size it adds about 5 minutes and
#                               1,000 Dovecot processes
#   MAILTAP_BENCH_SCALE_PERF=DIR  perf record of the scale run's idle and burst
set -eu
cd "$(dirname "$0")/.."

if [ -n "${MAILTAP_BENCH_MAX_LOAD:-}" ]; then
	waited=0
	while :; do
		load=$(cut -d' ' -f1 /proc/loadavg)
		if awk -v l="$load" -v m="$MAILTAP_BENCH_MAX_LOAD" 'BEGIN { exit !(l < m) }'; then
			break
		fi
		if [ "$waited" -ge 1200 ]; then
			echo "load still $load after 20 min; measuring anyway" >&2
			break
		fi
		sleep 15
		waited=$((waited + 15))
	done
fi
echo "load average before: $(cat /proc/loadavg)"

export MAILTAP_BENCH=1
export MAILTAP_BENCH_REPORT="${MAILTAP_BENCH_REPORT:-${TMPDIR:-/tmp}/mailtap-bench-results.md}"
go test ./bench -run '^TestBench' -v -count=1 -timeout 60m
go test ./bench -run '^$' -bench 'Parse|Store' -benchmem
go test ./tui -run '^$' -bench . -benchmem
echo "load average after: $(cat /proc/loadavg)"
echo "results table: $MAILTAP_BENCH_REPORT"
