package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// State is what a running lab records in its state directory (lab.json),
// so that any later command - `lab status`, `lab down`, a second `lab up`,
// the kubelet daemon - finds everything the lab made.
type State struct {
	// Dir is the state directory (absolute): kubeconfig, PKI, logs,
	// process records, etcd data, pod volumes.
	Dir string `json:"dir"`
	// Root is the lbstack repository.
	Root  string `json:"root"`
	Nodes int    `json:"nodes"`
	// Scenario is the scenario the lab was brought up for.
	Scenario string `json:"scenario"`
	// Assets holds etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler, kubectl, kubelet and kube-proxy.
	Assets string `json:"assets"`
	// LabBinary is the lab CLI, which also runs the registry and the
	// reaper.
	LabBinary string `json:"labBinary"`
	// LbstackBinary is lbstack's binary on this machine (must-gather from
	// the host); the cluster runs lbstack's image.
	LbstackBinary string `json:"lbstackBinary"`
	// DebsDir holds the .debs the FRR and must-gather images are built
	// from.
	DebsDir string `json:"debsDir"`
	// NetnsDirPreexisted and FRRTmpPreexisted record whether /run/netns
	// and /var/tmp/frr existed before the lab, so `down` removes them only
	// if the lab made them.
	NetnsDirPreexisted bool `json:"netnsDirPreexisted"`
	FRRTmpPreexisted   bool `json:"frrTmpPreexisted"`
	// GuardRoutes are the unreachable routes the lab added in the root
	// namespace for its ranges (see guardPrefixes).
	GuardRoutes []string `json:"guardRoutes,omitempty"`
	// Applied is the scenario whose manifests were applied (by `lab up`).
	Applied string `json:"applied,omitempty"`
	// Router is the configuration applied to the router.
	Router RouterConfig `json:"router"`
	// Owner, when set, is the process (a test binary) the lab belongs to:
	// a reaper tears the lab down when it exits, however it exits.
	Owner   *Proc     `json:"owner,omitempty"`
	UpSince time.Time `json:"upSince"`
	// Complete is set once a fresh `up` finished: a lab without it was
	// interrupted while coming up and is rebuilt, not repaired.
	Complete bool `json:"complete"`
}

const stateFile = "lab.json"

// LoadState reads the state of the lab in dir.
func LoadState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no lab in %s (run `make lab`): %w", dir, err)
		}
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return &s, nil
}

func (s *State) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.Dir, stateFile), data, 0o644)
}

func (s *State) runDir() string { return filepath.Join(s.Dir, "run") }
func (s *State) logDir() string { return filepath.Join(s.Dir, "logs") }
func (s *State) pkiDir() string { return filepath.Join(s.Dir, "pki") }
func (s *State) frrDir() string { return filepath.Join(s.Dir, "frr") }
func (s *State) logPath(name string) string {
	return filepath.Join(s.logDir(), name+".log")
}

// Kubeconfig is the admin kubeconfig (system:masters).
func (s *State) Kubeconfig() string { return filepath.Join(s.Dir, "kubeconfig") }

// Kubectl is the kubectl built with the lab's assets.
func (s *State) Kubectl() string { return s.asset("kubectl") }

// RouterFRR is the router's FRR instance.
func (s *State) RouterFRR() *FRR {
	return s.FRR("router", RouterNetns, true)
}

// FRR returns the FRR instance called name in namespace netns (its
// directory, process records and logs are the lab's).
func (s *State) FRR(name, netns string, bfd bool) *FRR {
	full := NetnsPrefix + name
	return &FRR{Name: full, Netns: netns, Dir: filepath.Join(s.frrDir(), full), BFD: bfd, runDir: s.runDir(), logDir: s.logDir()}
}

// RepoRoot finds the lbstack repository by walking up from the working
// directory to the go.mod of module github.com/lbstack/lbstack.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(data)), "module github.com/lbstack/lbstack\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lbstack repository not found above the working directory (use --root)")
		}
		dir = parent
	}
}
