# lbstack — every tool the tests need is built or installed here, idempotently,
# and cached under bin/ (git-ignored). See README.md for the two entry points:
#   make lab    bring up the local lab and run the stack end to end
#   make test   every test tier

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := build

ROOT        := $(abspath .)
BIN         := $(ROOT)/bin
GO          ?= go
# Pinned versions. Changing one of them rebuilds the matching tool; nothing
# else ever does (bin/ paths carry the versions).
K8S_VERSION             := v1.34.4
ETCD_VERSION            := v3.6.4
CONTROLLER_TOOLS_VERSION := v0.19.0
# Debian packages the test tiers use (lab and FRR tiers need them too). The
# lab's nodes run Debian's containerd, runc and CNI plugins; kube-proxy
# programs nftables (and needs conntrack to flush UDP flows). bird2 is the
# BIRD the lab's Calico stand-in runs on the nodes (test/lab/calicobird.go).
APT_PACKAGES := frr frr-pythontools iputils-arping iproute2 bird2 \
	containerd runc containernetworking-plugins nftables conntrack
# Debian packages the lab's must-gather image is built from
# (test/lab/images.go), the Dockerfile's must-gather stage: downloaded as
# .deb files (`apt-get download`), never installed on this machine, and
# unpacked into the image's layers.
IMAGE_DEBS := base-files bash dash coreutils libc6 libgcc-s1 libacl1 libattr1 libselinux1 \
	libpcre2-8-0 libgmp10 libtinfo6 sed grep gzip findutils tar rsync libpopt0 libxxhash0 libzstd1 \
	liblz4-1 libssl3 zlib1g procps libproc2-0 libncursesw6 libsystemd0 libcap2 libgcrypt20 \
	libgpg-error0 liblzma5
# FRR's image (the Dockerfile's frr target, the default FRR_IMAGE): what
# `apt-get install --no-install-recommends` of these pulls on Debian 13
# (FRR_IMAGE_SUITE), resolved by apt with a configuration of its own under
# bin/ against an empty package database, so that the download is the
# whole closure; nothing of it is installed on this machine. The suite's
# base packages come first (debian:trixie-slim has them).
FRR_IMAGE_SUITE    := trixie
FRR_IMAGE_BASE     := base-files bash dash coreutils sed grep
FRR_IMAGE_PACKAGES := frr frr-pythontools iproute2 tini
ENVTEST_DIR      := $(BIN)/k8s-$(K8S_VERSION)
KUBE_APISERVER   := $(ENVTEST_DIR)/kube-apiserver
KUBE_CONTROLLER_MANAGER := $(ENVTEST_DIR)/kube-controller-manager
KUBE_SCHEDULER   := $(ENVTEST_DIR)/kube-scheduler
KUBECTL          := $(ENVTEST_DIR)/kubectl
KUBELET          := $(ENVTEST_DIR)/kubelet
KUBE_PROXY       := $(ENVTEST_DIR)/kube-proxy
ETCD             := $(ENVTEST_DIR)/etcd
CONTROLLER_GEN   := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
APT_STAMP        := $(BIN)/.apt-$(shell echo $(APT_PACKAGES) | sha256sum | cut -c1-12)
IMAGE_DEBS_DIR   := $(BIN)/debs-$(shell echo $(IMAGE_DEBS) | sha256sum | cut -c1-12)
FRR_DEBS_DIR     := $(BIN)/frr-debs-$(shell echo $(FRR_IMAGE_SUITE) $(FRR_IMAGE_BASE) $(FRR_IMAGE_PACKAGES) | sha256sum | cut -c1-12)
# OLM and its tools (docs/olm.md), from test/olmtools (OLM, opm,
# grpc_health_probe) and test/olmtools/sdk (operator-sdk, scorecard-test):
# two modules, as operator-sdk pins an older operator-registry and
# Kubernetes than OLM. These versions must be those modules' (test/olm
# checks). Static builds: the binaries go into the lab's images.
OLM_VERSION               := v0.38.0
OPM_VERSION               := v1.61.0
GRPC_HEALTH_PROBE_VERSION := v0.4.41
OPERATOR_SDK_VERSION      := v1.42.2
OLM_BIN_DIR       := $(BIN)/olm-$(OLM_VERSION)
OLM_BINARIES      := $(addprefix $(OLM_BIN_DIR)/,olm catalog package-server copy-content cpb)
# OLM's own install manifests, rendered from its module's chart beside its programs.
OLM_MANIFESTS     := $(addprefix $(OLM_BIN_DIR)/,crds.yaml olm.yaml)
OPM               := $(BIN)/opm-$(OPM_VERSION)
GRPC_HEALTH_PROBE := $(BIN)/grpc_health_probe-$(GRPC_HEALTH_PROBE_VERSION)
OPERATOR_SDK      := $(BIN)/operator-sdk-$(OPERATOR_SDK_VERSION)
SCORECARD_TEST    := $(BIN)/scorecard-test-$(OPERATOR_SDK_VERSION)
# OLM's and opm's own build tags; json1 only matters to the cgo sqlite
# driver, which a static build leaves out (the deprecated sqlite catalogs;
# file-based catalogs do not need it).
OLM_TAGS          := json1,containers_image_openpgp
OLM_GO_BUILD       = cd test/olmtools && CGO_ENABLED=0 $(GO) build -trimpath -tags $(OLM_TAGS)
SDK_GO_BUILD       = cd test/olmtools/sdk && CGO_ENABLED=0 $(GO) build -trimpath -tags containers_image_openpgp
OLM_VERSION_PKG   := github.com/operator-framework/operator-lifecycle-manager/pkg/version
OPM_VERSION_PKG   := github.com/operator-framework/operator-registry/cmd/opm/version
SDK_VERSION_PKG   := github.com/operator-framework/operator-sdk/internal/version
# Every Go module the four modules need (tests included), downloaded once:
# the lab's guard routes may make the module proxy unreachable while it runs.
MODULES_STAMP    := $(BIN)/.modules-$(shell cat go.sum test/tools/go.sum test/olmtools/go.sum test/olmtools/sdk/go.sum 2>/dev/null | sha256sum | cut -c1-12)

# kube-apiserver and kubectl report this version; clients that parse the
# server version (kubectl, controller-runtime) need a real one, not v0.0.0.
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
K8S_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/client-go/pkg/version.gitTreeState=clean

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/lbstack/lbstack/pkg/version.Version=$(VERSION)

export KUBEBUILDER_ASSETS := $(ENVTEST_DIR)

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-18s %s\n", $$1, $$2}'

##@ Build

.PHONY: build
build: ## Build bin/lbstack.
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/lbstack .

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy functions.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/... paths=./pkg/ovnapi/... paths=./pkg/calicoapi/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Regenerate CRDs, RBAC and webhook manifests under config/.
	$(CONTROLLER_GEN) crd rbac:roleName=operator webhook paths=./api/... paths=./controllers/... paths=./pkg/symrouting/reconciler/... paths=./pkg/calico/reconciler/... paths=./pkg/webhook/... \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook
	# NMState's CRDs, for the envtest tier only (lbstack never installs them).
	$(CONTROLLER_GEN) crd paths=github.com/nmstate/kubernetes-nmstate/api/v1 \
		paths=github.com/nmstate/kubernetes-nmstate/api/v1beta1 output:crd:dir=test/crds/nmstate
	# Calico's crd.projectcalico.org/v1 CRDs (a cluster without Calico's API
	# server), for the envtest tier only: generated from the v3 specs of
	# github.com/projectcalico/api as Calico generates its own, without
	# descriptions as Calico publishes them (pkg/calicoapi/v1).
	$(CONTROLLER_GEN) crd:maxDescLen=0 paths=./pkg/calicoapi/... output:crd:dir=test/crds/calico

# The OLM bundle (docs/olm.md): version and the operator image it deploys;
# BUNDLE_DIR writes it elsewhere than the checked-in bundle/, with the CSV it
# replaces and the versions it skips (BUNDLE_REPLACES=lbstack.v0.1.0
# BUNDLE_SKIP_RANGE='>=0.1.0 <0.2.0').
BUNDLE_VERSION    ?= 0.1.0
IMG               ?= quay.io/lbstack/lbstack:v$(BUNDLE_VERSION)
BUNDLE_DIR        ?= bundle
BUNDLE_REPLACES   ?=
BUNDLE_SKIP_RANGE ?=

.PHONY: bundle
bundle: manifests ## Regenerate the OLM bundle under bundle/ from config/ (BUNDLE_VERSION, IMG; BUNDLE_DIR, BUNDLE_REPLACES, BUNDLE_SKIP_RANGE).
	$(GO) run ./hack/bundle --root . --version $(BUNDLE_VERSION) --image $(IMG) --out '$(BUNDLE_DIR)' \
		--replaces '$(BUNDLE_REPLACES)' --skip-range '$(BUNDLE_SKIP_RANGE)'

# The lab's OLM catalog (docs/olm.md): the bundles of test/olm.Releases
# (0.1.0, and 0.2.0 replacing it) and a file-based catalog serving them,
# rendered and validated by opm; never the checked-in bundle/.
OLM_CATALOG_DIR ?= $(BIN)/olm-catalog

.PHONY: olm-catalog
olm-catalog: $(OPM) ## Write the lab's OLM bundles and file-based catalog under OLM_CATALOG_DIR (bundles/<version>, catalog/).
	$(GO) run ./hack/catalog --root . --out $(OLM_CATALOG_DIR) --opm $(OPM)

.PHONY: deploy
deploy: $(KUBECTL) ## Install the operator (config/default, image IMG) into the current kubeconfig's cluster.
	$(KUBECTL) kustomize config/default | sed 's#quay.io/lbstack/lbstack:latest#$(IMG)#' | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUBECTL) ## Remove the MetalLB object (the operator cleans up), then everything config/default installed.
	$(KUBECTL) delete metallbs.metallb.io --all --all-namespaces --ignore-not-found --wait --timeout=120s || true
	$(KUBECTL) delete --ignore-not-found -k config/default

.PHONY: fmt
fmt: ## gofmt every Go file.
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')

##@ Test

.PHONY: test
test: tools lab-prereqs ## Every test tier: vet, gofmt, unit, envtest (real kube-apiserver + etcd), lab e2e (real nodes).
	@echo "== go vet"; $(GO) vet ./...
	@echo "== gofmt"; out=$$(gofmt -l $$(find . -name '*.go' -not -path './bin/*' -not -path './.lab/*')); \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@echo "== go test (KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS))"
	@# The lab e2e suite alone runs for about twenty-five minutes: past go
	@# test's default per-package timeout.
	@# test/olm runs these (it skips without them only outside make).
	LBSTACK_OPM=$(OPM) LBSTACK_OPERATOR_SDK=$(OPERATOR_SDK) $(GO) test -count=1 -timeout 40m ./...

.PHONY: unit
unit: ## Unit tier only (no API server).
	$(GO) test ./api/... ./pkg/... ./controllers/...

.PHONY: bench
bench: tools lab-prereqs ## Benchmarks; they print figures, nothing here passes or fails on time.
	$(GO) test -run '^$$' -bench . -benchmem $$($(GO) list ./... | grep -v /test/e2e)
	@# The lab benchmarks alone, so no other package competes for the CPUs.
	$(GO) test -run '^$$' -bench . -timeout 30m ./test/e2e/
	$(MAKE) bench-scale

.PHONY: bench-scale
bench-scale: tools lab-prereqs build ## The 10,000-Service benchmarks of docs/scale.md (controller; speaker in BGP, native and frr, and layer 2): 50 to 60 minutes.
	LBSTACK_BENCH_SCALE=1 LBSTACK_BENCH_BINARY=$(BIN)/lbstack $(GO) test -run '^$$' -bench 'ControllerScale' -timeout 60m ./test/envtest/controller/
	LBSTACK_BENCH_SCALE=1 LBSTACK_BENCH_BINARY=$(BIN)/lbstack $(GO) test -run '^$$' -bench 'Speaker10000Services|SpeakerL2Services' -timeout 90m ./pkg/speaker/
	@# The default backend: the speaker with its frr-reloader and a node FRR.
	LBSTACK_BENCH_SCALE=1 LBSTACK_BENCH_BINARY=$(BIN)/lbstack LBSTACK_BENCH_BGP_BACKEND=frr $(GO) test -run '^$$' -bench 'Speaker10000Services' -timeout 60m ./pkg/speaker/

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 60s) each; keep the corpus in testdata/fuzz.
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-60s} $$pkg; \
			dir=$$($(GO) list -f '{{.Dir}}' $$pkg); cache=$$($(GO) env GOCACHE)/fuzz/$$pkg/$$f; \
			if [ -d "$$cache" ]; then mkdir -p $$dir/testdata/fuzz/$$f && cp -n $$cache/* $$dir/testdata/fuzz/$$f/; fi; \
		done; \
	done

##@ Lab

# The local lab (docs/lab.md): control plane, nodes as network namespaces
# each with its own containerd, kubelet, CNI bridge and kube-proxy, a lab
# registry serving the images built here, an FRR router and a client, all on
# this machine; needs root.
LAB_SCENARIO ?= bgp-ecmp-bfd
LAB_NODES    ?= 3
# How `make lab` installs lbstack: kustomize (config/default) or olm (OLM,
# the lab's catalog and a Subscription; docs/olm.md).
LAB_INSTALL  ?= kustomize
LAB_STATE    := $(ROOT)/.lab
LAB          := $(BIN)/lab
LAB_FLAGS     = --root $(ROOT) --state $(LAB_STATE)
# The programs the lab's images carry, built as the Dockerfile builds
# lbstack's (static, trimmed): test/lab/images.go lays them into images.
IMAGE_BIN    := $(BIN)/images
IMAGE_LDFLAGS = -s -w -X github.com/lbstack/lbstack/pkg/version.Version=$(VERSION)

.PHONY: lab
lab: lab-prereqs ## Bring up the lab (LAB_SCENARIO, LAB_NODES, LAB_INSTALL=kustomize|olm), install lbstack, print the state and one curl.
	$(LAB) up $(LAB_FLAGS) --nodes $(LAB_NODES) --scenario $(LAB_SCENARIO) --install $(LAB_INSTALL)

# Everything the lab needs, downloaded and built before it brings up its
# guard routes (docs/lab.md, "Downloads and the guard routes").
.PHONY: lab-prereqs
lab-prereqs: go-modules lab-assets apt-packages image-debs build lab-cli image-binaries olm-catalog

.PHONY: lab-down
lab-down: lab-cli ## Remove every namespace, process, mount, cgroup and file the lab made.
	$(LAB) down $(LAB_FLAGS)

.PHONY: lab-status
lab-status: lab-cli ## Show the lab's components and what a user would check.
	$(LAB) status $(LAB_FLAGS)

.PHONY: e2e
e2e: lab-prereqs ## Lab end-to-end suite only (root; reuses a running lab).
	$(GO) test -count=1 -timeout 40m -v ./test/e2e/...

# Always rebuilt (Go's cache makes that a second).
.PHONY: lab-cli
lab-cli: | $(BIN)
	$(GO) build -o $(LAB) ./test/lab/cmd/lab

# lbstack exactly as the Dockerfile's build stage makes it, and the lab's
# own small programs (a test web server, pause), all static.
.PHONY: image-binaries
image-binaries: | $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(IMAGE_LDFLAGS)" -o $(IMAGE_BIN)/lbstack .
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(IMAGE_BIN)/webserver ./test/images/webserver
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(IMAGE_BIN)/pause ./test/images/pause

##@ Tools (cached under bin/, rebuilt only when a pinned version changes)

.PHONY: tools
tools: go-modules envtest-assets lab-assets $(CONTROLLER_GEN) apt-packages image-debs olm-tools

.PHONY: go-modules
go-modules: $(MODULES_STAMP) ## Download every Go module of the four modules (before the lab's guard routes exist).

$(MODULES_STAMP): | $(BIN)
	$(GO) mod download
	cd test/tools && $(GO) mod download
	cd test/olmtools && $(GO) mod download
	cd test/olmtools/sdk && $(GO) mod download
	touch $@

.PHONY: envtest-assets
envtest-assets: $(KUBE_APISERVER) $(ETCD) $(KUBECTL) ## Build kube-apiserver, etcd and kubectl from pinned modules.
	@echo "envtest assets in $(ENVTEST_DIR)"

.PHONY: lab-assets
lab-assets: envtest-assets $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) $(KUBELET) $(KUBE_PROXY) ## Also build the lab's control plane, kubelet and kube-proxy.

$(KUBE_APISERVER) $(KUBECTL) $(KUBE_CONTROLLER_MANAGER) $(KUBE_SCHEDULER) $(KUBELET) $(KUBE_PROXY): | $(ENVTEST_DIR)
	cd test/tools && $(GO) build -ldflags "$(K8S_LDFLAGS)" -o $@.tmp k8s.io/kubernetes/cmd/$(notdir $@)
	mv $@.tmp $@

$(ETCD): | $(ENVTEST_DIR)
	cd test/tools && $(GO) build -ldflags "-s -w" -o $@.tmp ./etcd
	mv $@.tmp $@

$(CONTROLLER_GEN): | $(BIN)
	cd test/tools && $(GO) build -o $@.tmp sigs.k8s.io/controller-tools/cmd/controller-gen
	mv $@.tmp $@

.PHONY: olm-tools
olm-tools: go-modules $(OLM_BINARIES) $(OLM_MANIFESTS) $(OPM) $(GRPC_HEALTH_PROBE) $(OPERATOR_SDK) $(SCORECARD_TEST) ## Build OLM, opm, grpc_health_probe, operator-sdk and scorecard-test from pinned modules.

$(OLM_BIN_DIR)/olm $(OLM_BIN_DIR)/catalog $(OLM_BIN_DIR)/package-server $(OLM_BIN_DIR)/copy-content: | $(OLM_BIN_DIR)
	$(OLM_GO_BUILD) -ldflags "-s -w -X $(OLM_VERSION_PKG).OLMVersion=$(OLM_VERSION:v%=%)" -o $@.tmp \
		github.com/operator-framework/operator-lifecycle-manager/cmd/$(notdir $@)
	mv $@.tmp $@

# OLM's release manifests, rendered from the chart in its module as OLM's
# release does (helm template deploy/chart -f deploy/upstream/values.yaml;
# test/olmtools/sdk/cmd/olm-manifests says why not the module's quickstart).
$(OLM_MANIFESTS) &: | $(OLM_BIN_DIR)
	cd test/olmtools && src=$$($(GO) list -m -f '{{.Dir}}' github.com/operator-framework/operator-lifecycle-manager) && \
		cd sdk && $(GO) run ./cmd/olm-manifests --chart "$$src/deploy/chart" --values "$$src/deploy/upstream/values.yaml" \
		--crds $(OLM_BIN_DIR)/crds.yaml.tmp --olm $(OLM_BIN_DIR)/olm.yaml.tmp
	mv $(OLM_BIN_DIR)/crds.yaml.tmp $(OLM_BIN_DIR)/crds.yaml
	mv $(OLM_BIN_DIR)/olm.yaml.tmp $(OLM_BIN_DIR)/olm.yaml

# The bundle unpacker copies cpb into the bundle image (FROM scratch) and
# runs it there: it must be static.
$(OLM_BIN_DIR)/cpb: | $(OLM_BIN_DIR)
	$(OLM_GO_BUILD) -ldflags "-s -w" -o $@.tmp github.com/operator-framework/operator-lifecycle-manager/util/cpb
	mv $@.tmp $@

$(OPM): | $(BIN)
	$(OLM_GO_BUILD) -ldflags "-s -w -X $(OPM_VERSION_PKG).opmVersion=$(OPM_VERSION) -X $(OPM_VERSION_PKG).buildDate=1970-01-01T00:00:00Z" \
		-o $@.tmp github.com/operator-framework/operator-registry/cmd/opm
	mv $@.tmp $@

$(GRPC_HEALTH_PROBE): | $(BIN)
	$(OLM_GO_BUILD) -ldflags "-s -w" -o $@.tmp github.com/grpc-ecosystem/grpc-health-probe
	mv $@.tmp $@

$(OPERATOR_SDK): | $(BIN)
	$(SDK_GO_BUILD) -ldflags "-s -w -X $(SDK_VERSION_PKG).Version=$(OPERATOR_SDK_VERSION) -X $(SDK_VERSION_PKG).GitVersion=$(OPERATOR_SDK_VERSION) \
		-X $(SDK_VERSION_PKG).KubernetesVersion=v1.33.1 -X $(SDK_VERSION_PKG).ImageVersion=$(OPERATOR_SDK_VERSION)" \
		-o $@.tmp github.com/operator-framework/operator-sdk/cmd/operator-sdk
	mv $@.tmp $@

$(SCORECARD_TEST): | $(BIN)
	$(SDK_GO_BUILD) -ldflags "-s -w" -o $@.tmp github.com/operator-framework/operator-sdk/images/scorecard-test
	mv $@.tmp $@

$(BIN) $(ENVTEST_DIR) $(OLM_BIN_DIR):
	mkdir -p $@

.PHONY: apt-packages
apt-packages: $(APT_STAMP) ## Install the Debian packages the tests use.

$(APT_STAMP): | $(BIN)
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	touch $@

.PHONY: image-debs
image-debs: $(IMAGE_DEBS_DIR)/.done $(FRR_DEBS_DIR)/.done ## Download the .debs the lab's FRR and must-gather images are built from.

$(IMAGE_DEBS_DIR)/.done: | $(BIN)
	rm -rf $(IMAGE_DEBS_DIR).tmp && mkdir -p $(IMAGE_DEBS_DIR).tmp
	cd $(IMAGE_DEBS_DIR).tmp && { apt-get download -qq $(IMAGE_DEBS) 2>/dev/null || \
		{ apt-get update -qq && apt-get download -qq $(IMAGE_DEBS); }; }
	rm -rf $(IMAGE_DEBS_DIR) && mv $(IMAGE_DEBS_DIR).tmp $(IMAGE_DEBS_DIR)
	touch $@

FRR_APT = apt-get -qq -o Dir::Etc::SourceList=$(FRR_DEBS_DIR).apt/sources.list -o Dir::Etc::SourceParts=$(FRR_DEBS_DIR).apt/empty \
	-o Dir::Etc::Preferences=$(FRR_DEBS_DIR).apt/empty/preferences -o Dir::Etc::PreferencesParts=$(FRR_DEBS_DIR).apt/empty \
	-o Dir::State=$(FRR_DEBS_DIR).apt/state -o Dir::State::status=$(FRR_DEBS_DIR).apt/status \
	-o Dir::Cache=$(FRR_DEBS_DIR).apt/cache -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Debug::NoLocking=1

$(FRR_DEBS_DIR)/.done: | $(BIN)
	rm -rf $(FRR_DEBS_DIR).apt $(FRR_DEBS_DIR).tmp
	mkdir -p $(FRR_DEBS_DIR).apt/state/lists/partial $(FRR_DEBS_DIR).apt/cache/archives/partial $(FRR_DEBS_DIR).apt/empty $(FRR_DEBS_DIR).tmp
	printf 'deb http://deb.debian.org/debian $(FRR_IMAGE_SUITE) main\ndeb http://deb.debian.org/debian-security $(FRR_IMAGE_SUITE)-security main\n' \
		> $(FRR_DEBS_DIR).apt/sources.list
	: > $(FRR_DEBS_DIR).apt/status
	$(FRR_APT) update
	$(FRR_APT) install --download-only -y --no-install-recommends $(FRR_IMAGE_BASE) $(FRR_IMAGE_PACKAGES)
	mv $(FRR_DEBS_DIR).apt/cache/archives/*.deb $(FRR_DEBS_DIR).tmp/
	rm -rf $(FRR_DEBS_DIR).apt $(FRR_DEBS_DIR) && mv $(FRR_DEBS_DIR).tmp $(FRR_DEBS_DIR)
	touch $@

.PHONY: clean
clean: ## Remove build outputs (keeps the tool cache).
	rm -f $(BIN)/lbstack
