# syntax=docker/dockerfile:1
# Multi-stage build of the usersync binary: a full Go toolchain to compile,
# a distroless image (no shell, no package manager, non-root) to run.
# One image serves every subcommand: `api` by default, `worker` by command.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=docker
# Pure Go (lib/pq, modernc.org/sqlite): a static binary without cgo.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/usersync ./cmd/usersync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usersync /usersync
# The home of the nonroot user is writable: the SQLite default and the dev
# files land in ./data there when DATABASE_URL is unset.
WORKDIR /home/nonroot
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usersync"]
CMD ["api"]
