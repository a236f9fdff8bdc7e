package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/test/lab"
)

// frrTestImage is the speaker's default FRR image (FRR_IMAGE).
const frrTestImage = "quay.io/frrouting/frr:8.4.4"

// frrTestDaemons are the daemons the test's FRR runs: bgpd and bfdd (zebra
// and staticd are implied). No TCP vty and no BGP listener, so nothing
// collides with a speaker or test peer on the same node.
const frrTestDaemons = `bgpd=yes
bfdd=yes
ospfd=no
vtysh_enable=yes
zebra_options="  -A 127.0.0.1 -s 90000000 -P 0"
bgpd_options="   -A 127.0.0.1 -p 0 -P 0"
bfdd_options="   -A 127.0.0.1 -P 0"
staticd_options="-P 0"
`

// frrTestConfig has no neighbours: the FRR never sends a packet.
const frrTestConfig = `frr defaults traditional
log stdout
router bgp 64999
 bgp router-id 198.18.0.1
`

// frrPod is the speaker's FRR part (bindata/speaker/40-daemonset.yaml with
// bgpBackend frr): the cp-frr-files init container copies the startup
// config map into the frr-conf emptyDir, and the frr container runs the
// image's entrypoint with both emptyDirs.
func frrPod(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			HostNetwork:                   true,
			ShareProcessNamespace:         ptr.To(true),
			TerminationGracePeriodSeconds: ptr.To(int64(2)),
			InitContainers: []corev1.Container{{
				Name:    "cp-frr-files",
				Image:   frrTestImage,
				Command: []string{"/bin/sh", "-c", "cp -rLf /tmp/frr/* /etc/frr/"},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "frr-startup", MountPath: "/tmp/frr"},
					{Name: "frr-conf", MountPath: "/etc/frr"},
				},
			}},
			Containers: []corev1.Container{{
				Name:    "frr",
				Image:   frrTestImage,
				Command: []string{"/sbin/tini", "--", "/usr/lib/frr/docker-start"},
				Env:     []corev1.EnvVar{{Name: "TINI_SUBREAPER", Value: "true"}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "frr-sockets", MountPath: "/var/run/frr"},
					{Name: "frr-conf", MountPath: "/etc/frr"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "frr-sockets", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "frr-conf", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "frr-startup", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "frr-startup"},
				}}},
			},
		},
	}
}

// TestLabRunsFRRContainers: the lab kubelet runs the FRR image's
// containers for real - the init container's copy, then FRR's daemons in
// the node's network namespace as the frr user, with the pod's volumes as
// /etc/frr and /var/run/frr - so vtysh on the host reaches them through the
// sockets volume; a dying daemon restarts the container, and deleting the
// pod stops every daemon.
func TestLabRunsFRRContainers(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "frr")
	node := lab.NodeName(1)
	frrUser, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("user frr (Debian's frr package): %v", err)
	}
	// The daemons' sockets must land in the pod's volume, never in the
	// host's /run/frr.
	_, err = os.Stat("/run/frr/zebra.vty")
	hostZebraSocket := err == nil

	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "frr-startup"},
		Data: map[string]string{
			"daemons":    frrTestDaemons,
			"frr.conf":   frrTestConfig,
			"vtysh.conf": "service integrated-vtysh-config\n",
		},
	}
	if _, err := l.Kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Kube.CoreV1().Pods(ns).Create(ctx, frrPod("frr", node), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	frrRunning := func(minRestarts int32) func() (bool, string) {
		return func() (bool, string) {
			p, err := l.Kube.CoreV1().Pods(ns).Get(ctx, "frr", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, s := range p.Status.ContainerStatuses {
				if s.Name == "frr" && s.State.Running != nil && s.RestartCount >= minRestarts {
					return p.Status.Phase == corev1.PodRunning, fmt.Sprintf("phase %s", p.Status.Phase)
				}
			}
			return false, fmt.Sprintf("phase %s, init %+v, containers %+v", p.Status.Phase, p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
		}
	}
	eventually(t, 90*time.Second, "FRR pod running", frrRunning(0))

	// The init container copied the config map into the frr-conf
	// emptyDir, which the stand-in handed to the frr user.
	confDir, err := l.State.PodVolumePath(ns, "frr", "frr-conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"daemons", "frr.conf", "vtysh.conf"} {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(confDir, f), &st); err != nil {
			t.Errorf("cp-frr-files did not copy %s: %v", f, err)
		} else if strconv.Itoa(int(st.Uid)) != frrUser.Uid {
			t.Errorf("%s owned by uid %d, want frr (%s)", f, st.Uid, frrUser.Uid)
		}
	}

	sock, err := l.State.PodVolumePath(ns, "frr", "frr-sockets")
	if err != nil {
		t.Fatal(err)
	}
	vtysh := func(cmd string) (string, error) {
		out, err := exec.Command("vtysh", "--vty_socket", sock, "-c", cmd).CombinedOutput()
		return string(out), err
	}
	waitConfig := func() {
		t.Helper()
		eventually(t, 30*time.Second, "vtysh show running-config has the pod's frr.conf", func() (bool, string) {
			out, err := vtysh("show running-config")
			return err == nil && strings.Contains(out, "router bgp 64999") && strings.Contains(out, "bgp router-id 198.18.0.1"), fmt.Sprintf("%v: %s", err, out)
		})
	}
	waitConfig()
	if out, err := vtysh("show bfd peers"); err != nil || !strings.Contains(out, "BFD Peers") {
		t.Errorf("show bfd peers (bfdd up?): %v\n%s", err, out)
	}

	daemons := []string{"zebra", "bgpd", "staticd", "bfdd"}
	ownMountNS, _ := os.Readlink("/proc/self/ns/mnt")
	nodeNS := netnsID(t, node)
	pids := frrDaemonPIDs(t, sock, daemons)
	for d, p := range pids {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID)); exe != "/usr/lib/frr/"+d {
			t.Errorf("%s: pid %d runs %q", d, p.PID, exe)
		}
		if uid := procUID(p.PID); uid != frrUser.Uid {
			t.Errorf("%s: runs as uid %s, want frr (%s)", d, uid, frrUser.Uid)
		}
		if netNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", p.PID)); netNS != nodeNS {
			t.Errorf("%s: network namespace %s, want %s's %s", d, netNS, node, nodeNS)
		}
		if mntNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", p.PID)); mntNS == ownMountNS {
			t.Errorf("%s: shares the host's mount namespace", d)
		}
	}
	if _, err := os.Stat("/run/frr/zebra.vty"); (err == nil) != hostZebraSocket {
		t.Errorf("the host's /run/frr/zebra.vty appeared or vanished (existed before: %v)", hostZebraSocket)
	}
	logs, err := l.State.Logs(ns, "frr", "frr")
	if err != nil || !strings.Contains(logs, "lab frr-container: running: zebra") || !strings.Contains(logs, "bgpd 8.4") {
		t.Errorf("the frr container's log lacks the stand-in's and the daemons' output (%v):\n%s", err, logs)
	}

	// A dying daemon ends the container, as the image's entrypoint
	// would, and the kubelet restarts it: every daemon anew.
	if err := syscall.Kill(pids["bgpd"].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "frr container restarted", frrRunning(1))
	for d, p := range pids {
		waitProcGone(t, d, p)
	}
	waitConfig()
	pids = frrDaemonPIDs(t, sock, daemons)

	// Deleting the pod (with its grace period: SIGTERM first) stops
	// every daemon.
	if err := l.Kube.CoreV1().Pods(ns).Delete(ctx, "frr", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "FRR pod gone", func() (bool, string) {
		_, err := l.Kube.CoreV1().Pods(ns).Get(ctx, "frr", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	for d, p := range pids {
		waitProcGone(t, d, p)
	}
	logs, _ = l.State.Logs(ns, "frr", "frr")
	if !strings.Contains(logs, "terminated: stopping the daemons") {
		t.Errorf("the stand-in did not stop the daemons on SIGTERM; log:\n%s", logs)
	}
}

// frrProc is a daemon's PID and start time (so a recycled PID is never
// taken for it).
type frrProc struct {
	PID   int
	Start string
}

func (p frrProc) alive() bool {
	s, ok := procStart(p.PID)
	return ok && s == p.Start
}

// frrDaemonPIDs waits for each daemon's PID file in the sockets volume and
// a live process behind it.
func frrDaemonPIDs(t testing.TB, sock string, daemons []string) map[string]frrProc {
	t.Helper()
	out := map[string]frrProc{}
	for _, d := range daemons {
		eventually(t, 30*time.Second, d+" PID file", func() (bool, string) {
			data, err := os.ReadFile(filepath.Join(sock, d+".pid"))
			if err != nil {
				return false, err.Error()
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				return false, err.Error()
			}
			start, ok := procStart(pid)
			if !ok {
				return false, fmt.Sprintf("pid %d not running", pid)
			}
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != "/usr/lib/frr/"+d {
				return false, fmt.Sprintf("pid %d runs %q (stale PID file?)", pid, exe)
			}
			out[d] = frrProc{PID: pid, Start: start}
			return true, ""
		})
	}
	return out
}

func waitProcGone(t testing.TB, name string, p frrProc) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%s (pid %d) gone", name, p.PID), func() (bool, string) {
		return !p.alive(), "still running"
	})
}

// procStart is a process's start time (/proc/PID/stat field 22); ok is
// false for a process that is gone or a zombie.
func procStart(pid int) (string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "", false
	}
	return f[19], true
}

// procUID is a process's real UID.
func procUID(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}
