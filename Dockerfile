# syntax=docker/dockerfile:1
#
# mailtap: a static binary on distroless, running as nonroot (65532).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t mailtap .
#   docker run -d --name mailtap -v mailtap-data:/data \
#     -e MAILTAP_HOST=imap.example.com -e MAILTAP_USERNAME=me@example.com \
#     -e MAILTAP_PASSWORD_FILE=/run/secrets/imap_password mailtap
#
# See "Running in Docker" in README.md. internal/imagetest checks this file's contract and
# builds the binary with the same flags as below.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo, so no libc and no dynamic loader), reproducible paths,
# no symbol tables, version stamped into main.version.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mailtap .
# An empty /data owned by nonroot: a named volume mounted there starts with
# this ownership, so mailtap can write without running as root.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="mailtap" \
      org.opencontainers.image.description="Watch IMAP mailboxes and write every new email as a JSON file" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/mailtap /mailtap
COPY --from=build --chown=65532:65532 /out/data /data
# A mounted config goes to /etc/mailtap/config.json (found as ./config.json).
WORKDIR /etc/mailtap
# Records go to the volume. The status server listens on loopback inside the
# container, which is enough for HEALTHCHECK; to publish the page set
# MAILTAP_HTTP=0.0.0.0:8025 and MAILTAP_HTTP_TOKEN (mailtap refuses a
# non-loopback address without a token). Both variables override output.dir
# and http.addr of a mounted config file; the log says so.
ENV MAILTAP_OUT=/data \
    MAILTAP_HTTP=127.0.0.1:8025
VOLUME /data
EXPOSE 8025
# The SSH monitor: off until MAILTAP_SSH is set (-e MAILTAP_SSH=0.0.0.0:2222);
# the operators' keys are read from a mounted
# -v ./authorized_keys:/etc/mailtap/authorized_keys:ro (the file is only
# looked at when MAILTAP_SSH or ssh.addr is set). Like MAILTAP_HTTP, this
# variable overrides ssh.authorized_keys of a mounted config file (the log
# says so): mount the keys here, or pass -e MAILTAP_SSH_AUTHORIZED_KEYS=
# (empty: the file's value stands, e.g. read_only_keys alone). The host
# key is generated once into /data/.mailtap/ and its fingerprint logged.
ENV MAILTAP_SSH_AUTHORIZED_KEYS=/etc/mailtap/authorized_keys
EXPOSE 2222
USER 65532:65532
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/mailtap","healthcheck"]
ENTRYPOINT ["/mailtap","--headless"]
