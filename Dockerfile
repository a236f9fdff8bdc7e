# One image for every lbstack component (operator, controller, speaker,
# webhook): the operator deploys this same image for the controller and the
# speakers (CONTROLLER_IMAGE / SPEAKER_IMAGE override it). The FRR sidecar's
# image (FRR_IMAGE) is the frr target below. The templates the operator
# renders (bindata/) are embedded in the binary.
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

# FRR's image, the default FRR_IMAGE (docker build --target frr -t
# quay.io/lbstack/lbstack-frr:v0.1.0 .): Debian 13's FRR 10.3, which Debian's
# security team maintains (FRR 8.4 is affected by bgpd crashes fixed after
# 9.0: CVE-2023-46752, -46753, -47234, -47235). It keeps the contract of
# FRR's own image (quay.io/frrouting/frr) that the speaker DaemonSet relies
# on: the frr user 100:101 (frrvty 102), /etc/frr and /var/run/frr owned by
# it, /sbin/tini -- /usr/lib/frr/docker-start; any image with that contract
# can replace it (FRR_IMAGE).
FROM debian:trixie-slim AS frr
RUN groupadd -r -g 101 frr && groupadd -r -g 102 frrvty \
    && useradd -r -u 100 -g frr -G frrvty -d /var/run/frr -s /usr/sbin/nologin frr \
    && apt-get update && apt-get install -y --no-install-recommends frr frr-pythontools iproute2 tini \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s ../bin/tini /usr/sbin/tini
COPY hack/frr/docker-start /usr/lib/frr/docker-start
COPY hack/frr/vtysh.pam /etc/pam.d/frr
COPY hack/frr/pam-other /etc/pam.d/other
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["/usr/lib/frr/docker-start"]

# The component image, the default (last) target. Static binary, no shell,
# no package manager. The default user is the unprivileged 65532 (operator,
# controller, webhook); the speaker pods run as root with only NET_RAW,
# which the operator renders.
FROM gcr.io/distroless/static-debian12:nonroot AS lbstack
COPY --from=build /out/lbstack /usr/bin/lbstack
USER 65532:65532
ENTRYPOINT ["/usr/bin/lbstack"]
