package lab

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/lbstack/lbstack/pkg/render"

	"github.com/lbstack/lbstack/test/lab/oci"
)

const procRegistry = "lab-registry"

// ImageStore is the lab registry's content: every image the lab built.
func (s *State) ImageStore() *oci.Store { return &oci.Store{Dir: filepath.Join(s.Dir, "registry")} }

// ImageSources are where the lab's images are built from.
func (s *State) ImageSources() ImageSources {
	root := s.Root
	return ImageSources{Root: root, Bin: filepath.Join(root, "bin", "images"), Debs: s.DebsDir, FRRDebs: newestFRRDebsDir(filepath.Join(root, "bin"))}
}

// buildImages builds every image into the registry's store.
func (s *State) buildImages() error {
	return BuildImages(s.ImageStore(), s.ImageSources())
}

func (s *State) registryDaemon() daemon {
	return daemon{
		Name: procRegistry,
		Argv: []string{s.LabBinary, "registry", "--state", s.Dir},
		Log:  s.logPath(procRegistry),
	}
}

// startRegistry starts the lab registry and waits until it answers.
func (s *State) startRegistry() error {
	p, err := startDaemon(s.runDir(), s.registryDaemon())
	if err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + RegistryHost + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !p.Alive() {
			return fmt.Errorf("the lab registry exited; end of %s:\n%s", s.logPath(procRegistry), tailFile(s.logPath(procRegistry), 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the lab registry does not answer on %s: %v", RegistryHost, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ServeRegistry serves the store of the lab in stateDir on RegistryHost
// until ctx ends (`lab registry`, started by `lab up`).
func ServeRegistry(ctx context.Context, stateDir string) error {
	st, err := LoadState(stateDir)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", RegistryHost)
	if err != nil {
		return fmt.Errorf("lab registry: %w", err)
	}
	srv := &http.Server{
		Handler:           &oci.Registry{Store: st.ImageStore(), Log: log.New(os.Stdout, "", log.LstdFlags|log.Lmicroseconds)},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	fmt.Printf("lab registry serving %s on http://%s\n", st.ImageStore().Dir, RegistryHost)
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// PushLbstackImage builds lbstack as the Dockerfile does (static, trimmed)
// with version as its version string, lays it into lbstack's image and
// serves it as ref, with FRR's image beside it (the operator derives the
// FRR image's name from its own): a second release for upgrade tests.
func (s *State) PushLbstackImage(ctx context.Context, ref, version string) error {
	bin := filepath.Join(s.Dir, "images", "lbstack-"+version)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/lbstack/lbstack/pkg/version.Version="+version, "-o", bin, ".")
	cmd.Dir = s.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build lbstack %s: %w\n%s", version, err, out)
	}
	img, err := LbstackImageOf(bin)
	if err != nil {
		return err
	}
	store := s.ImageStore()
	if _, err := store.Put(img, ref); err != nil {
		return err
	}
	name, tag, _ := oci.SplitRef(FRRImage)
	frr, err := store.Resolve(name, tag)
	if err != nil {
		return fmt.Errorf("FRR's image beside %s: %w", ref, err)
	}
	return store.Tag(render.Companion(ref, "frr"), frr)
}
