# syntax=docker/dockerfile:1

# Build:  docker build -t oncall .
# Run:    docker run --rm -p 8080:8080 -v oncall-data:/data \
#           -v "$PWD/oncall.yaml:/etc/oncall/oncall.yaml:ro" \
#           -e DATABASE_URL=postgres://... oncall
# See docs/deploy.md.

# ---- build ------------------------------------------------------------------
# The builder runs on the build machine's platform and cross-compiles for the
# target one, so multi-arch builds (docker buildx --platform ...) need no
# emulation.
# go.mod asks for go 1.26.8 and the golang images set GOTOOLCHAIN=local, so
# the builder must be at least that release: GO_VERSION=1.26 follows the
# newest 1.26.x; pin a patch release (or a digest) for reproducible builds.
ARG GO_VERSION=1.26
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build

WORKDIR /src

# Module downloads first: this layer is reused as long as go.mod and go.sum
# do not change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

ARG TARGETOS
ARG TARGETARCH
# VERSION is stamped into main.version when the command declares it
# (the linker ignores -X for a variable that does not exist).
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/oncall ./cmd/oncall

# An empty data directory for the embedded NATS server. It is copied into the
# final image owned by the runtime user: a VOLUME directory the image lacks
# would be created root-owned and the non-root process could not write to it.
RUN mkdir -p /out/data

# ---- run --------------------------------------------------------------------
# distroless static: CA certificates, tzdata, /etc/passwd with "nonroot"
# (65532), no shell, no package manager. The binary also embeds tzdata
# (time/tzdata), so time zones work on any base.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/oncall /oncall

ENV ONCALL_DATA_DIR=/data \
    ONCALL_CONFIG=/etc/oncall/oncall.yaml \
    ONCALL_LISTEN=:8080

# The embedded JetStream store. Unused when NATS_URL points at a cluster.
VOLUME /data

USER 65532:65532
EXPOSE 8080

ENTRYPOINT ["/oncall"]
CMD ["serve"]
