package lab

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lbstack/lbstack/test/lab/oci"
)

// The lab's images, built here from their sources (docs/lab.md, "Images")
// and served by the lab registry, which every node's containerd uses as
// the mirror of every registry. Image names are the ones users' manifests
// carry: the lab maps them, the manifests stay as written.
const (
	// LbstackImage is what config/default deploys (its kustomization
	// names quay.io/lbstack/lbstack:latest).
	LbstackImage = "quay.io/lbstack/lbstack:latest"
	// FRRImage is the operator's default FRR_IMAGE.
	FRRImage = "quay.io/frrouting/frr:8.4.4"
	// MustGatherImage is what the CSV names as the must-gather image.
	MustGatherImage = "quay.io/lbstack/lbstack-must-gather:latest"
	// WebImage is the lab's test web server (test/images/webserver).
	WebImage = RegistryHost + "/lab/webserver:latest"
	// PauseImage is every pod's sandbox (test/images/pause).
	PauseImage = RegistryHost + "/lab/pause:latest"
)

// webAliases are the images of the scenarios' workloads: the lab serves
// its web server under their names, every tag.
var webAliases = []string{"docker.io/library/nginx:*", "docker.io/traefik/whoami:*", "docker.io/containous/whoami:*"}

// MirroredRegistries are the registries whose images the nodes' containerd
// pulls from the lab registry.
var MirroredRegistries = []string{"docker.io", "quay.io", "registry.k8s.io", "127.0.0.1:5000", RegistryHost}

// Base image contracts: what the Dockerfile's FROM images give the image
// beside their files (the lab builds the files below).
var baseImages = map[string]oci.Config{
	"gcr.io/distroless/static-debian12:nonroot": {
		User:       "65532",
		WorkingDir: "/home/nonroot",
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
	},
	"debian:bookworm-slim": {
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	},
}

// ImageSources are the inputs of the lab's images: programs built by `make
// image-binaries` and the .debs of `make image-debs`.
type ImageSources struct {
	// Root is the repository (for hack/must-gather/gather).
	Root string
	// Bin holds lbstack, webserver and pause (static).
	Bin string
	// Debs holds the Debian packages the FRR and must-gather images are
	// made of.
	Debs string
}

func (s ImageSources) deb(name string) (string, error) {
	m, err := filepath.Glob(filepath.Join(s.Debs, name+"_*.deb"))
	if err != nil || len(m) != 1 {
		return "", fmt.Errorf("image sources: %s_*.deb in %s: found %d (run `make image-debs`)", name, s.Debs, len(m))
	}
	return m[0], nil
}

func (s ImageSources) debs(layer *oci.Layer, names ...string) error {
	for _, n := range names {
		p, err := s.deb(n)
		if err != nil {
			return err
		}
		if err := layer.Deb(p); err != nil {
			return err
		}
	}
	return nil
}

// distrolessStatic is the part of gcr.io/distroless/static-debian12 a
// static Go program can notice: its users and groups, name service
// switch, CA certificates (Debian's, as distroless takes them), /tmp and
// the nonroot user's home.
func distrolessStatic() (*oci.Layer, error) {
	l := oci.NewLayer()
	l.File("etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644, 0, 0)
	l.File("etc/group", []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"), 0o644, 0, 0)
	l.File("etc/nsswitch.conf", []byte("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"), 0o644, 0, 0)
	l.File("etc/os-release", []byte("PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"12\"\nHOME_URL=\"https://github.com/GoogleContainerTools/distroless\"\n"), 0o644, 0, 0)
	if err := l.CopyFile("etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt", 0o644, 0, 0); err != nil {
		return nil, fmt.Errorf("CA certificates (Debian's ca-certificates): %w", err)
	}
	l.Dir("tmp", 0o1777, 0, 0)
	l.Dir("root", 0o700, 0, 0)
	l.Dir("home/nonroot", 0o700, 65532, 65532)
	return l, nil
}

// LbstackImageSpec is lbstack's image as the lab builds it; the Dockerfile
// test (images_test.go) holds the Dockerfile's `lbstack` stage to it.
var LbstackImageSpec = struct {
	Base       string
	Binary     string
	User       string
	Entrypoint []string
}{
	Base:       "gcr.io/distroless/static-debian12:nonroot",
	Binary:     "/usr/bin/lbstack",
	User:       "65532:65532",
	Entrypoint: []string{"/usr/bin/lbstack"},
}

// LbstackImage builds lbstack's image around binary (a static build, as
// the Dockerfile's build stage makes).
func LbstackImageOf(binary string) (oci.Image, error) {
	base, err := distrolessStatic()
	if err != nil {
		return oci.Image{}, err
	}
	top := oci.NewLayer()
	if err := top.CopyFile(LbstackImageSpec.Binary, binary, 0o755, 0, 0); err != nil {
		return oci.Image{}, err
	}
	cfg := baseImages[LbstackImageSpec.Base]
	cfg.User = LbstackImageSpec.User
	cfg.Entrypoint = LbstackImageSpec.Entrypoint
	return oci.Image{Config: cfg, Layers: []*oci.Layer{base, top}}, nil
}

// frrDebs are FRR's image: Debian's frr and frr-pythontools (vtysh,
// frr-reload.py), tini, a shell and coreutils (the cp-frr-files init
// container), python3, and the libraries all of them load
// (TestImagesLoadTheirLibraries checks the closure).
var frrDebs = []string{"base-files", "frr", "frr-pythontools", "tini", "libc6", "libgcc-s1", "libc-ares2", "libcap2", "libcrypt1",
	"libjson-c5", "libpam0g", "libpam-modules", "libaudit1", "libcap-ng0", "libreadline8", "libtinfo6", "readline-common",
	"libyang2", "libpcre2-8-0", "libprotobuf-c1", "libelf1", "libbpf1", "libmnl0", "libxtables12", "libatm1", "libbsd0", "libmd0", "libdb5.3",
	"python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "python3-minimal",
	"libexpat1", "zlib1g", "libffi8", "libbz2-1.0", "liblzma5", "libsqlite3-0", "libncursesw6", "libuuid1",
	"libnsl2", "libtirpc3", "libtirpc-common", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3",
	"libkrb5support0", "libkeyutils1", "libcom-err2", "libssl3", "media-types",
	"bash", "dash", "coreutils", "libacl1", "libattr1", "libselinux1", "libgmp10", "iproute2", "sed", "grep"}

// FRR's users as the image users run (quay.io/frrouting/frr) has them and
// the speaker's DaemonSet assumes (cp-frr-files runs as 100:101).
const (
	frrUID      = 100
	frrGID      = 101
	frrvtyGID   = 102
	dockerStart = `#!/bin/bash
# FRR's image entrypoint (after tini): every daemon /etc/frr/daemons enables,
# started and watched by watchfrr in the foreground, as FRR's own image does.
log_success_msg() { echo "$@"; }
log_warning_msg() { echo "$@" >&2; }
log_failure_msg() { echo "$@" >&2; }
source /usr/lib/frr/frrcommon.sh
exec /usr/lib/frr/watchfrr $(daemon_list)
`
)

// FRRImageOf builds FRR's image from Debian's packages, with the contract
// of the image users run: /etc/frr and /var/run/frr owned by frr (uid 100,
// gid 101), ENTRYPOINT /sbin/tini --, CMD /usr/lib/frr/docker-start.
func (s ImageSources) FRRImageOf() (oci.Image, error) {
	l := oci.NewLayer()
	l.UsrMerge()
	if err := s.debs(l, frrDebs...); err != nil {
		return oci.Image{}, err
	}
	// What the packages' maintainer scripts (and base-passwd) would do.
	l.File("etc/passwd", []byte(fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nfrr:x:%d:%d:FRR:/var/run/frr:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", frrUID, frrGID)), 0o644, 0, 0)
	l.File("etc/group", []byte(fmt.Sprintf("root:x:0:\nfrr:x:%d:frr\nfrrvty:x:%d:frr\nnogroup:x:65534:\n", frrGID, frrvtyGID)), 0o644, 0, 0)
	// Debian's vtysh checks the caller with PAM (/etc/pam.d/frr lets
	// anyone authenticate; the vty sockets' frrvty group is the real
	// gate). FRR's own image is built without PAM; this "other" policy
	// gives the same result without Debian's login stack.
	l.File("etc/pam.d/other", []byte("# lab FRR image: vtysh's account and session checks pass, as in FRR's image (no PAM)\naccount required pam_permit.so\nsession required pam_permit.so\n"), 0o644, 0, 0)
	l.Symlink("var/run", "/run")
	l.Dir("run/frr", 0o755, frrUID, frrGID)
	l.Dir("etc/frr", 0o755, frrUID, frrGID)
	l.Dir("var/log/frr", 0o755, frrUID, frrGID)
	l.Dir("tmp", 0o1777, 0, 0)
	l.Dir("var/tmp", 0o1777, 0, 0)
	l.Symlink("usr/sbin/tini", "../bin/tini")
	l.File("usr/lib/frr/docker-start", []byte(dockerStart), 0o755, 0, 0)
	return oci.Image{
		Config: oci.Config{
			Entrypoint: []string{"/sbin/tini", "--"},
			Cmd:        []string{"/usr/lib/frr/docker-start"},
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		},
		Layers: []*oci.Layer{l},
	}, nil
}

// mustGatherDebs are the Dockerfile's must-gather stage: debian's slim
// base as far as gather uses it (bash, coreutils), and the packages the
// stage installs (rsync, tar, procps), with their libraries.
var mustGatherDebs = []string{"base-files", "bash", "dash", "coreutils", "libc6", "libgcc-s1", "libacl1", "libattr1", "libselinux1",
	"libpcre2-8-0", "libgmp10", "libtinfo6", "sed", "grep", "gzip", "findutils",
	"tar", "rsync", "libpopt0", "libxxhash0", "libzstd1", "liblz4-1", "libssl3", "zlib1g",
	"procps", "libproc2-0", "libncursesw6", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0", "liblzma5"}

// MustGatherImageSpec is the must-gather image as the lab builds it; the
// Dockerfile test holds the `must-gather` stage to it.
var MustGatherImageSpec = struct {
	Base       string
	Packages   []string
	Files      map[string]string // image path -> source (repository path, or the lbstack binary)
	Entrypoint []string
}{
	Base:       "debian:bookworm-slim",
	Packages:   []string{"rsync", "tar", "procps"},
	Files:      map[string]string{"/usr/bin/lbstack": "/out/lbstack", "/usr/bin/gather": "hack/must-gather/gather"},
	Entrypoint: []string{"/usr/bin/gather"},
}

// MustGatherImageOf builds the must-gather image around lbstack's binary.
func (s ImageSources) MustGatherImageOf(lbstack string) (oci.Image, error) {
	l := oci.NewLayer()
	l.UsrMerge()
	if err := s.debs(l, mustGatherDebs...); err != nil {
		return oci.Image{}, err
	}
	l.File("etc/passwd", []byte("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"), 0o644, 0, 0)
	l.File("etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644, 0, 0)
	l.Dir("tmp", 0o1777, 0, 0)
	l.Dir("root", 0o700, 0, 0)
	top := oci.NewLayer()
	if err := top.CopyFile("usr/bin/lbstack", lbstack, 0o755, 0, 0); err != nil {
		return oci.Image{}, err
	}
	if err := top.CopyFile("usr/bin/gather", filepath.Join(s.Root, "hack", "must-gather", "gather"), 0o755, 0, 0); err != nil {
		return oci.Image{}, err
	}
	cfg := baseImages[MustGatherImageSpec.Base]
	cfg.Entrypoint = MustGatherImageSpec.Entrypoint
	return oci.Image{Config: cfg, Layers: []*oci.Layer{l, top}}, nil
}

// staticProgram is an image of one static program run as its entrypoint.
func staticProgram(binary, dest string, user string) (oci.Image, error) {
	l := oci.NewLayer()
	if err := l.CopyFile(dest, binary, 0o755, 0, 0); err != nil {
		return oci.Image{}, err
	}
	l.Dir("tmp", 0o1777, 0, 0)
	return oci.Image{Config: oci.Config{User: user, Entrypoint: []string{dest}}, Layers: []*oci.Layer{l}}, nil
}

// BuildImages builds every image of the lab into store and tags it with
// the names manifests use.
func BuildImages(store *oci.Store, src ImageSources) error {
	lbstackBin := filepath.Join(src.Bin, "lbstack")
	type build struct {
		refs []string
		make func() (oci.Image, error)
	}
	for _, b := range []build{
		{[]string{LbstackImage}, func() (oci.Image, error) { return LbstackImageOf(lbstackBin) }},
		{[]string{FRRImage}, src.FRRImageOf},
		{[]string{MustGatherImage}, func() (oci.Image, error) { return src.MustGatherImageOf(lbstackBin) }},
		{append([]string{WebImage}, webAliases...), func() (oci.Image, error) {
			// Not root: the web server needs nothing but its ports,
			// which the pod's network namespace lets anyone bind.
			return staticProgram(filepath.Join(src.Bin, "webserver"), "/webserver", "")
		}},
		{[]string{PauseImage}, func() (oci.Image, error) {
			return staticProgram(filepath.Join(src.Bin, "pause"), "/pause", "65535:65535")
		}},
	} {
		img, err := b.make()
		if err != nil {
			return fmt.Errorf("image %s: %w", b.refs[0], err)
		}
		if _, err := store.Put(img, b.refs...); err != nil {
			return fmt.Errorf("image %s: %w", b.refs[0], err)
		}
	}
	return nil
}

// MissingLibraries lists, for every dynamically linked ELF file of the
// layers, the shared libraries it needs that none of the layers provides
// where Debian's loader looks (a symlink counts).
func MissingLibraries(layers []*oci.Layer) []string {
	have := map[string]bool{}
	for _, l := range layers {
		for _, p := range l.Paths() {
			have[p] = true
		}
	}
	// gconv modules load their companions from their own directory.
	dirs := []string{"usr/lib/x86_64-linux-gnu", "usr/lib", "usr/lib64", "usr/lib/x86_64-linux-gnu/frr", "usr/lib/x86_64-linux-gnu/gconv"}
	var out []string
	for _, l := range layers {
		for _, p := range l.Paths() {
			h, _ := l.Entry(p)
			if h.Typeflag != tar.TypeReg || (h.Mode&0o111 == 0 && !strings.Contains(path.Base(p), ".so")) {
				continue
			}
			data, err := l.Read(p)
			if err != nil || len(data) < 4 || string(data[:4]) != "\x7fELF" {
				continue
			}
			f, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				continue
			}
			libs, _ := f.ImportedLibraries()
			f.Close()
			for _, lib := range libs {
				found := false
				for _, d := range dirs {
					found = found || have[d+"/"+lib]
				}
				if !found {
					out = append(out, p+" needs "+lib)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}
