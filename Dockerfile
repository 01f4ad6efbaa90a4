# syntax=docker/dockerfile:1
# Multi-stage build of the usersync binary: a full Go toolchain to compile,
# a distroless image (no shell, no package manager, non-root) to run.
# One image serves every subcommand: `api` by default, `worker`, `migrate`,
# `doctor` and `rotate-secrets` by command. Container health checks run
# `usersync doctor` (--probe for the API), since there is no curl here.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=docker
# Pure Go (lib/pq, modernc.org/sqlite): a static binary without cgo.
# timetzdata embeds the time zone database, so that daily schedules'
# zones validate whatever the runtime image carries.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/usersync ./cmd/usersync

# static-debian12 has CA certificates (provider HTTPS) and a nonroot user
# (65532); nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usersync /usersync
# The home of the nonroot user is writable: the SQLite default and the dev
# files land in ./data there when DATABASE_URL is unset.
WORKDIR /home/nonroot
USER nonroot:nonroot
# 8080: the API (USERSYNC_LISTEN); 9090: /metrics of a worker when
# USERSYNC_METRICS_LISTEN is set.
EXPOSE 8080 9090
# SIGTERM stops gracefully: give the container 30 s (stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usersync"]
CMD ["api"]
