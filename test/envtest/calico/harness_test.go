package calico_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/controllers"
	"github.com/lbstack/lbstack/pkg/assigner"
	calicoreconciler "github.com/lbstack/lbstack/pkg/calico/reconciler"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
	"github.com/lbstack/lbstack/test/envtest"
)

const (
	ns      = envtest.Namespace
	appNS   = "calico-apps"
	timeout = 30 * time.Second
)

// stack is an API server with Calico's CRDs, lbstack's webhooks live, and
// the Calico coordinator running in a manager configured as `lbstack
// operator` configures it (its cache options, its API detection); the
// address assigner runs beside it when asked.
type stack struct {
	env    *envtest.Env
	c      client.Client
	r      *calicoreconciler.Reconciler
	writes *writeCounter
}

func TestMain(m *testing.M) {
	level := zapcore.ErrorLevel
	if os.Getenv("LBSTACK_TEST_LOG") != "" {
		level = zapcore.DebugLevel
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(level)))
	os.Exit(m.Run())
}

func startStack(t *testing.T, withAssigner bool) *stack {
	t.Helper()
	env := envtest.StartWith(t, envtest.Options{ExtraCRDDirs: []string{"test/crds/calico"}})
	if err := calicoreconciler.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	if err := srreconciler.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	s := &stack{env: env, c: env.Client, writes: &writeCounter{}}
	apis := detect(t, env.Config)
	if !apis.CRDs || apis.V3 {
		t.Fatalf("Calico APIs detected %+v, want the v1 CRDs only", apis)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Wrap(s.writes.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.OperatorCacheOptionsWithCalico(ns, srreconciler.APIs{}, apis),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.r = &calicoreconciler.Reconciler{Client: mgr.GetClient(), Namespace: ns,
		Recorder: mgr.GetEventRecorderFor("lbstack-calico"), APIs: apis}
	if err := s.r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	runManager(t, mgr)
	if withAssigner {
		amgr, err := ctrl.NewManager(env.Config, ctrl.Options{
			Scheme:                 env.Scheme,
			Cache:                  assigner.CacheOptions(ns),
			Metrics:                metricsserver.Options{BindAddress: "0"},
			HealthProbeBindAddress: "0",
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := assigner.Setup(amgr, assigner.Options{Namespace: ns, SkipNameValidation: true, PoolStatusInterval: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		runManager(t, amgr)
	}
	if err := s.c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func runManager(t *testing.T, mgr ctrl.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
}

func detect(t *testing.T, cfg *rest.Config) calicoreconciler.APIs {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	apis, err := calicoreconciler.DetectAPIs(mapper)
	if err != nil {
		t.Fatal(err)
	}
	return apis
}

// writeCounter records the write requests (anything but GET and HEAD) of
// the coordinator's manager.
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

func (w *writeCounter) since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log[n:])
}

func (w *writeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// applyScenarioFile creates the objects of one file of the calico-bgp
// scenario as a user would (Services in appNS), returns them.
func (s *stack) applyScenarioFile(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	dir, err := envtest.ScenariosDir()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "calico-bgp", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := envtest.SplitYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d.Text), &u.Object); err != nil {
			t.Fatalf("calico-bgp/%s: %v", file, err)
		}
		if u.GetKind() == "Service" {
			u.SetNamespace(appNS)
		}
		// The user's field manager, as kubectl create would name it.
		if err := s.c.Create(context.Background(), u, client.FieldOwner("kubectl-create")); err != nil {
			t.Fatalf("create %s %s from calico-bgp/%s: %v", u.GetKind(), u.GetName(), file, err)
		}
		out = append(out, u)
	}
	return out
}

func (s *stack) bgpConfiguration(t *testing.T) *calicov1.BGPConfiguration {
	t.Helper()
	var bc calicov1.BGPConfiguration
	if err := s.c.Get(context.Background(), client.ObjectKey{Name: calicov1.DefaultBGPConfigurationName}, &bc); err != nil {
		t.Fatal(err)
	}
	return &bc
}

func (s *stack) metalLB(t *testing.T) *v1beta1.MetalLB {
	t.Helper()
	var ml v1beta1.MetalLB
	if err := s.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "metallb"}, &ml); err != nil {
		t.Fatal(err)
	}
	return &ml
}

// waitCondition waits for the MetalLB object's CalicoConsistent condition
// to satisfy ok; nil is passed while there is none.
func (s *stack) waitCondition(t *testing.T, what string, ok func(*metav1.Condition) bool) *metav1.Condition {
	t.Helper()
	var last *metav1.Condition
	waitFor(t, what, func() bool {
		last = meta.FindStatusCondition(s.metalLB(t).Status.Conditions, calicoreconciler.ConditionCalicoConsistent)
		return ok(last)
	}, func() string { return toJSON(last) })
	return last
}

// events are the events on the MetalLB object, by reason.
func (s *stack) events(t *testing.T) map[string][]string {
	t.Helper()
	var list corev1.EventList
	if err := s.c.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "MetalLB" && e.InvolvedObject.Name == "metallb" {
			out[e.Reason] = append(out[e.Reason], e.Message)
		}
	}
	return out
}

// reconcile runs the coordinator once by hand. The running controller may
// write the MetalLB status at the same moment: an optimistic-lock conflict
// is retried, as the work queue would.
func (s *stack) reconcile(t *testing.T) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		_, err := s.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "calico"}})
		switch {
		case err == nil:
			return
		case apierrors.IsConflict(err) && attempt < 5:
			time.Sleep(100 * time.Millisecond)
		default:
			t.Fatalf("reconcile: %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last state: %s", what, state())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ingress is the Service's first ingress IP, "" without one.
func (s *stack) ingress(t *testing.T, name string) string {
	t.Helper()
	var svc corev1.Service
	if err := s.c.Get(context.Background(), types.NamespacedName{Namespace: appNS, Name: name}, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			return ""
		}
		t.Fatal(err)
	}
	var ips []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		ips = append(ips, in.IP)
	}
	return strings.Join(ips, ",")
}

// setBackend sets the MetalLB object's spec.bgpBackend.
func (s *stack) setBackend(t *testing.T, b v1beta1.BGPType) {
	t.Helper()
	ml := s.metalLB(t)
	patch := client.MergeFrom(ml.DeepCopy())
	ml.Spec.BGPType = b
	if err := s.c.Patch(context.Background(), ml, patch); err != nil {
		t.Fatalf("MetalLB spec.bgpBackend %s: %v", b, err)
	}
}
