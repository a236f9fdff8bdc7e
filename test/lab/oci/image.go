package oci

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Media types of what the store holds.
const (
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
)

// Config is the runtime part of an image's configuration: what a
// Dockerfile's USER, ENTRYPOINT, CMD, ENV, WORKDIR and LABEL set.
type Config struct {
	User       string            `json:"User,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// Image is an image to store: its layers, bottom first, and its config.
type Image struct {
	Config Config
	Layers []*Layer
}

type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       Config `json:"config"`
	RootFS       struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// Descriptor points at a blob.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Store is a content store on disk: blobs by digest, and references
// (registry/repository:tag) naming manifests. A reference whose tag is
// "*" names every tag of its repository (the lab maps image names this
// way, docs/lab.md).
type Store struct {
	Dir string
	mu  sync.Mutex
}

const refsFile = "refs.json"

func (s *Store) blobPath(digest string) (string, error) {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexd) != 64 || strings.Trim(hexd, "0123456789abcdef") != "" {
		return "", fmt.Errorf("invalid digest %q", digest)
	}
	return filepath.Join(s.Dir, "blobs", "sha256", hexd), nil
}

// BlobPath returns the file holding a blob, or an error when the store
// lacks it.
func (s *Store) BlobPath(digest string) (string, error) {
	p, err := s.blobPath(digest)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// writeBlob stores what write produces under its digest.
func (s *Store) writeBlob(write func(w io.Writer) error) (string, int64, error) {
	dir := filepath.Join(s.Dir, "blobs", "sha256")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, err
	}
	tmp, err := os.CreateTemp(dir, ".blob-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	d := newDigester(bw)
	werr := write(d)
	if werr == nil {
		werr = bw.Flush()
	}
	if werr != nil {
		tmp.Close()
		return "", 0, werr
	}
	if err := tmp.Close(); err != nil {
		return "", 0, err
	}
	digest := d.digest()
	p, _ := s.blobPath(digest)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", 0, err
	}
	return digest, d.n, nil
}

func (s *Store) writeBytes(data []byte) (string, int64, error) {
	return s.writeBlob(func(w io.Writer) error { _, err := w.Write(data); return err })
}

// Put stores img and points each of refs at it. It returns the manifest's
// digest.
func (s *Store) Put(img Image, refs ...string) (string, error) {
	var cfg imageConfig
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Config = img.Config
	cfg.RootFS.Type = "layers"
	m := Manifest{SchemaVersion: 2, MediaType: MediaTypeManifest}
	for i, l := range img.Layers {
		digest, size, err := s.writeBlob(l.writeTo)
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i, err)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest)
		m.Layers = append(m.Layers, Descriptor{MediaType: MediaTypeLayer, Digest: digest, Size: size})
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	digest, size, err := s.writeBytes(data)
	if err != nil {
		return "", err
	}
	m.Config = Descriptor{MediaType: MediaTypeConfig, Digest: digest, Size: size}
	if data, err = json.Marshal(m); err != nil {
		return "", err
	}
	if digest, _, err = s.writeBytes(data); err != nil {
		return "", err
	}
	for _, r := range refs {
		if err := s.Tag(r, digest); err != nil {
			return "", err
		}
	}
	return digest, nil
}

// Tag points ref (registry/repository:tag, tag "*" for every tag) at a
// stored manifest.
func (s *Store) Tag(ref, digest string) error {
	if _, err := s.BlobPath(digest); err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	if _, _, ok := SplitRef(ref); !ok {
		return fmt.Errorf("tag %s: want registry/repository:tag", ref)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, err := s.refs()
	if err != nil {
		return err
	}
	refs[ref] = digest
	data, err := json.MarshalIndent(refs, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, "."+refsFile)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.Dir, refsFile))
}

func (s *Store) refs() (map[string]string, error) {
	refs := map[string]string{}
	data, err := os.ReadFile(filepath.Join(s.Dir, refsFile))
	if errors.Is(err, os.ErrNotExist) {
		return refs, nil
	}
	if err != nil {
		return nil, err
	}
	return refs, json.Unmarshal(data, &refs)
}

// Refs lists the stored references, sorted.
func (s *Store) Refs() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, err := s.refs()
	if err != nil {
		return nil, err
	}
	var out []string
	for r := range refs {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// SplitRef splits registry/repository:tag into name and tag.
func SplitRef(ref string) (name, tag string, ok bool) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || i < strings.LastIndexByte(ref, '/') || !strings.Contains(ref[:i], "/") {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// Resolve returns the manifest digest of name (registry/repository) at
// reference (a tag, or a digest of a stored manifest).
func (s *Store) Resolve(name, reference string) (string, error) {
	if strings.HasPrefix(reference, "sha256:") {
		if _, err := s.BlobPath(reference); err != nil {
			return "", fmt.Errorf("%s@%s: %w", name, reference, os.ErrNotExist)
		}
		return reference, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, err := s.refs()
	if err != nil {
		return "", err
	}
	if d, ok := refs[name+":"+reference]; ok {
		return d, nil
	}
	if d, ok := refs[name+":*"]; ok {
		return d, nil
	}
	return "", fmt.Errorf("%s:%s: %w", name, reference, os.ErrNotExist)
}

// ReadManifest returns a stored manifest.
func (s *Store) ReadManifest(digest string) (Manifest, error) {
	var m Manifest
	p, err := s.BlobPath(digest)
	if err != nil {
		return m, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

// ReadConfig returns the runtime configuration of a stored image.
func (s *Store) ReadConfig(manifestDigest string) (Config, error) {
	m, err := s.ReadManifest(manifestDigest)
	if err != nil {
		return Config{}, err
	}
	p, err := s.BlobPath(m.Config.Digest)
	if err != nil {
		return Config{}, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return Config{}, err
	}
	var c imageConfig
	return c.Config, json.Unmarshal(data, &c)
}
