package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ContainerProc returns the running process of a container the lab
// kubelet started (namespace/pod/container), as it recorded it.
func (s *State) ContainerProc(namespace, pod, container string) (Proc, error) {
	name := namespace + "_" + pod + "_" + container
	data, err := os.ReadFile(filepath.Join(s.containerRunDir(), name+".pid"))
	if errors.Is(err, os.ErrNotExist) {
		return Proc{}, fmt.Errorf("container %s/%s/%s: no running process recorded", namespace, pod, container)
	}
	if err != nil {
		return Proc{}, err
	}
	var p Proc
	if err := json.Unmarshal(data, &p); err != nil {
		return Proc{}, fmt.Errorf("container %s/%s/%s: %w", namespace, pod, container, err)
	}
	if !p.Alive() {
		return Proc{}, fmt.Errorf("container %s/%s/%s: recorded pid %d is not running", namespace, pod, container, p.PID)
	}
	return p, nil
}

// Kill sends SIGKILL to the recorded process (its group when it leads
// one), as a crash or the OOM killer would: no graceful shutdown, no BGP
// NOTIFICATION, sockets closed by the kernel.
func (p Proc) Kill() { p.signal(syscall.SIGKILL) }
