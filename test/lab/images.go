package lab

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
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
	// FRRImage is the operator's default FRR_IMAGE (the Dockerfile's frr
	// target) as config/default names it.
	FRRImage = "quay.io/lbstack/lbstack-frr:latest"
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
	"debian:trixie-slim": {
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
	// Debs holds the Debian packages the must-gather image is made of.
	Debs string
	// FRRDebs holds FRR's image: every .deb of its Debian 13 closure.
	FRRDebs string
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

// FRRImageSpec is FRR's image as the lab builds it and the Dockerfile's frr
// stage describes it (TestDockerfileMatchesTheLabsImages holds them
// equal): Debian 13's packages on its slim base, the frr user and groups
// of FRR's own image (the speaker's DaemonSet assumes them: cp-frr-files
// runs as 100:101), its entrypoint and command, and two files of ours.
var FRRImageSpec = struct {
	Base             string
	Packages         []string
	UID, GID, VtyGID int
	Files            map[string]string // image path -> repository path
	Links            map[string]string // image path -> target
	Entrypoint, Cmd  []string
}{
	Base:     "debian:trixie-slim",
	Packages: []string{"frr", "frr-pythontools", "iproute2", "tini"},
	UID:      100, GID: 101, VtyGID: 102,
	Files:      map[string]string{"/usr/lib/frr/docker-start": "hack/frr/docker-start", "/etc/pam.d/frr": "hack/frr/vtysh.pam", "/etc/pam.d/other": "hack/frr/pam-other"},
	Links:      map[string]string{"/usr/sbin/tini": "../bin/tini"},
	Entrypoint: []string{"/sbin/tini", "--"},
	Cmd:        []string{"/usr/lib/frr/docker-start"},
}

// The frr user and groups of FRR's image.
var (
	frrUID = FRRImageSpec.UID
	frrGID = FRRImageSpec.GID
)

// FRRImageOf builds FRR's image from Debian 13's packages (every .deb of
// the closure `make image-debs` resolved), as the Dockerfile's frr stage
// does: unpacked, then what the packages' maintainer scripts would leave
// that FRR needs (users, owned directories), then the stage's own files.
func (s ImageSources) FRRImageOf() (oci.Image, error) {
	spec := FRRImageSpec
	debs, err := filepath.Glob(filepath.Join(s.FRRDebs, "*.deb"))
	if err != nil || len(debs) == 0 {
		return oci.Image{}, fmt.Errorf("image sources: no .deb in %q (run `make image-debs`)", s.FRRDebs)
	}
	sort.Strings(debs)
	l := oci.NewLayer()
	l.UsrMerge()
	for _, d := range debs {
		if err := l.Deb(d); err != nil {
			return oci.Image{}, err
		}
	}
	l.File("etc/passwd", []byte(fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nfrr:x:%d:%d:FRR:/var/run/frr:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", spec.UID, spec.GID)), 0o644, 0, 0)
	l.File("etc/group", []byte(fmt.Sprintf("root:x:0:\nfrr:x:%d:frr\nfrrvty:x:%d:frr\nnogroup:x:65534:\n", spec.GID, spec.VtyGID)), 0o644, 0, 0)
	l.Symlink("var/run", "/run")
	l.Dir("run/frr", 0o755, spec.UID, spec.GID)
	l.Dir("etc/frr", 0o755, spec.UID, spec.GID)
	l.Dir("var/log/frr", 0o755, spec.UID, spec.GID)
	l.Dir("tmp", 0o1777, 0, 0)
	l.Dir("var/tmp", 0o1777, 0, 0)
	for p, target := range spec.Links {
		l.Symlink(strings.TrimPrefix(p, "/"), target)
	}
	for p, src := range spec.Files {
		fi, err := os.Stat(filepath.Join(s.Root, src))
		if err != nil {
			return oci.Image{}, err
		}
		if err := l.CopyFile(strings.TrimPrefix(p, "/"), filepath.Join(s.Root, src), int64(fi.Mode().Perm()), 0, 0); err != nil {
			return oci.Image{}, err
		}
	}
	cfg := baseImages[spec.Base]
	cfg.Entrypoint, cfg.Cmd = spec.Entrypoint, spec.Cmd
	return oci.Image{Config: cfg, Layers: []*oci.Layer{l}}, nil
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
			// A program's own library directories (systemd's tools find
			// their private libraries through RUNPATH $ORIGIN/...).
			var own []string
			for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
				rp, _ := f.DynString(tag)
				for _, entry := range rp {
					for _, d := range strings.Split(entry, ":") {
						d = strings.ReplaceAll(d, "$ORIGIN", "/"+path.Dir(p))
						own = append(own, strings.TrimPrefix(path.Clean(d), "/"))
					}
				}
			}
			f.Close()
			if strings.Contains(path.Base(p), ".so") {
				// A private library's companions are loaded by the
				// program that loads it (systemd's libsystemd-core finds
				// libsystemd-shared already there, by soname).
				own = append(own, path.Dir(p))
			}
			for _, lib := range libs {
				found := false
				for _, d := range append(own, dirs...) {
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
