package lab

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/test/lab/oci"
)

// The lab's lbstack and must-gather images are the Dockerfile's: same
// base, files, user, entrypoint, working directory and build flags. A
// Dockerfile change the lab's builder does not follow fails here.
func TestDockerfileMatchesTheLabsImages(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if d := DockerfileDisagreements(string(data)); len(d) > 0 {
		t.Errorf("the Dockerfile and the lab's image builder (test/lab/images.go) disagree:\n%s", strings.Join(d, "\n"))
	}
	for _, p := range MustGatherImageSpec.Packages {
		if !slices.Contains(mustGatherDebs, p) {
			t.Errorf("the must-gather image lacks %s, which the Dockerfile installs", p)
		}
	}
	// Each kind of disagreement is found.
	for _, mutate := range []struct{ from, to string }{
		{"USER 65532:65532", "USER 0"},
		{`ENTRYPOINT ["/usr/bin/lbstack"]`, `ENTRYPOINT ["/lbstack"]`},
		{"COPY --from=build /out/lbstack /usr/bin/lbstack\nUSER", "COPY --from=build /out/lbstack /bin/lbstack\nUSER"},
		{"FROM gcr.io/distroless/static-debian12:nonroot AS lbstack", "FROM gcr.io/distroless/static-debian12:nonroot AS lbstack\nWORKDIR /data"},
		{"FROM gcr.io/distroless/static-debian12:nonroot AS lbstack", "FROM gcr.io/distroless/static-debian12:nonroot AS lbstack\nVOLUME /data"},
		{"rsync tar procps", "rsync tar procps curl"},
		{"-trimpath", ""},
		{`ENTRYPOINT ["/usr/bin/gather"]`, `ENTRYPOINT ["/usr/bin/gather", "-v"]`},
		{"FROM debian:trixie-slim AS frr", "FROM debian:bookworm-slim AS frr"},
		{"frr frr-pythontools iproute2 tini", "frr frr-pythontools iproute2 tini curl"},
		{"useradd -r -u 100", "useradd -r -u 1000"},
		{"groupadd -r -g 102 frrvty", "groupadd -r -g 105 frrvty"},
		{"ln -s ../bin/tini /usr/sbin/tini", "true"},
		{`CMD ["/usr/lib/frr/docker-start"]`, `CMD ["/usr/lib/frr/frrinit.sh", "start"]`},
		{"COPY hack/frr/vtysh.pam /etc/pam.d/frr", "COPY hack/frr/vtysh.pam /etc/pam.d/other"},
		{"COPY hack/frr/pam-other /etc/pam.d/other\n", ""},
	} {
		if !strings.Contains(string(data), mutate.from) {
			t.Fatalf("the Dockerfile no longer has %q: update this test", mutate.from)
		}
		if d := DockerfileDisagreements(strings.Replace(string(data), mutate.from, mutate.to, 1)); len(d) == 0 {
			t.Errorf("changing %q to %q went unnoticed", mutate.from, mutate.to)
		}
	}
}

// lbstack's image as built: its config and the files a static Go program
// and its users notice.
func TestLbstackImageContents(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lbstack")
	if err := os.WriteFile(bin, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := LbstackImageOf(bin)
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/usr/bin/lbstack"}) || c.WorkingDir != "/home/nonroot" {
		t.Errorf("config %+v", c)
	}
	has := func(p string, mode int64, uid int) {
		t.Helper()
		for _, l := range img.Layers {
			if h, ok := l.Entry(p); ok {
				if h.Mode != mode || h.Uid != uid {
					t.Errorf("%s: mode %o uid %d, want %o %d", p, h.Mode, h.Uid, mode, uid)
				}
				return
			}
		}
		t.Errorf("%s missing", p)
	}
	has("usr/bin/lbstack", 0o755, 0)
	has("tmp", 0o1777, 0)
	has("home/nonroot", 0o700, 65532)
	has("etc/ssl/certs/ca-certificates.crt", 0o644, 0)
	passwd, err := img.Layers[0].Read("etc/passwd")
	if err != nil || !strings.Contains(string(passwd), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd: %q %v", passwd, err)
	}
	// Stored, the image's config comes back as built.
	store := &oci.Store{Dir: t.TempDir()}
	digest, err := store.Put(img, "quay.io/lbstack/lbstack:test")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := store.Resolve("quay.io/lbstack/lbstack", "test"); err != nil || d != digest {
		t.Fatalf("resolve: %s %v", d, err)
	}
	got, err := store.ReadConfig(digest)
	if err != nil || got.User != c.User || got.WorkingDir != c.WorkingDir {
		t.Errorf("stored config %+v %v", got, err)
	}
}

// FRR's and must-gather's images, built from the .debs of `make
// image-debs`: every program and library finds the libraries it loads,
// and FRR's image keeps the contract of the image users run.
func TestImagesFromDebs(t *testing.T) {
	debs, frrDebs := newestDebsDir("../../bin"), newestFRRDebsDir("../../bin")
	if debs == "" || frrDebs == "" {
		t.Skip("no .debs (run `make image-debs`)")
	}
	src := ImageSources{Root: "../..", Debs: debs, FRRDebs: frrDebs}
	frr, err := src.FRRImageOf()
	if err != nil {
		t.Fatal(err)
	}
	if m := MissingLibraries(frr.Layers); len(m) > 0 {
		t.Errorf("FRR's image misses libraries:\n%s", strings.Join(m, "\n"))
	}
	// vtysh authenticates through PAM (Debian builds it so): a PAM
	// configuration libpam cannot load stops vtysh and every FRR reload.
	if p := PAMProblems(frr.Layers, "frr"); len(p) > 0 {
		t.Errorf("FRR's image has a PAM configuration libpam aborts on:\n%s", strings.Join(p, "\n"))
	}
	c := frr.Config
	if !slices.Equal(c.Entrypoint, []string{"/sbin/tini", "--"}) || !slices.Equal(c.Cmd, []string{"/usr/lib/frr/docker-start"}) || c.User != "" {
		t.Errorf("FRR config %+v", c)
	}
	l := frr.Layers[0]
	for _, p := range []string{"usr/lib/frr/zebra", "usr/lib/frr/bgpd", "usr/lib/frr/bfdd", "usr/lib/frr/watchfrr", "usr/lib/frr/frrcommon.sh", "usr/bin/vtysh",
		"usr/lib/frr/frr-reload.py", "usr/bin/python3", "usr/bin/tini", "usr/sbin/tini", "usr/lib/frr/docker-start", "etc/pam.d/frr", "etc/pam.d/other", "usr/bin/cp", "usr/bin/sh"} {
		if !l.Has(p) {
			t.Errorf("FRR's image lacks /%s", p)
		}
	}
	for _, d := range []string{"etc/frr", "run/frr"} {
		if h, ok := l.Entry(d); !ok || h.Uid != frrUID || h.Gid != frrGID {
			t.Errorf("/%s: %+v, want owned by %d:%d", d, h, frrUID, frrGID)
		}
	}
	passwd, _ := l.Read("etc/passwd")
	if !strings.Contains(string(passwd), "frr:x:100:101:") {
		t.Errorf("FRR's /etc/passwd: %s", passwd)
	}

	lbstack := filepath.Join(t.TempDir(), "lbstack")
	if err := os.WriteFile(lbstack, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	mg, err := src.MustGatherImageOf(lbstack)
	if err != nil {
		t.Fatal(err)
	}
	if m := MissingLibraries(mg.Layers); len(m) > 0 {
		t.Errorf("the must-gather image misses libraries:\n%s", strings.Join(m, "\n"))
	}
	for _, p := range []string{"usr/bin/rsync", "usr/bin/tar", "usr/bin/ps", "usr/bin/bash"} {
		if !mg.Layers[0].Has(p) {
			t.Errorf("must-gather image lacks /%s", p)
		}
	}
}

// Every .deb an image is built from is one `make image-debs` downloads.
func TestImageDebsAreDownloaded(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(mk)
	i := strings.Index(s, "IMAGE_DEBS :=")
	if i < 0 {
		t.Fatal("no IMAGE_DEBS in the Makefile")
	}
	var listed []string
	for _, line := range strings.Split(s[i+len("IMAGE_DEBS :="):], "\n") {
		listed = append(listed, strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), "\\"))...)
		if !strings.HasSuffix(strings.TrimSpace(line), "\\") {
			break
		}
	}
	for _, d := range mustGatherDebs {
		if !slices.Contains(listed, d) {
			t.Errorf("%s is not in the Makefile's IMAGE_DEBS", d)
		}
	}
	// FRR's image is what apt resolves for these (the Dockerfile's frr
	// stage installs them).
	for _, p := range FRRImageSpec.Packages {
		if !strings.Contains(s, "FRR_IMAGE_PACKAGES := ") || !slices.Contains(strings.Fields(strings.SplitN(s[strings.Index(s, "FRR_IMAGE_PACKAGES := ")+len("FRR_IMAGE_PACKAGES := "):], "\n", 2)[0]), p) {
			t.Errorf("%s is not in the Makefile's FRR_IMAGE_PACKAGES", p)
		}
	}
}
