package lab

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"

	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/test/lab/oci"
	"github.com/lbstack/lbstack/test/olm"
)

// OLM in the lab (docs/olm.md): OLM's and opm's images built here from the
// binaries of `make olm-tools`, under the names OLM uses, and builders of
// bundle and file-based catalog images (test/olm names lbstack's and
// writes their contents, `make olm-catalog`). None of this is part of
// BuildImages: a lab without OLM stays as it was.

// Versions of the OLM tools; the Makefile builds these (test/olm holds
// them equal to its variables and to test/olmtools' go.mod).
const (
	OLMVersion             = "v0.38.0"
	OPMVersion             = "v1.61.0"
	GRPCHealthProbeVersion = "v0.4.41"
	OperatorSDKVersion     = "v1.42.2"
)

const (
	// OLMImage is OLM's image (olm, catalog and package-server operators,
	// and the catalog operator's util image). OLM's own manifests
	// (deploy/upstream/quickstart/olm.yaml) name it by a digest no image
	// built here can have: OLMManifests rewrites it to this tag.
	OLMImage = "quay.io/operator-framework/olm:" + OLMVersion
	// OLMLatestImage is the catalog operator's default -util-image, should
	// a deployment leave the flag out.
	OLMLatestImage = "quay.io/operator-framework/olm:latest"
	// OLMManifestImage is the reference olm.yaml of OLM v0.38.0 uses for
	// every OLM container and the -util-image flag.
	OLMManifestImage = "quay.io/operator-framework/olm@sha256:e74b2ac57963c7f3ba19122a8c31c9f2a0deb3c0c5cac9e5323ccffd0ca198ed"
	// OPMImage is the catalog operator's default --opmImage (olm.yaml does
	// not set it): the bundle unpack Job's extract container runs `opm
	// alpha bundle extract` from it. Also the catalog image's base.
	OPMImage = "quay.io/operator-framework/opm:latest"
	// OPMVersionImage is the same image under opm's version.
	OPMVersionImage = "quay.io/operator-framework/opm:" + OPMVersion
)

// OLMImageSpec is OLM's image as OLM's Dockerfile (v0.38.0) makes it:
// gcr.io/distroless/static:debug, whose busybox gives the bundle unpack
// Job's util container the /bin/cp it runs (`/bin/cp -Rv /bin/cpb
// /util/cpb`) and the catalog pods' extract-utilities container a `cp` on
// the PATH; OLM's programs under /bin; user 1001. The lab's cp is
// Debian's (coreutils and its libraries, from `make image-debs`).
var OLMImageSpec = struct {
	Binaries   []string // each at /usr/bin/<name>, so /bin/<name> through the usr-merge link
	User       string
	Entrypoint []string
	WorkingDir string
	Debs       []string
}{
	Binaries:   []string{"olm", "catalog", "package-server", "copy-content", "cpb"},
	User:       "1001",
	Entrypoint: []string{"/bin/olm"},
	WorkingDir: "/",
	Debs:       []string{"coreutils", "libc6", "libacl1", "libattr1", "libselinux1", "libpcre2-8-0", "libgmp10"},
}

// OPMImageSpec is opm's image as operator-registry's
// release/goreleaser.opm.Dockerfile (v1.61.0) makes it: distroless
// static, /bin/opm, /bin/grpc_health_probe (the catalog pods' exec
// probes run it from the PATH), its nsswitch.conf, user 1001.
var OPMImageSpec = struct {
	OPM, GRPCHealthProbe string
	NSSwitch             string
	User                 string
	Entrypoint           []string
}{
	OPM:             "/bin/opm",
	GRPCHealthProbe: "/bin/grpc_health_probe",
	NSSwitch:        "hosts: files dns\n",
	User:            "1001",
	Entrypoint:      []string{"/bin/opm"},
}

// CatalogImageSpec is a file-based catalog image as `opm generate
// dockerfile` writes it: the opm image, the catalog under /configs with a
// serve cache built beforehand under /tmp/cache (opm serve with
// --cache-dir refuses to start without a valid one), and the label that
// says where the catalog is.
var CatalogImageSpec = struct {
	Configs, Cache  string
	Entrypoint, Cmd []string
	Labels          map[string]string
}{
	Configs:    "/configs",
	Cache:      "/tmp/cache",
	Entrypoint: []string{"/bin/opm"},
	Cmd:        []string{"serve", "/configs", "--cache-dir=/tmp/cache"},
	Labels:     map[string]string{"operators.operatorframework.io.index.configs.v1": "/configs"},
}

// distrolessUser is the user OLM's and opm's images run as (USER 1001),
// which also owns what the catalog image's build stage wrote.
const distrolessUser = 1001

// OLMSources are the inputs of the OLM images: the programs `make
// olm-tools` builds and the .debs of `make image-debs`.
type OLMSources struct {
	// OLMBin holds olm, catalog, package-server, copy-content and cpb
	// (bin/olm-v0.38.0).
	OLMBin string
	// OPM and GRPCHealthProbe are the programs (bin/opm-v1.61.0,
	// bin/grpc_health_probe-v0.4.41).
	OPM, GRPCHealthProbe string
	// ScorecardTest is operator-sdk's scorecard-test program
	// (bin/scorecard-test-v1.42.2).
	ScorecardTest string
	// Debs holds the Debian packages OLM's image takes cp from, and the
	// scorecard's untar image tar and gzip.
	Debs string
}

// OLMSourcesIn names the OLM sources in a repository's bin/ directory.
func OLMSourcesIn(bin, debs string) OLMSources {
	return OLMSources{
		OLMBin:          filepath.Join(bin, "olm-"+OLMVersion),
		OPM:             filepath.Join(bin, "opm-"+OPMVersion),
		GRPCHealthProbe: filepath.Join(bin, "grpc_health_probe-"+GRPCHealthProbeVersion),
		ScorecardTest:   filepath.Join(bin, "scorecard-test-"+OperatorSDKVersion),
		Debs:            debs,
	}
}

// OLMImageOf builds OLM's image.
func (s OLMSources) OLMImageOf() (oci.Image, error) {
	base, err := distrolessStatic()
	if err != nil {
		return oci.Image{}, err
	}
	// Debian's packages put their programs under /bin and /usr/bin; the
	// usr-merge symlinks make both one directory, so OLM's programs go
	// to /usr/bin and are found at /bin as OLM's manifests name them.
	debs := oci.NewLayer()
	debs.UsrMerge()
	if err := (ImageSources{Debs: s.Debs}).debs(debs, OLMImageSpec.Debs...); err != nil {
		return oci.Image{}, fmt.Errorf("OLM image's cp: %w", err)
	}
	top := oci.NewLayer()
	for _, b := range OLMImageSpec.Binaries {
		if err := top.CopyFile("usr/bin/"+b, filepath.Join(s.OLMBin, b), 0o755, 0, 0); err != nil {
			return oci.Image{}, fmt.Errorf("OLM image (run `make olm-tools`): %w", err)
		}
	}
	cfg := oci.Config{
		User:       OLMImageSpec.User,
		Entrypoint: OLMImageSpec.Entrypoint,
		WorkingDir: OLMImageSpec.WorkingDir,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
	}
	return oci.Image{Config: cfg, Layers: []*oci.Layer{base, debs, top}}, nil
}

// OPMImageOf builds opm's image.
func (s OLMSources) OPMImageOf() (oci.Image, error) {
	base, err := distrolessStatic()
	if err != nil {
		return oci.Image{}, err
	}
	top := oci.NewLayer()
	if err := top.CopyFile(OPMImageSpec.OPM, s.OPM, 0o755, 0, 0); err != nil {
		return oci.Image{}, fmt.Errorf("opm image (run `make olm-tools`): %w", err)
	}
	if err := top.CopyFile(OPMImageSpec.GRPCHealthProbe, s.GRPCHealthProbe, 0o755, 0, 0); err != nil {
		return oci.Image{}, fmt.Errorf("opm image (run `make olm-tools`): %w", err)
	}
	top.File("etc/nsswitch.conf", []byte(OPMImageSpec.NSSwitch), 0o644, 0, 0)
	cfg := oci.Config{
		User:       OPMImageSpec.User,
		Entrypoint: OPMImageSpec.Entrypoint,
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
	}
	return oci.Image{Config: cfg, Layers: []*oci.Layer{base, top}}, nil
}

// CatalogImageOf builds a file-based catalog image from the catalog
// directory fbc (what `opm validate` accepts), with opm's serve cache
// built by this machine's opm as the Dockerfile's build stage would.
func (s OLMSources) CatalogImageOf(fbc string) (oci.Image, error) {
	img, err := s.OPMImageOf()
	if err != nil {
		return oci.Image{}, err
	}
	scratch, err := os.MkdirTemp("", "lab-catalog-cache-")
	if err != nil {
		return oci.Image{}, err
	}
	defer os.RemoveAll(scratch)
	cache := filepath.Join(scratch, "cache")
	// No profiling endpoint (it would take a port of this machine) and
	// no termination log in /dev.
	cmd := exec.Command(s.OPM, "serve", fbc, "--cache-dir="+cache, "--cache-only", "--pprof-addr=", "--termination-log="+filepath.Join(scratch, "termination-log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return oci.Image{}, fmt.Errorf("catalog image: opm serve --cache-only %s: %w\n%s", fbc, err, out)
	}
	l := oci.NewLayer()
	// /tmp as the base image has it, or this layer's parent of /tmp/cache
	// would replace it with a directory only root can write to.
	l.Dir("tmp", 0o1777, 0, 0)
	// The build stage runs as the opm image's user; COPY --from keeps
	// the owner.
	if err := addTree(l, CatalogImageSpec.Configs, fbc, distrolessUser); err != nil {
		return oci.Image{}, fmt.Errorf("catalog image: %w", err)
	}
	if err := addTree(l, CatalogImageSpec.Cache, cache, distrolessUser); err != nil {
		return oci.Image{}, fmt.Errorf("catalog image: %w", err)
	}
	img.Layers = append(img.Layers, l)
	img.Config.Entrypoint = CatalogImageSpec.Entrypoint
	img.Config.Cmd = CatalogImageSpec.Cmd
	img.Config.Labels = map[string]string{}
	for k, v := range CatalogImageSpec.Labels {
		img.Config.Labels[k] = v
	}
	return img, nil
}

// BundleImageOf builds the bundle image of a bundle directory (what `make
// bundle` writes) as its bundle.Dockerfile does: FROM scratch, manifests/,
// metadata/ and tests/scorecard/ at the root, and the annotations of
// metadata/annotations.yaml as the image's labels (OLM and opm read the
// package and channels from either).
func BundleImageOf(dir string) (oci.Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, "metadata", "annotations.yaml"))
	if err != nil {
		return oci.Image{}, fmt.Errorf("bundle image: %w", err)
	}
	var meta struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.UnmarshalStrict(data, &meta); err != nil {
		return oci.Image{}, fmt.Errorf("bundle image: %s: %w", filepath.Join(dir, "metadata", "annotations.yaml"), err)
	}
	if meta.Annotations["operators.operatorframework.io.bundle.mediatype.v1"] != "registry+v1" {
		return oci.Image{}, fmt.Errorf("bundle image: %s is not a registry+v1 bundle", dir)
	}
	l := oci.NewLayer()
	for _, sub := range []string{"manifests", "metadata", "tests/scorecard"} {
		src := filepath.Join(dir, filepath.FromSlash(sub))
		if _, err := os.Stat(src); os.IsNotExist(err) && sub == "tests/scorecard" {
			continue
		}
		if err := addTree(l, "/"+sub, src, 0); err != nil {
			return oci.Image{}, fmt.Errorf("bundle image: %w", err)
		}
	}
	return oci.Image{Config: oci.Config{Labels: meta.Annotations}, Layers: []*oci.Layer{l}}, nil
}

// addTree adds the host directory src at dst, files and directories owned
// by uid (as its own group), content read now (the trees are small, and
// the catalog's cache directory is gone before the layer is written).
func addTree(l *oci.Layer, dst, src string, uid int) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.ToSlash(filepath.Join(dst, rel))
		switch {
		case d.IsDir():
			l.Dir(target, 0o755, uid, uid)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			l.File(target, data, 0o644, uid, uid)
		default:
			return fmt.Errorf("%s: neither a file nor a directory", p)
		}
		return nil
	})
}

// OLMManifests returns OLM's deploy/upstream/quickstart/olm.yaml with its
// image references (by digest) replaced by OLMImage, which the lab
// registry serves: a digest names one exact manifest, and the image built
// here has another.
func OLMManifests(olmYAML []byte) ([]byte, error) {
	if !bytes.Contains(olmYAML, []byte(OLMManifestImage)) {
		return nil, fmt.Errorf("olm.yaml does not name %s: is it OLM %s's?", OLMManifestImage, OLMVersion)
	}
	return bytes.ReplaceAll(olmYAML, []byte(OLMManifestImage), []byte(OLMImage)), nil
}

// OLMInstallManifests returns OLM's CRDs and its olm.yaml as `make
// olm-tools` copied them from OLM's module, olm.yaml rewritten
// (OLMManifests) for the lab registry: apply the CRDs, wait until they are
// established, then apply olm.yaml, as OLM's install.sh does.
func (s OLMSources) OLMInstallManifests() (crds, olmYAML []byte, err error) {
	if crds, err = os.ReadFile(filepath.Join(s.OLMBin, "crds.yaml")); err != nil {
		return nil, nil, fmt.Errorf("OLM's CRDs (run `make olm-tools`): %w", err)
	}
	raw, err := os.ReadFile(filepath.Join(s.OLMBin, "olm.yaml"))
	if err != nil {
		return nil, nil, fmt.Errorf("OLM's olm.yaml (run `make olm-tools`): %w", err)
	}
	if olmYAML, err = OLMManifests(raw); err != nil {
		return nil, nil, err
	}
	return crds, olmYAML, nil
}

// BuildOLMImages builds OLM's and opm's images into store under the names
// OLM uses.
func BuildOLMImages(store *oci.Store, src OLMSources) error {
	for _, b := range []struct {
		refs []string
		make func() (oci.Image, error)
	}{
		{[]string{OLMImage, OLMLatestImage}, src.OLMImageOf},
		{[]string{OPMImage, OPMVersionImage}, src.OPMImageOf},
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

// BuildBundleImage builds the bundle in dir into store as ref.
func BuildBundleImage(store *oci.Store, dir, ref string) error {
	img, err := BundleImageOf(dir)
	if err != nil {
		return err
	}
	if _, err := store.Put(img, ref); err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	return nil
}

// BuildCatalogImage builds the catalog in fbc into store as ref.
func BuildCatalogImage(store *oci.Store, src OLMSources, fbc, ref string) error {
	img, err := src.CatalogImageOf(fbc)
	if err != nil {
		return err
	}
	if _, err := store.Put(img, ref); err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	return nil
}

// BundleRelatedImages lists the images a bundle's CSV names (its
// spec.relatedImages): the lab serves lbstack's images under these names
// too, or the installed operator's pods cannot start.
func BundleRelatedImages(dir string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "manifests", "*.clusterserviceversion.yaml"))
	if err != nil || len(paths) != 1 {
		return nil, fmt.Errorf("bundle %s: want one CSV in manifests/, found %d", dir, len(paths))
	}
	data, err := os.ReadFile(paths[0])
	if err != nil {
		return nil, err
	}
	var csv struct {
		Spec struct {
			RelatedImages []struct {
				Image string `json:"image"`
			} `json:"relatedImages"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &csv); err != nil {
		return nil, fmt.Errorf("%s: %w", paths[0], err)
	}
	var out []string
	for _, r := range csv.Spec.RelatedImages {
		if r.Image != "" && !slices.Contains(out, r.Image) {
			out = append(out, r.Image)
		}
	}
	sort.Strings(out)
	return out, nil
}

// BuildOLMCatalogImages builds what `make olm-catalog` wrote under out
// (test/olm) into store: each release's bundle image and the catalog
// image, and tags the lab's lbstack images with the names each release's
// CSV gives them. The lbstack images must be in store already
// (BuildImages).
func BuildOLMCatalogImages(store *oci.Store, src OLMSources, out string) error {
	for _, r := range olm.Releases {
		dir := olm.BundleDir(out, r.Version)
		if err := BuildBundleImage(store, dir, olm.BundleImage(r.Version)); err != nil {
			return fmt.Errorf("release %s (run `make olm-catalog`): %w", r.Version, err)
		}
		if err := TagRelatedImages(store, dir); err != nil {
			return fmt.Errorf("release %s: %w", r.Version, err)
		}
	}
	return BuildCatalogImage(store, src, olm.CatalogDir(out), olm.CatalogImage)
}

// labImageFor maps the repositories a CSV names to the lab's images: one
// build of each serves every release (the releases differ in their CSVs,
// which is what an OLM upgrade changes).
var labImageFor = map[string]string{
	olm.OperatorImageRepository:                  LbstackImage,
	olm.OperatorImageRepository + "-frr":         FRRImage,
	olm.OperatorImageRepository + "-must-gather": MustGatherImage,
}

// TagRelatedImages points each related image of the bundle in dir at the
// lab's image of that repository.
func TagRelatedImages(store *oci.Store, dir string) error {
	imgs, err := BundleRelatedImages(dir)
	if err != nil {
		return err
	}
	for _, ref := range imgs {
		name, _, ok := oci.SplitRef(ref)
		if !ok {
			return fmt.Errorf("related image %s: want registry/repository:tag", ref)
		}
		labRef, ok := labImageFor[name]
		if !ok {
			return fmt.Errorf("related image %s: the lab builds no image of %s", ref, name)
		}
		labName, labTag, _ := oci.SplitRef(labRef)
		digest, err := store.Resolve(labName, labTag)
		if err != nil {
			return fmt.Errorf("related image %s: %w (build the lab's images first)", ref, err)
		}
		if err := store.Tag(ref, digest); err != nil {
			return err
		}
	}
	return nil
}

// The scorecard's images (`operator-sdk scorecard`, bundle/tests/scorecard):
// the test image the bundle's config names, and an untar image for the
// test pod's init container (`tar xvzf /scorecard/bundle.tar.gz -C
// /scorecard-bundle`). operator-sdk names its default untar image by a
// digest no image built here can have: run it with --untar-image
// ScorecardUntarImage.
const (
	ScorecardTestImage  = "quay.io/operator-framework/scorecard-test:" + OperatorSDKVersion
	ScorecardUntarImage = "quay.io/operator-framework/scorecard-untar:" + OperatorSDKVersion
)

// ScorecardImageSpec is what operator-sdk's images/scorecard-test and
// images/scorecard-untar Dockerfiles (v1.42.2) give their images beside
// their base: the user 1001 with its home as the working directory; the
// test program on the PATH (the config runs `scorecard-test <test>`); tar
// and gzip for the untar image, Debian's here (UBI's there).
var ScorecardImageSpec = struct {
	TestBinary     string
	TestHome       string
	UntarHome      string
	User           string
	UntarDebs      []string
	TestEntrypoint []string
}{
	TestBinary:     "/usr/local/bin/scorecard-test",
	TestHome:       "/opt/scorecard-test",
	UntarHome:      "/opt/scorecard-untar",
	User:           "1001",
	UntarDebs:      []string{"tar", "gzip", "libc6", "libacl1", "libselinux1", "libpcre2-8-0"},
	TestEntrypoint: []string{"/usr/local/bin/scorecard-test"},
}

// scorecardUser is the passwd and group files of a scorecard image: its
// Dockerfile appends the user to the base's passwd.
func scorecardUser(l *oci.Layer, name, home string) {
	l.File("etc/passwd", []byte(fmt.Sprintf("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n%s:x:1001:0:%s user:%s:/sbin/nologin\n", name, name, home)), 0o644, 0, 0)
	l.File("etc/group", []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644, 0, 0)
	l.Dir("tmp", 0o1777, 0, 0)
	l.Dir(home, 0o755, 0, 0)
}

func scorecardEnv(name, home string) []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "USER_NAME=" + name, "USER_UID=1001"}
}

// ScorecardTestImageOf builds the scorecard's test image.
func (s OLMSources) ScorecardTestImageOf() (oci.Image, error) {
	spec := ScorecardImageSpec
	l := oci.NewLayer()
	scorecardUser(l, "scorecard-test", spec.TestHome)
	if err := l.CopyFile(spec.TestBinary, s.ScorecardTest, 0o755, 0, 0); err != nil {
		return oci.Image{}, fmt.Errorf("scorecard-test image (run `make olm-tools`): %w", err)
	}
	cfg := oci.Config{User: spec.User, Entrypoint: spec.TestEntrypoint, WorkingDir: spec.TestHome, Env: scorecardEnv("scorecard-test", spec.TestHome)}
	return oci.Image{Config: cfg, Layers: []*oci.Layer{l}}, nil
}

// ScorecardUntarImageOf builds the scorecard's untar image.
func (s OLMSources) ScorecardUntarImageOf() (oci.Image, error) {
	spec := ScorecardImageSpec
	l := oci.NewLayer()
	l.UsrMerge()
	if err := (ImageSources{Debs: s.Debs}).debs(l, spec.UntarDebs...); err != nil {
		return oci.Image{}, fmt.Errorf("scorecard-untar image: %w", err)
	}
	scorecardUser(l, "scorecard-untar", spec.UntarHome)
	cfg := oci.Config{User: spec.User, WorkingDir: spec.UntarHome, Env: scorecardEnv("scorecard-untar", spec.UntarHome)}
	return oci.Image{Config: cfg, Layers: []*oci.Layer{l}}, nil
}

// BuildScorecardImages builds the scorecard's test and untar images.
func BuildScorecardImages(store *oci.Store, src OLMSources) error {
	for _, b := range []struct {
		ref  string
		make func() (oci.Image, error)
	}{
		{ScorecardTestImage, src.ScorecardTestImageOf},
		{ScorecardUntarImage, src.ScorecardUntarImageOf},
	} {
		img, err := b.make()
		if err != nil {
			return fmt.Errorf("image %s: %w", b.ref, err)
		}
		if _, err := store.Put(img, b.ref); err != nil {
			return fmt.Errorf("image %s: %w", b.ref, err)
		}
	}
	return nil
}
