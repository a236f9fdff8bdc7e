# One image for every lbstack component (operator, controller, speaker,
# webhook): the operator deploys this same image for the controller and the
# speakers (CONTROLLER_IMAGE / SPEAKER_IMAGE override it). The FRR sidecar's
# image (FRR_IMAGE, default quay.io/frrouting/frr:8.4.4) is referenced, not
# built here. The templates the operator renders (bindata/) are embedded in
# the binary.
#
#   docker build -t quay.io/lbstack/lbstack:v0.1.0 --build-arg VERSION=v0.1.0 .

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/lbstack/lbstack/pkg/version.Version=${VERSION}" \
      -o /out/lbstack .


# The must-gather image (docker build --target must-gather -t
# quay.io/lbstack/lbstack-must-gather:v0.1.0 .): `oc adm must-gather` runs
# /usr/bin/gather in it and copies /must-gather out with rsync or tar from a
# second container running a shell, so this one needs bash, rsync and tar.
# The CSV names it in operators.openshift.io/must-gather-image.
FROM debian:bookworm-slim AS must-gather
RUN apt-get update && apt-get install -y --no-install-recommends rsync tar procps \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lbstack /usr/bin/lbstack
COPY hack/must-gather/gather /usr/bin/gather
ENTRYPOINT ["/usr/bin/gather"]

# The component image, the default (last) target. Static binary, no shell,
# no package manager. The default user is the unprivileged 65532 (operator,
# controller, webhook); the speaker pods run as root with only NET_RAW and
# NET_ADMIN, which the operator renders.
FROM gcr.io/distroless/static-debian12:nonroot AS lbstack
COPY --from=build /out/lbstack /usr/bin/lbstack
USER 65532:65532
ENTRYPOINT ["/usr/bin/lbstack"]
