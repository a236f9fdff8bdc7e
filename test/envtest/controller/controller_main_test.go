// Package controller_test runs `lbstack controller` (pkg/assigner, in
// process, on a manager per test) against a real kube-apiserver and etcd.
//
// It has its own API server rather than the shared one of test/envtest:
//   - 2,000 LoadBalancer Services need 2,000 ClusterIPs and NodePorts, and
//     envtest's default service range is a /24;
//   - dual-stack Services need a dual-stack API server;
//   - the controller must cope with configurations the webhooks would
//     refuse (objects stored while the webhook was off), so this API server
//     has no admission webhooks.
package controller_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	assigner "github.com/lbstack/lbstack/pkg/assigner"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/test/envtest"
)

const stackNS = envtest.Namespace

var (
	testEnv *crenvtest.Environment
	restCfg *rest.Config
	k8s     client.Client
	sch     *runtime.Scheme
)

func TestMain(m *testing.M) {
	// Tests that need the controller as the process a pod runs (two of
	// them in a rollout) run this binary as `lbstack`.
	envtest.RunCLIIfAsked()
	level := zapcore.ErrorLevel
	if os.Getenv("LBSTACK_TEST_LOG") != "" {
		level = zapcore.DebugLevel
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	if err := startEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "envtest:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := testEnv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "envtest stop:", err)
	}
	os.Exit(code)
}

func startEnv() error {
	root, err := envtest.RepoRoot()
	if err != nil {
		return err
	}
	assets, err := envtest.AssetsDir()
	if err != nil {
		return err
	}
	sch = scheme.New()
	testEnv = &crenvtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                sch,
	}
	api := testEnv.ControlPlane.GetAPIServer()
	api.Configure().Set("service-cluster-ip-range", "10.96.0.0/16,fd00:10:96::/112")
	api.Configure().Set("service-node-port-range", "20000-60000")
	if restCfg, err = testEnv.Start(); err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = -1, 1000
	if k8s, err = client.New(restCfg, client.Options{Scheme: sch}); err != nil {
		return err
	}
	return k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: stackNS}})
}

// writeCounter counts the write requests (POST, PUT, PATCH, DELETE) a
// controller sends to the API server, events and status included: it wraps
// the transport of the controller's rest.Config.
type writeCounter struct {
	mu  sync.Mutex
	log []string
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.mu.Lock()
			w.log = append(w.log, r.Method+" "+r.URL.Path)
			w.mu.Unlock()
		}
		return rt.RoundTrip(r)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (w *writeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

// matching counts the writes of this method whose path contains substr.
func (w *writeCounter) matching(method, substr string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, l := range w.log {
		if m, p, _ := strings.Cut(l, " "); m == method && strings.Contains(p, substr) {
			n++
		}
	}
	return n
}

func (w *writeCounter) since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log[n:])
}

// running is a controller started by startController.
type running struct {
	c      *assigner.Controller
	writes *writeCounter
	stop   func()
}

// startController runs the controller in process on its own manager, as
// `lbstack controller --webhook-mode disabled` does, until stop or the end
// of the test.
func startController(t testing.TB, opts assigner.Options) *running {
	t.Helper()
	return startControllerAs(t, restCfg, opts)
}

// startControllerAs is startController with the API server identity of
// base (an impersonating one, say).
func startControllerAs(t testing.TB, base *rest.Config, opts assigner.Options) *running {
	t.Helper()
	cfg := rest.CopyConfig(base)
	wc := &writeCounter{}
	cfg.Wrap(wc.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 sch,
		Cache:                  assigner.CacheOptions(stackNS),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Namespace = stackNS
	opts.SkipNameValidation = true
	if opts.PoolStatusInterval == 0 {
		opts.PoolStatusInterval = 100 * time.Millisecond
	}
	c, err := assigner.Setup(mgr, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	r := &running{c: c, writes: wc}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("controller stopped with: %v", err)
			}
		})
	}
	t.Cleanup(r.stop)
	return r
}

// --- objects ---------------------------------------------------------------

func mkPool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: name},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
}

func mkSvc(ns, name string, mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Ports:    []corev1.ServicePort{{Name: "web", Protocol: corev1.ProtocolTCP, Port: 80}},
			Selector: map[string]string{"app": name},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func annotate(kv ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func create(t testing.TB, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := k8s.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

var nsSeq atomic.Int32

// newNamespace creates a namespace for one test's Services and deletes
// them at the end (there is no namespace controller to do it).
func newNamespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsSeq.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	t.Cleanup(func() { deleteServices(t, name) })
	return name
}

// deleteServices deletes every Service of ns, 8 at a time.
func deleteServices(t testing.TB, ns string) {
	ctx := context.Background()
	var list corev1.ServiceList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Errorf("list services of %s: %v", ns, err)
		return
	}
	parallel(len(list.Items), 8, func(i int) {
		if err := k8s.Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete service %s: %v", list.Items[i].Name, err)
		}
	})
}

// cleanConfig deletes every metallb.io object and the ConfigurationState,
// now and at the end of the test.
func cleanConfig(t testing.TB) {
	t.Helper()
	clean := func() {
		ctx := context.Background()
		for _, o := range []client.Object{
			&v1beta1.IPAddressPool{}, &v1beta2.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.L2Advertisement{},
			&v1beta1.BFDProfile{}, &v1beta1.Community{}, &v1beta1.MetalLB{}, &v1beta1.ConfigurationState{},
		} {
			if err := k8s.DeleteAllOf(ctx, o, client.InNamespace(stackNS)); err != nil {
				t.Errorf("delete all %T: %v", o, err)
			}
		}
	}
	clean()
	t.Cleanup(clean)
}

func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// --- waiting ---------------------------------------------------------------

const waitTimeout = 20 * time.Second

// eventually retries f until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	eventuallyEvery(t, timeout, 50*time.Millisecond, f)
}

// eventuallyEvery is eventually with a polling interval.
func eventuallyEvery(t testing.TB, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

func getSvc(t testing.TB, ns, name string) *corev1.Service {
	t.Helper()
	var s corev1.Service
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func ingress(s *corev1.Service) []string {
	var out []string
	for _, i := range s.Status.LoadBalancer.Ingress {
		out = append(out, i.IP)
	}
	return out
}

// waitIngress waits until the Service shows exactly ips (in order) and,
// when ips is not empty, pool in its annotation.
func waitIngress(t testing.TB, ns, name, pool string, ips ...string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	eventually(t, waitTimeout, func() error {
		s = getSvc(t, ns, name)
		got, gotPool := ingress(s), s.Annotations[lbservice.AnnotationIPAllocatedFromPool]
		if !slices.Equal(got, ips) || (len(ips) > 0 && gotPool != pool) || (len(ips) == 0 && gotPool != "") {
			return fmt.Errorf("service %s/%s shows %v (pool %q), want %v (pool %q)", ns, name, got, gotPool, ips, pool)
		}
		return nil
	})
	return s
}

// waitAssigned waits until the Service has some address and returns it.
func waitAssigned(t testing.TB, ns, name string) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	eventually(t, waitTimeout, func() error {
		s = getSvc(t, ns, name)
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			return fmt.Errorf("service %s/%s has no address", ns, name)
		}
		return nil
	})
	return s
}

func events(t testing.TB, ns, name string) []corev1.Event {
	t.Helper()
	var list corev1.EventList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns), client.MatchingFields{"involvedObject.name": name}); err != nil {
		t.Fatal(err)
	}
	// Only the controller's own events: the API server records some of its
	// own about Services (its ClusterIP repair loop, for one).
	ours := slices.DeleteFunc(list.Items, func(e corev1.Event) bool {
		return e.Source.Component != "lbstack-controller" && e.ReportingController != "lbstack-controller"
	})
	slices.SortFunc(ours, func(a, b corev1.Event) int { return a.FirstTimestamp.Compare(b.FirstTimestamp.Time) })
	return ours
}

// waitEvent waits for an event of the Service with this reason whose
// message contains every substring, and returns it.
func waitEvent(t testing.TB, ns, name, reason string, substrs ...string) corev1.Event {
	t.Helper()
	var found corev1.Event
	eventually(t, waitTimeout, func() error {
		var seen []string
		for _, e := range events(t, ns, name) {
			if e.Reason != reason {
				seen = append(seen, e.Reason+": "+e.Message)
				continue
			}
			ok := true
			for _, s := range substrs {
				ok = ok && strings.Contains(e.Message, s)
			}
			if ok {
				found = e
				return nil
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return fmt.Errorf("no %s event on %s/%s containing %q; events: %q", reason, ns, name, substrs, seen)
	})
	return found
}

// noEvent fails if the Service has an event with this reason.
func noEvent(t testing.TB, ns, name, reason string) {
	t.Helper()
	for _, e := range events(t, ns, name) {
		if e.Reason == reason {
			t.Errorf("unexpected %s event on %s/%s: %s", reason, ns, name, e.Message)
		}
	}
}

// reconciles is the number of reconciles a controller-runtime controller
// has run in this process (its reconcile_total metric).
func reconciles(t testing.TB, controller string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == controller {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// gauge reads a metric of the controller with the given labels.
func gauge(t testing.TB, name string, labels map[string]string) (float64, error) {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), nil
			}
			return m.GetCounter().GetValue(), nil
		}
	}
	return 0, errors.New("metric " + name + " not found")
}

func configurationState(t testing.TB) *v1beta1.ConfigurationState {
	t.Helper()
	var cs v1beta1.ConfigurationState
	err := k8s.Get(context.Background(), types.NamespacedName{Namespace: stackNS, Name: assigner.ConfigurationStateName}, &cs)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return &cs
}

// waitPoolsSeen waits until the running controller has written the status of
// every named pool, that is until its cache holds them all. Services created
// before that may be placed by a partial view (a lower-priority pool seen
// first keeps the Service, as in MetalLB), which is not what a test that
// creates pools, then Services, means to check.
func waitPoolsSeen(t testing.TB, names ...string) {
	t.Helper()
	eventually(t, waitTimeout, func() error {
		for _, n := range names {
			st := poolStatus(t, n)
			if st.AvailableIPv4+st.AvailableIPv6+st.AssignedIPv4+st.AssignedIPv6 == 0 {
				return fmt.Errorf("the controller has not written the status of pool %q yet", n)
			}
		}
		return nil
	})
}

func poolStatus(t testing.TB, name string) v1beta1.IPAddressPoolStatus {
	t.Helper()
	var p v1beta1.IPAddressPool
	if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: stackNS, Name: name}, &p); err != nil {
		t.Fatal(err)
	}
	return p.Status
}
