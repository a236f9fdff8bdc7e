package lab

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/test/lab/oci"
	"github.com/lbstack/lbstack/test/olm"
)

// find returns the entry at p in the topmost layer that has one.
func find(img oci.Image, p string) (tar.Header, *oci.Layer, bool) {
	for i := len(img.Layers) - 1; i >= 0; i-- {
		if h, ok := img.Layers[i].Entry(p); ok {
			return h, img.Layers[i], true
		}
	}
	return tar.Header{}, nil, false
}

// fakeOLMSources are OLM sources whose programs are placeholders.
func fakeOLMSources(t *testing.T) OLMSources {
	t.Helper()
	dir := t.TempDir()
	src := OLMSourcesIn(dir, newestDebsDir("../../bin"))
	if err := os.MkdirAll(src.OLMBin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{src.OPM, src.GRPCHealthProbe}, binPaths(src)...) {
		if err := os.WriteFile(p, []byte("#!/bin/false\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func binPaths(src OLMSources) []string {
	var out []string
	for _, b := range OLMImageSpec.Binaries {
		out = append(out, filepath.Join(src.OLMBin, b))
	}
	return out
}

// OLM's image has what OLM's manifests and the bundle unpack Job run:
// /bin/olm, /bin/catalog, /bin/package-server, /bin/cpb, /bin/copy-content,
// a working /bin/cp, user 1001.
func TestOLMImageContents(t *testing.T) {
	src := fakeOLMSources(t)
	if src.Debs == "" {
		t.Skip("no .debs (run `make image-debs`)")
	}
	img, err := src.OLMImageOf()
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.User != "1001" || !slices.Equal(c.Entrypoint, []string{"/bin/olm"}) || c.WorkingDir != "/" {
		t.Errorf("config %+v", c)
	}
	if h, _, ok := find(img, "bin"); !ok || h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("/bin is not the usr-merge symlink: %+v", h)
	}
	for _, b := range append(OLMImageSpec.Binaries, "cp") {
		if h, _, ok := find(img, "usr/bin/"+b); !ok || h.Typeflag != tar.TypeReg || h.Mode != 0o755 {
			t.Errorf("/bin/%s: %+v", b, h)
		}
	}
	if missing := MissingLibraries(img.Layers); len(missing) > 0 {
		t.Errorf("OLM's image lacks libraries:\n%s", strings.Join(missing, "\n"))
	}
	// No upper layer turns the usr-merge symlinks back into directories.
	for _, l := range img.Layers[2:] {
		for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
			if l.Has(d) {
				t.Errorf("a layer above the Debian packages has /%s", d)
			}
		}
	}
}

// opm's image: /bin/opm, /bin/grpc_health_probe (the catalog pods' exec
// probes), opm's nsswitch.conf, user 1001.
func TestOPMImageContents(t *testing.T) {
	src := fakeOLMSources(t)
	img, err := src.OPMImageOf()
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.User != "1001" || !slices.Equal(c.Entrypoint, []string{"/bin/opm"}) || !strings.Contains(strings.Join(c.Env, " "), "/bin") {
		t.Errorf("config %+v", c)
	}
	for _, p := range []string{"bin/opm", "bin/grpc_health_probe"} {
		if h, _, ok := find(img, p); !ok || h.Mode != 0o755 {
			t.Errorf("/%s: %+v", p, h)
		}
	}
	if _, l, ok := find(img, "etc/nsswitch.conf"); !ok {
		t.Error("no /etc/nsswitch.conf")
	} else if b, _ := l.Read("etc/nsswitch.conf"); string(b) != "hosts: files dns\n" {
		t.Errorf("/etc/nsswitch.conf %q", b)
	}
}

// The programs that go into images are static: the bundle unpacker runs
// cpb inside the bundle image (FROM scratch), and OLM's and opm's images
// have no C library.
func TestOLMToolsAreStatic(t *testing.T) {
	src := OLMSourcesIn("../../bin", "")
	for _, p := range append([]string{src.OPM, src.GRPCHealthProbe}, binPaths(src)...) {
		f, err := elf.Open(p)
		if os.IsNotExist(err) {
			t.Logf("%s not built (make olm-tools)", p)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", p)
			}
		}
		f.Close()
	}
}

// The bundle image is bundle.Dockerfile's: FROM scratch, its LABELs (the
// metadata's annotations), manifests/, metadata/ and tests/scorecard/.
func TestBundleImageContents(t *testing.T) {
	img, err := BundleImageOf("../../bundle")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 1 || len(img.Config.Entrypoint) != 0 || img.Config.User != "" {
		t.Errorf("image %d layers, config %+v", len(img.Layers), img.Config)
	}
	df, err := os.ReadFile("../../bundle/bundle.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^LABEL (\S+)=(\S+)$`).FindAllStringSubmatch(string(df), -1) {
		labels[m[1]] = m[2]
	}
	if len(labels) == 0 || !maps.Equal(labels, img.Config.Labels) {
		t.Errorf("labels %v, bundle.Dockerfile says %v", img.Config.Labels, labels)
	}
	l := img.Layers[0]
	var files []string
	_ = filepath.WalkDir("../../bundle", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel("../../bundle", p)
		if rel == "README.md" || rel == "bundle.Dockerfile" {
			return nil
		}
		files = append(files, filepath.ToSlash(rel))
		want, _ := os.ReadFile(p)
		if got, err := l.Read(rel); err != nil || !bytes.Equal(got, want) {
			t.Errorf("/%s: %v", rel, err)
		}
		return nil
	})
	for _, p := range l.Paths() {
		if h, _ := l.Entry(p); h.Typeflag == tar.TypeReg && !slices.Contains(files, p) {
			t.Errorf("the bundle image has /%s, which bundle.Dockerfile does not copy", p)
		}
	}
	if !slices.Contains(files, "manifests/lbstack.clusterserviceversion.yaml") || !slices.Contains(files, "tests/scorecard/config.yaml") {
		t.Errorf("bundle files %v", files)
	}
	if _, err := BundleImageOf(t.TempDir()); err == nil {
		t.Error("a directory without metadata/annotations.yaml made a bundle image")
	}
}

// The catalog image is what `opm generate dockerfile` builds: opm's image,
// /configs, a serve cache opm accepts for exactly those configs (opm serve
// --cache-dir refuses to start otherwise), the entrypoint, command and
// label.
func TestCatalogImageContents(t *testing.T) {
	src := OLMSourcesIn("../../bin", "")
	if _, err := os.Stat(src.OPM); err != nil {
		t.Skipf("opm not built (make olm-tools): %v", err)
	}
	// The OPM image's other program need not be real here.
	probe := filepath.Join(t.TempDir(), "grpc_health_probe")
	if err := os.WriteFile(probe, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src.GRPCHealthProbe = probe
	out := t.TempDir()
	if err := olm.WriteCatalog(olm.CatalogOptions{Root: "../..", Out: out, OPM: src.OPM}); err != nil {
		t.Fatal(err)
	}
	img, err := src.CatalogImageOf(olm.CatalogDir(out))
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.User != "1001" || !slices.Equal(c.Entrypoint, []string{"/bin/opm"}) ||
		!slices.Equal(c.Cmd, []string{"serve", "/configs", "--cache-dir=/tmp/cache"}) ||
		c.Labels["operators.operatorframework.io.index.configs.v1"] != "/configs" {
		t.Errorf("config %+v", c)
	}
	if _, _, ok := find(img, "bin/grpc_health_probe"); !ok {
		t.Error("no /bin/grpc_health_probe")
	}
	top := img.Layers[len(img.Layers)-1]
	want, _ := os.ReadFile(filepath.Join(olm.CatalogDir(out), "lbstack", "catalog.yaml"))
	if got, err := top.Read("configs/lbstack/catalog.yaml"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("/configs/lbstack/catalog.yaml: %v", err)
	}
	// Unpack the top layer and let opm check the cache as the image's
	// command would.
	root := t.TempDir()
	cacheFiles := 0
	for _, p := range top.Paths() {
		h, _ := top.Entry(p)
		if p == "tmp" {
			// The layer keeps the base's /tmp as it is: anyone may
			// write there.
			if h.Mode != 0o1777 || h.Uid != 0 {
				t.Errorf("/tmp: mode %o owner %d, want 1777 root", h.Mode, h.Uid)
			}
			continue
		}
		if h.Uid != 1001 {
			t.Errorf("/%s is owned by %d, not the opm image's user", p, h.Uid)
		}
		dst := filepath.Join(root, filepath.FromSlash(p))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.HasPrefix(p, "tmp/cache/") {
			cacheFiles++
		}
		data, err := top.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if cacheFiles == 0 {
		t.Fatal("no serve cache under /tmp/cache")
	}
	check := func() error {
		cmd := exec.Command(src.OPM, "serve", filepath.Join(root, "configs"), "--cache-dir="+filepath.Join(root, "tmp", "cache"),
			"--cache-only", "--cache-enforce-integrity", "--pprof-addr=", "--termination-log="+filepath.Join(root, "termination-log"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("opm serve: %s", out)
		}
		return err
	}
	if err := check(); err != nil {
		t.Errorf("opm refuses the image's cache: %v", err)
	}
	// The check can fail: changed configs invalidate the cache.
	changed := bytes.Replace(want, []byte("description: Bare-metal"), []byte("description: Bare metal"), 1)
	if bytes.Equal(changed, want) {
		t.Fatal("the package description changed: update this test")
	}
	if err := os.WriteFile(filepath.Join(root, "configs", "lbstack", "catalog.yaml"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := check(); err == nil {
		t.Error("opm accepted a cache of other configs")
	}
}

// OLM's own manifests name its image by a digest; the lab's copy names the
// tag the lab registry serves, and leaves the opm image to the catalog
// operator's default, which the lab serves too.
func TestOLMManifests(t *testing.T) {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "github.com", "operator-framework", "operator-lifecycle-manager@"+OLMVersion,
		"deploy", "upstream", "quickstart", "olm.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("OLM's module is not downloaded (make go-modules): %v", err)
	}
	got, err := OLMManifests(data)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got, []byte("quay.io/operator-framework/olm@")) {
		t.Error("an OLM image is still named by digest")
	}
	// olm-operator, catalog-operator and its -util-image, packageserver.
	if n := bytes.Count(got, []byte(OLMImage)); n != 4 {
		t.Errorf("%s named %d times, want 4", OLMImage, n)
	}
	if bytes.Contains(got, []byte("opmImage")) {
		t.Errorf("olm.yaml sets the catalog operator's opm image: serve it as that name, not %s", OPMImage)
	}
	// Every document still parses.
	for _, doc := range strings.Split(string(got), "\n---\n") {
		var v map[string]any
		if err := yaml.Unmarshal([]byte(doc), &v); err != nil {
			t.Errorf("rewritten olm.yaml: %v", err)
		}
	}
	if _, err := OLMManifests([]byte("image: quay.io/operator-framework/olm:v0.1.0\n")); err == nil {
		t.Error("OLMManifests accepted manifests of another OLM")
	}
}

// The lab serves the operator under the names each CSV gives it.
func TestBundleRelatedImages(t *testing.T) {
	imgs, err := BundleRelatedImages("../../bundle")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"quay.io/lbstack/lbstack-frr:v0.1.0", "quay.io/lbstack/lbstack-must-gather:v0.1.0", "quay.io/lbstack/lbstack:v0.1.0"}
	if !slices.Equal(imgs, want) {
		t.Errorf("related images %v, want %v", imgs, want)
	}
}
