// Package imagetest checks what the Docker image promises without a Docker
// engine: the Dockerfile's contract (distroless nonroot, /data volume,
// EXPOSE, HEALTHCHECK, ENTRYPOINT, the build flags), and a binary built
// with exactly those flags: static (no dynamic loader, no shared
// libraries), `mailtap healthcheck` exiting 0 only against a healthy status
// server, and `mailtap --headless` configured from MAILTAP_* variables alone
// writing records and stopping cleanly on SIGTERM within 10 s.
//
// The package has no non-test code. -short skips the binary tests (they
// compile mailtap). MAILTAP_IMAGE_BINARY=/path/to/mailtap tests a binary
// taken out of a built image (docker cp) instead of building one.
package imagetest
