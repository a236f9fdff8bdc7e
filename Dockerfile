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

# Static binary, no shell, no package manager. The default user is the
# unprivileged 65532 (operator, controller, webhook); the speaker pods run
# as root with only NET_RAW and NET_ADMIN, which the operator renders.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/lbstack /usr/bin/lbstack
USER 65532:65532
ENTRYPOINT ["/usr/bin/lbstack"]
