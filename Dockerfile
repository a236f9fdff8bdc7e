# One image for every lbstack component: the operator deploys this same image
# for the controller and speakers (CONTROLLER_IMAGE / SPEAKER_IMAGE / FRR_IMAGE
# override it).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/lbstack/lbstack/pkg/version.Version=${VERSION}" \
      -o /out/lbstack .

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lbstack /usr/bin/lbstack
COPY bindata /bindata
USER 65532:65532
ENTRYPOINT ["/usr/bin/lbstack"]
