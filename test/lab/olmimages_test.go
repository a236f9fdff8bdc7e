package lab

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	for _, p := range append([]string{src.OPM, src.GRPCHealthProbe, src.ScorecardTest}, binPaths(src)...) {
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
	for _, p := range append([]string{src.OPM, src.GRPCHealthProbe, src.ScorecardTest}, binPaths(src)...) {
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
	serveAndProbe(t, src.OPM, OLMSourcesIn("../../bin", "").GRPCHealthProbe, root)
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
// tag the lab registry serves, and any opm image they name is the one the
// lab serves.
func TestOLMManifests(t *testing.T) {
	crds, got, err := OLMSourcesIn("../../bin", "").OLMInstallManifests()
	if err != nil {
		t.Skipf("OLM's manifests are not copied (make olm-tools): %v", err)
	}
	if !bytes.Contains(crds, []byte("name: clusterserviceversions.operators.coreos.com")) {
		t.Error("crds.yaml lacks the ClusterServiceVersion CRD")
	}
	if bytes.Contains(got, []byte("quay.io/operator-framework/olm@")) {
		t.Error("an OLM image is still named by digest")
	}
	// olm-operator, catalog-operator and its -util-image, packageserver.
	if n := bytes.Count(got, []byte(OLMImage)); n != 4 {
		t.Errorf("%s named %d times, want 4", OLMImage, n)
	}
	// The catalog operator's opm image (OLM's chart sets the default
	// explicitly) must be the name the lab serves opm's image as.
	for _, m := range regexp.MustCompile(`--?opmImage[= ]\s*(\S+)`).FindAllSubmatch(got, -1) {
		if string(m[1]) != OPMImage {
			t.Errorf("olm.yaml sets the catalog operator's opm image to %s: serve it as that name, not %s", m[1], OPMImage)
		}
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

// OLM's bundle unpack Job runs cpb from the util image inside the bundle
// image (`/util/cpb /bundle`, working directory /): it must find the
// bundle where the bundle image has it and copy the manifests and
// metadata.
func TestCPBUnpacksTheBundleImage(t *testing.T) {
	cpb, err := filepath.Abs(filepath.Join(OLMSourcesIn("../../bin", "").OLMBin, "cpb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cpb); err != nil {
		t.Skipf("cpb not built (make olm-tools): %v", err)
	}
	img, err := BundleImageOf("../../bundle")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	unpack(t, img.Layers[0], root)
	cmd := exec.Command(cpb, "/bundle")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpb: %v\n%s", err, out)
	}
	// cpb copies to ./bundle, which is /bundle from the image's working
	// directory.
	for _, p := range []string{"metadata/annotations.yaml", "manifests/lbstack.clusterserviceversion.yaml"} {
		want, _ := os.ReadFile(filepath.Join("../../bundle", p))
		if got, err := os.ReadFile(filepath.Join(root, "bundle", p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("cpb did not copy %s: %v", p, err)
		}
	}
}

// unpack writes a layer's directories and files under root.
func unpack(t *testing.T, l *oci.Layer, root string) {
	t.Helper()
	for _, p := range l.Paths() {
		h, _ := l.Entry(p)
		dst := filepath.Join(root, filepath.FromSlash(p))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			data, err := l.Read(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The catalog's images land in the store under the names the catalog and
// the CSVs use; the CSVs' operator images are the lab's lbstack images.
func TestBuildOLMCatalogImages(t *testing.T) {
	src := fakeOLMSources(t)
	src.OPM = OLMSourcesIn("../../bin", "").OPM
	if _, err := os.Stat(src.OPM); err != nil {
		t.Skipf("opm not built (make olm-tools): %v", err)
	}
	out := t.TempDir()
	if err := olm.WriteCatalog(olm.CatalogOptions{Root: "../..", Out: out, OPM: src.OPM}); err != nil {
		t.Fatal(err)
	}
	store := &oci.Store{Dir: t.TempDir()}
	if err := BuildOLMCatalogImages(store, src, out); err == nil {
		t.Error("the CSVs' images were tagged without the lab's lbstack images in the store")
	}
	labDigests := map[string]string{}
	for _, ref := range []string{LbstackImage, FRRImage, MustGatherImage} {
		l := oci.NewLayer()
		l.File("name", []byte(ref), 0o644, 0, 0)
		d, err := store.Put(oci.Image{Layers: []*oci.Layer{l}}, ref)
		if err != nil {
			t.Fatal(err)
		}
		labDigests[ref] = d
	}
	if err := BuildOLMCatalogImages(store, src, out); err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) string {
		t.Helper()
		name, tag, _ := oci.SplitRef(ref)
		d, err := store.Resolve(name, tag)
		if err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		return d
	}
	for _, r := range olm.Releases {
		cfg, err := store.ReadConfig(resolve(olm.BundleImage(r.Version)))
		if err != nil || cfg.Labels["operators.operatorframework.io.bundle.package.v1"] != "lbstack" {
			t.Errorf("bundle image %s: labels %v, %v", olm.BundleImage(r.Version), cfg.Labels, err)
		}
		if d := resolve(olm.OperatorImage(r.Version)); d != labDigests[LbstackImage] {
			t.Errorf("%s is not the lab's lbstack image", olm.OperatorImage(r.Version))
		}
		if d := resolve("quay.io/lbstack/lbstack-frr:v" + r.Version); d != labDigests[FRRImage] {
			t.Errorf("the FRR image of %s is not the lab's", r.Version)
		}
	}
	if cfg, err := store.ReadConfig(resolve(olm.CatalogImage)); err != nil || cfg.Labels["operators.operatorframework.io.index.configs.v1"] != "/configs" {
		t.Errorf("catalog image: labels %v, %v", cfg.Labels, err)
	}
}

// serveAndProbe runs the catalog image's command from its unpacked files
// (root) on a free local port and asks grpc_health_probe, as the catalog
// pod's probes do, until it answers SERVING.
func serveAndProbe(t *testing.T, opm, probe, root string) {
	t.Helper()
	if _, err := os.Stat(probe); err != nil {
		t.Logf("grpc_health_probe not built (make olm-tools): serving not checked")
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	// The image's command (serve /configs --cache-dir=/tmp/cache), which
	// enforces the cache's integrity, at the unpacked paths.
	var log bytes.Buffer
	serve := exec.Command(opm, "serve", filepath.Join(root, "configs"), "--cache-dir="+filepath.Join(root, "tmp", "cache"),
		"--port="+port, "--pprof-addr=", "--termination-log="+filepath.Join(root, "termination-log"))
	serve.Stdout, serve.Stderr = &log, &log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() {
		_ = serve.Process.Kill()
		<-exited
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command(probe, "-addr=127.0.0.1:"+port).CombinedOutput()
		if err == nil && strings.Contains(string(out), "SERVING") {
			return
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("opm serve exited: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the catalog never answered grpc_health_probe: %s\nopm serve:\n%s", out, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The scorecard's images: the test program on the PATH as the bundle's
// scorecard config runs it, tar and gzip in the untar image, user 1001
// with a home.
func TestScorecardImages(t *testing.T) {
	src := fakeOLMSources(t)
	img, err := src.ScorecardTestImageOf()
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.User != "1001" || c.WorkingDir != "/opt/scorecard-test" || !slices.Contains(c.Env, "HOME=/opt/scorecard-test") ||
		!strings.Contains(strings.Join(c.Env, " "), "/usr/local/bin") {
		t.Errorf("scorecard-test config %+v", c)
	}
	if h, _, ok := find(img, "usr/local/bin/scorecard-test"); !ok || h.Mode != 0o755 {
		t.Errorf("/usr/local/bin/scorecard-test: %+v", h)
	}
	if src.Debs == "" {
		t.Skip("no .debs (run `make image-debs`)")
	}
	img, err = src.ScorecardUntarImageOf()
	if err != nil {
		t.Fatal(err)
	}
	if c := img.Config; c.User != "1001" || len(c.Entrypoint) != 0 || !strings.Contains(strings.Join(c.Env, " "), "/usr/bin") {
		t.Errorf("scorecard-untar config %+v", c)
	}
	for _, p := range []string{"usr/bin/tar", "usr/bin/gzip"} {
		if _, _, ok := find(img, p); !ok {
			t.Errorf("the untar image lacks /%s", p)
		}
	}
	if missing := MissingLibraries(img.Layers); len(missing) > 0 {
		t.Errorf("the untar image lacks libraries:\n%s", strings.Join(missing, "\n"))
	}
}
