package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Image is what the lab kubelet runs for a container image that is not
// simulated: a binary on this machine standing in for the image's
// entrypoint.
type Image struct {
	// Binary is the executable that runs.
	Binary string `json:"binary"`
	// Entrypoint is the image's ENTRYPOINT path (e.g. /usr/bin/lbstack):
	// a container whose command starts with it (or its base name) runs
	// Binary instead.
	Entrypoint string `json:"entrypoint"`

	// frr marks the lab's built-in FRR image (see frr_container.go): its
	// command is rewritten by frrArgv rather than by Entrypoint.
	frr bool
}

// LbstackImageName is the repository name (last path element) that marks
// lbstack's own image, whatever registry and tag a manifest uses:
// quay.io/lbstack/lbstack:v1, lbstack:dev, ...
const LbstackImageName = "lbstack"

const imagesFile = "images.json"

// RegisterImage maps an image name (matched as in resolveImage) to a
// binary for the kubelet of the lab in stateDir. The kubelet reads the map
// each time it starts a container, so registration needs no restart.
// Tests use it for their own test programs; nothing else is real.
func RegisterImage(stateDir, name string, img Image) error {
	if !filepath.IsAbs(img.Binary) {
		return fmt.Errorf("register image %s: binary %q must be an absolute path", name, img.Binary)
	}
	m, err := readImages(stateDir)
	if err != nil {
		return err
	}
	m[name] = img
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(stateDir, imagesFile), data, 0o644)
}

func readImages(stateDir string) (map[string]Image, error) {
	m := map[string]Image{}
	data, err := os.ReadFile(filepath.Join(stateDir, imagesFile))
	if errors.Is(err, os.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", imagesFile, err)
	}
	return m, nil
}

// imageRepo strips the digest and tag from an image reference.
func imageRepo(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// resolveImage finds what runs image: an exact registered reference, a
// registered repository, or a registered last path element (so "lbstack"
// matches quay.io/lbstack/lbstack:v1). ok is false for images the lab
// simulates.
func resolveImage(images map[string]Image, ref string) (Image, bool) {
	if img, ok := images[ref]; ok {
		return img, true
	}
	repo := imageRepo(ref)
	if img, ok := images[repo]; ok {
		return img, true
	}
	if img, ok := images[repo[strings.LastIndexByte(repo, '/')+1:]]; ok {
		return img, true
	}
	return Image{}, false
}

// containerArgv is the argv a container runs with image img: Kubernetes'
// command/args semantics over the image's entrypoint.
func containerArgv(img Image, command, args []string) []string {
	if img.frr {
		return frrArgv(img.Binary, command, args)
	}
	if len(command) == 0 {
		return append([]string{img.Binary}, args...)
	}
	argv := append(append([]string(nil), command...), args...)
	if argv[0] == img.Entrypoint || (img.Entrypoint != "" && argv[0] == filepath.Base(img.Entrypoint)) {
		argv[0] = img.Binary
	}
	return argv
}
