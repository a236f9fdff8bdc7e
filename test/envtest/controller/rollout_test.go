package controller_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/test/envtest"
)

// renderedControllerArgs are the arguments of the controller container as
// the operator renders it, with the pod's environment filled in and the
// ports moved off the fixed ones (two controllers share this host).
func renderedControllerArgs(t *testing.T) []string {
	t.Helper()
	objs, err := render.Render(bindata.FS, render.Params{Namespace: stackNS, OwnerName: "metallb", LogLevel: "info", BGPBackend: "frr",
		MemberlistSecretKey: "a2V5", Images: render.Images{Controller: "x", Speaker: "x", FRR: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != "lbstack-controller" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			a = strings.ReplaceAll(a, "$(METALLB_NAMESPACE)", stackNS)
			switch {
			case strings.HasPrefix(a, "--port="):
				a = "--port=0"
			case strings.HasPrefix(a, "--health-probe-bind-address="):
				a = "--health-probe-bind-address=127.0.0.1:0"
			}
			out = append(out, a)
		}
		return out
	}
	t.Fatal("no controller Deployment rendered")
	return nil
}

// controllerProcess is `lbstack controller` as a process of its own, the
// way a pod runs it.
type controllerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func startControllerProcess(t *testing.T, name string, args []string) *controllerProcess {
	t.Helper()
	p := &controllerProcess{cmd: envtest.CLICommand(t, nil, args...), done: make(chan struct{}), log: filepath.Join(t.TempDir(), name+".log")}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			out, _ := os.ReadFile(p.log)
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			t.Logf("---- %s ----\n%s", name, out)
		}
	})
	return p
}

// stop sends SIGTERM, as the kubelet does to a pod being replaced.
func (p *controllerProcess) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Error("the controller did not stop within 30 s of SIGTERM")
	}
}

// TestRolloutNeverGivesAnAddressTwice replays a controller upgrade under
// allocation load: the old controller runs, the new one starts beside it
// (a RollingUpdate keeps the old pod until the new one is ready), the old
// one gets SIGTERM, while Services are created and deleted in bursts. Both
// run exactly as the rendered Deployment says, as the rendered service
// account. A watch on every Service checks, at every change, that no
// address is held by two Services. (Before, the controller had no leader
// election: both allocated at once.)
func TestRolloutNeverGivesAnAddressTwice(t *testing.T) {
	cleanConfig(t)
	ctx := context.Background()
	ns := newNamespace(t, nil)
	args := append(renderedControllerArgs(t), "--kubeconfig", envtest.WriteKubeconfig(t, installControllerRBAC(t)))
	if !slices.Contains(args, "--leader-elect") {
		t.Log("the rendered controller does not elect a leader")
	}
	create(t, mkPool("rollout", "203.0.113.0/24"))

	// The watcher: every Service's addresses as of each event, in the API
	// server's order.
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().Services(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var mu sync.Mutex
	held := map[string][]string{} // Service → addresses
	var collisions []string
	changes := 0
	go func() {
		for ev := range w.ResultChan() {
			svc, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			mu.Lock()
			if ev.Type == watch.Deleted {
				delete(held, svc.Name)
			} else {
				ips := ingress(svc)
				if !slices.Equal(held[svc.Name], ips) {
					changes++
				}
				held[svc.Name] = ips
				for other, theirs := range held {
					if other == svc.Name {
						continue
					}
					for _, ip := range ips {
						if slices.Contains(theirs, ip) {
							collisions = append(collisions, fmt.Sprintf("%s held by %s and %s (resourceVersion %s)", ip, other, svc.Name, svc.ResourceVersion))
						}
					}
				}
			}
			mu.Unlock()
		}
	}()

	old := startControllerProcess(t, "old", args)
	rng := rand.New(rand.NewSource(1))
	var alive []string
	seq := 0
	burst := func(n int) {
		var wg sync.WaitGroup
		for range n {
			seq++
			name := fmt.Sprintf("s%03d", seq)
			alive = append(alive, name)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := k8s.Create(ctx, mkSvc(ns, name)); err != nil {
					t.Error(err)
				}
			}()
		}
		// Free some addresses so that both allocators have holes to fill.
		for range n / 3 {
			i := rng.Intn(len(alive))
			name := alive[i]
			alive = slices.Delete(alive, i, i+1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = k8s.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
			}()
		}
		wg.Wait()
	}
	for range 5 {
		burst(12)
		time.Sleep(200 * time.Millisecond)
	}
	// The rollout: the new controller beside the old one, under load.
	startControllerProcess(t, "new", args)
	for range 10 {
		burst(12)
		time.Sleep(300 * time.Millisecond)
	}
	old.stop(t)
	for range 5 {
		burst(12)
		time.Sleep(200 * time.Millisecond)
	}

	// Every Service still there ends with an address (the pool has room
	// for all of them), from the new controller alone.
	eventually(t, 60*time.Second, func() error {
		var list corev1.ServiceList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if len(ingress(&s)) != 1 {
				return fmt.Errorf("%s has %v", s.Name, ingress(&s))
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d Services created, %d alive, %d address changes watched", seq, len(alive), changes)
	if len(collisions) > 0 {
		t.Fatalf("%d times an address was held by two Services, first: %s", len(collisions), strings.Join(collisions[:min(5, len(collisions))], "; "))
	}
}
