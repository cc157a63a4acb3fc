// Package bench measures mailtap where users feel it (issue 6, design.md
// §9): backfill throughput of a private Dovecot against mbsync in the same
// run, new-mail latency from APPEND to a durable record next to the bare
// IDLE floor, peak memory on a 100 MB message, idle memory and CPU, plus Go
// benchmarks of the parser and the store for profiling; and at scale
// (issue 14): 1,000 mailboxes in one process, and more folders than the
// server allows connections.
//
// The package itself is the deterministic message generator (Corpus,
// Message, LargeMessage). The measurements are tests that print their
// figures and skip unless MAILTAP_BENCH=1, so `go test ./...` and CI never
// run them; bench/run.sh runs them all, and the README's "Performance" section lists the
// figures with the commands that produced them. Nothing here asserts a
// timing: a figure that misses its target is reported, not failed.
//
// The measurements read /proc, inotify and rusage and drive Dovecot and
// mbsync, so their files build on Linux only; the Go benchmarks of the
// parser and the store build (and run) everywhere.
package bench
