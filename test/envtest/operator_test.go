package envtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/controllers"
	"github.com/lbstack/lbstack/pkg/bundle"
	"github.com/lbstack/lbstack/pkg/render"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
	"github.com/lbstack/lbstack/test/envtest"
)

// writeCounter counts every write request the reconciler's client makes.
type writeCounter struct {
	mu  sync.Mutex
	log []string
}

func (w *writeCounter) add(verb string, obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, fmt.Sprintf("%s %T %s", verb, obj, obj.GetName()))
}

func (w *writeCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.log)
}

func (w *writeCounter) since(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log[n:]...)
}

func (w *writeCounter) client(c client.WithWatch) client.Client {
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			w.add("create", o)
			return c.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			w.add("update", o)
			return c.Update(ctx, o, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, o client.Object, p client.Patch, opts ...client.PatchOption) error {
			w.add("patch", o)
			return c.Patch(ctx, o, p, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
			w.add("delete", o)
			return c.Delete(ctx, o, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteAllOfOption) error {
			w.add("deleteallof", o)
			return c.DeleteAllOf(ctx, o, opts...)
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, o client.Object, s client.Object, opts ...client.SubResourceCreateOption) error {
			w.add("create/"+sub, o)
			return c.SubResource(sub).Create(ctx, o, s, opts...)
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, o client.Object, opts ...client.SubResourceUpdateOption) error {
			w.add("update/"+sub, o)
			return c.SubResource(sub).Update(ctx, o, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
			w.add("patch/"+sub, o)
			return c.SubResource(sub).Patch(ctx, o, p, opts...)
		},
	})
}

var testImages = render.Images{
	Controller: "registry.local:5000/lbstack:v1",
	Speaker:    "registry.local:5000/lbstack:v1",
	FRR:        "registry.local:5000/frr:8.4.4",
}

// operatorHarness runs the MetalLB reconciler in a manager against the
// shared API server, its writes counted.
type operatorHarness struct {
	t      *testing.T
	r      *controllers.MetalLBReconciler
	writes *writeCounter
}

func startOperator(t *testing.T) *operatorHarness {
	t.Helper()
	return startOperatorAs(t, env.Config)
}

func startOperatorAs(t *testing.T, cfg *rest.Config) *operatorHarness {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controllers.OperatorCacheOptions(envtest.Namespace, srreconciler.APIs{}),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	w := &writeCounter{}
	c, ok := mgr.GetClient().(client.WithWatch)
	if !ok {
		// The manager's client does not watch; wrap one that does, reading
		// through the same cache.
		cw, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme, Cache: &client.CacheOptions{Reader: mgr.GetCache()}})
		if err != nil {
			t.Fatal(err)
		}
		c = cw
	}
	r := &controllers.MetalLBReconciler{
		Client: w.client(c), APIReader: mgr.GetAPIReader(), Scheme: env.Scheme,
		Namespace: envtest.Namespace, Images: testImages,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return &operatorHarness{t: t, r: r, writes: w}
}

// quiesce waits until the running controller stops writing, then reconciles
// once more by hand and fails if that reconcile writes anything.
func (h *operatorHarness) quiesce() {
	h.t.Helper()
	last, stableSince := h.writes.count(), time.Now()
	deadline := time.Now().Add(60 * time.Second)
	for time.Since(stableSince) < 2*time.Second {
		if time.Now().After(deadline) {
			h.t.Fatalf("the operator keeps writing: %v", h.writes.since(max(0, h.writes.count()-10)))
		}
		time.Sleep(200 * time.Millisecond)
		if n := h.writes.count(); n != last {
			last, stableSince = n, time.Now()
		}
	}
	before := h.writes.count()
	if _, err := h.r.Reconcile(context.Background(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: envtest.Namespace, Name: "metallb"}}); err != nil {
		h.t.Fatalf("reconcile: %v", err)
	}
	if w := h.writes.since(before); len(w) != 0 {
		h.t.Fatalf("a reconcile with nothing to change wrote %d times: %v", len(w), w)
	}
}

// expected lists the objects rendered for ml (kind/name keys).
func expected(t *testing.T, ml *v1beta1.MetalLB) []*unstructured.Unstructured {
	t.Helper()
	objs, err := render.Render(bindata.FS, controllers.ParamsFor(ml, testImages, false, false, "x"))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func objID(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

func getLive(o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(o.GroupVersionKind())
	err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(o), u)
	return u, err
}

// resourceVersions reads every object rendered for ml (and any ConfigMap
// the frr layout renders) and returns kind/name → resourceVersion.
func resourceVersions(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		u, err := getLive(o)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[objID(o)] = u.GetResourceVersion()
	}
	return out
}

func changed(a, b map[string]string) []string {
	var out []string
	for k, v := range b {
		if a[k] != v {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var reasonPattern = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

func updateMetalLB(t *testing.T, mutate func(*v1beta1.MetalLB)) {
	t.Helper()
	eventually(t, "update the MetalLB object", func() error {
		var ml v1beta1.MetalLB
		if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: envtest.Namespace, Name: "metallb"}, &ml); err != nil {
			return err
		}
		mutate(&ml)
		return env.Client.Update(context.Background(), &ml)
	})
}

func currentMetalLB(t *testing.T) *v1beta1.MetalLB {
	t.Helper()
	var ml v1beta1.MetalLB
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: envtest.Namespace, Name: "metallb"}, &ml); err != nil {
		t.Fatal(err)
	}
	return &ml
}

// TestOperator drives the MetalLB reconciler against the real API server
// (with the live admission webhooks): create, change, drift, delete.
func TestOperator(t *testing.T) {
	ctx := context.Background()
	cleanMetalLBObjects(t)
	h := startOperator(t)

	ml := &v1beta1.MetalLB{
		ObjectMeta: metav1.ObjectMeta{Name: "metallb", Namespace: envtest.Namespace},
		Spec:       v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeNative},
	}
	if err := env.Client.Create(ctx, ml); err != nil {
		t.Fatal(err)
	}
	owner := render.OwnerLabelValue(envtest.Namespace, "metallb")
	t.Cleanup(func() {
		// Whatever happened, leave no finalizer and no rendered object behind.
		var cur v1beta1.MetalLB
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &cur); err == nil {
			cur.Finalizers = nil
			_ = env.Client.Update(ctx, &cur)
			_ = env.Client.Delete(ctx, &cur)
		}
		cleanRendered(ctx)
	})

	want := expected(t, ml)
	eventually(t, "every rendered object exists", func() error {
		for _, o := range want {
			if _, err := getLive(o); err != nil {
				return fmt.Errorf("%s: %w", objID(o), err)
			}
		}
		return nil
	})
	ml = currentMetalLB(t)
	if len(want) < 12 {
		t.Fatalf("only %d objects rendered", len(want))
	}
	for _, o := range want {
		live, _ := getLive(o)
		refs := live.GetOwnerReferences()
		if o.GetNamespace() == "" {
			if len(refs) != 0 || live.GetLabels()[render.OwnerLabel] != owner {
				t.Errorf("cluster-scoped %s: owner refs %v, labels %v", objID(o), refs, live.GetLabels())
			}
			continue
		}
		if len(refs) != 1 || refs[0].UID != ml.UID || refs[0].Kind != "MetalLB" || refs[0].Controller == nil || !*refs[0].Controller {
			t.Errorf("%s owner references = %+v, want the MetalLB object as controller", objID(o), refs)
		}
	}
	var ds appsv1.DaemonSet
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-speaker"}, &ds); err != nil {
		t.Fatal(err)
	}
	if got := ds.Spec.Template.Spec.Containers[0].Image; got != testImages.Speaker {
		t.Errorf("speaker image %q", got)
	}
	if !controllerutilContains(ml.Finalizers, controllers.Finalizer) {
		t.Errorf("finalizers %v", ml.Finalizers)
	}

	t.Run("status", func(t *testing.T) {
		eventually(t, "conditions", func() error {
			ml := currentMetalLB(t)
			if len(ml.Status.Conditions) != 4 {
				return fmt.Errorf("conditions %v", ml.Status.Conditions)
			}
			return nil
		})
		for _, c := range currentMetalLB(t).Status.Conditions {
			if !reasonPattern.MatchString(c.Reason) || c.Message == "" {
				t.Errorf("condition %s: reason %q message %q", c.Type, c.Reason, c.Message)
			}
		}
		if c := meta.FindStatusCondition(currentMetalLB(t).Status.Conditions, v1beta1.ConditionAvailable); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "controller Deployment lbstack-controller") {
			t.Errorf("Available = %+v (no pods run in envtest)", c)
		}
	})

	t.Run("second reconcile writes nothing", func(t *testing.T) { h.quiesce() })

	step := func(name string, mutate func(*v1beta1.MetalLB), wantChanged []string) {
		t.Run(name, func(t *testing.T) {
			h.quiesce()
			cur := currentMetalLB(t)
			all := append(expected(t, cur), frrObjects(t, cur)...)
			before := resourceVersions(t, all)
			updateMetalLB(t, mutate)
			after := currentMetalLB(t)
			eventually(t, "rendered objects follow the spec", func() error {
				for _, o := range expected(t, after) {
					live, err := getLive(o)
					if err != nil {
						return err
					}
					if live.GetAnnotations()[controllers.HashAnnotation] == "" {
						return fmt.Errorf("%s has no hash", objID(o))
					}
				}
				return nil
			})
			h.quiesce()
			got := changed(before, resourceVersions(t, all))
			if strings.Join(got, ",") != strings.Join(wantChanged, ",") {
				t.Errorf("changed objects = %v, want %v", got, wantChanged)
			}
		})
	}
	step("nodeSelector", func(m *v1beta1.MetalLB) { m.Spec.NodeSelector = map[string]string{"lb": "yes"} }, []string{"DaemonSet/lbstack-speaker"})
	var d appsv1.DaemonSet
	_ = env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-speaker"}, &d)
	if d.Spec.Template.Spec.NodeSelector["lb"] != "yes" {
		t.Errorf("speaker nodeSelector %v", d.Spec.Template.Spec.NodeSelector)
	}
	step("logLevel", func(m *v1beta1.MetalLB) { m.Spec.LogLevel = v1beta1.LogLevelDebug }, []string{"DaemonSet/lbstack-speaker", "Deployment/lbstack-controller"})
	step("bgpBackend frr", func(m *v1beta1.MetalLB) { m.Spec.BGPType = v1beta1.BGPTypeFRR }, []string{"ConfigMap/lbstack-frr-startup", "DaemonSet/lbstack-speaker"})
	_ = env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-speaker"}, &d)
	if n := len(d.Spec.Template.Spec.Containers); n != 3 {
		t.Errorf("frr speaker has %d containers, want speaker, frr, reloader", n)
	}
	step("bgpBackend native prunes the FRR objects", func(m *v1beta1.MetalLB) { m.Spec.BGPType = v1beta1.BGPTypeNative }, []string{"ConfigMap/lbstack-frr-startup", "DaemonSet/lbstack-speaker"})
	if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-frr-startup"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the FRR startup ConfigMap survived the switch to native: %v", err)
	}

	t.Run("drift is repaired", func(t *testing.T) {
		h.quiesce()
		// Deleted DaemonSet comes back.
		old := &appsv1.DaemonSet{}
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-speaker"}, old); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(ctx, old); err != nil {
			t.Fatal(err)
		}
		eventually(t, "DaemonSet restored", func() error {
			var cur appsv1.DaemonSet
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), &cur); err != nil {
				return err
			}
			if cur.UID == old.UID {
				return fmt.Errorf("still the old object")
			}
			return nil
		})
		// Edited controller args are put back.
		var dep appsv1.Deployment
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-controller"}, &dep); err != nil {
			t.Fatal(err)
		}
		wantArgs := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
		dep.Spec.Template.Spec.Containers[0].Args = []string{"controller", "--log-level=none"}
		if err := env.Client.Update(ctx, &dep); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Deployment args restored", func() error {
			var cur appsv1.Deployment
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(&dep), &cur); err != nil {
				return err
			}
			if got := strings.Join(cur.Spec.Template.Spec.Containers[0].Args, " "); got != wantArgs {
				return fmt.Errorf("args %q", got)
			}
			return nil
		})
		// A deleted cluster-scoped object comes back too.
		if err := env.Client.Delete(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "lbstack-speaker"}}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ClusterRole restored", func() error {
			return env.Client.Get(ctx, types.NamespacedName{Name: "lbstack-speaker"}, &rbacv1.ClusterRole{})
		})
		h.quiesce()
	})

	t.Run("status follows the rollout", func(t *testing.T) {
		h.quiesce()
		before := meta.FindStatusCondition(currentMetalLB(t).Status.Conditions, v1beta1.ConditionDegraded).LastTransitionTime
		var dep appsv1.Deployment
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-controller"}, &dep); err != nil {
			t.Fatal(err)
		}
		dep.Status = appsv1.DeploymentStatus{ObservedGeneration: dep.Generation, Replicas: 1, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
		if err := env.Client.Status().Update(ctx, &dep); err != nil {
			t.Fatal(err)
		}
		var ds appsv1.DaemonSet
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-speaker"}, &ds); err != nil {
			t.Fatal(err)
		}
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2, UpdatedNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2}
		if err := env.Client.Status().Update(ctx, &ds); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Available=True", func() error {
			c := currentMetalLB(t).Status.Conditions
			if !meta.IsStatusConditionTrue(c, v1beta1.ConditionAvailable) || !meta.IsStatusConditionFalse(c, v1beta1.ConditionProgressing) || !meta.IsStatusConditionTrue(c, v1beta1.ConditionUpgradeable) {
				return fmt.Errorf("conditions %+v", c)
			}
			return nil
		})
		if after := meta.FindStatusCondition(currentMetalLB(t).Status.Conditions, v1beta1.ConditionDegraded).LastTransitionTime; !after.Equal(&before) {
			t.Errorf("Degraded did not change status but its lastTransitionTime moved: %v → %v", before, after)
		}
		h.quiesce()
		// No node selected: Available=False with a reason saying so.
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(&ds), &ds); err != nil {
			t.Fatal(err)
		}
		ds.Status = appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation}
		if err := env.Client.Status().Update(ctx, &ds); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Available=False NoSpeakerNodes", func() error {
			c := meta.FindStatusCondition(currentMetalLB(t).Status.Conditions, v1beta1.ConditionAvailable)
			if c.Status != metav1.ConditionFalse || c.Reason != "NoSpeakerNodes" || !strings.Contains(c.Message, "spec.nodeSelector") {
				return fmt.Errorf("Available %+v", c)
			}
			return nil
		})
	})

	t.Run("a second MetalLB is refused", func(t *testing.T) {
		// The rules themselves are TestOneMetalLBPerCluster's; here: still
		// true with the operator running.
		err := env.Client.Create(ctx, &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: envtest.Namespace}})
		if err == nil || !strings.Contains(err.Error(), "metallb-system/metallb already does") {
			t.Errorf("second MetalLB: %v", err)
		}
	})

	t.Run("deleting the MetalLB object removes what it created", func(t *testing.T) {
		cur := currentMetalLB(t)
		objs := expected(t, cur)
		if err := env.Client.Delete(ctx, cur); err != nil {
			t.Fatal(err)
		}
		eventually(t, "MetalLB object gone (finalizer released)", func() error {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(cur), &v1beta1.MetalLB{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("still there: %v", err)
		})
		// The operator deletes every object it rendered itself, whoever
		// owns it (the operator's Deployment may, in a cluster), not
		// leaving the namespaced ones to the garbage collector (which
		// envtest does not run).
		for _, o := range objs {
			if _, err := getLive(o); !apierrors.IsNotFound(err) {
				t.Errorf("%s survived the MetalLB object's deletion: %v", objID(o), err)
			}
		}
	})
}

// cleanRendered deletes every object rendered for metallb-system/metallb
// (envtest has no garbage collector).
func cleanRendered(ctx context.Context) {
	owner := client.MatchingLabels{render.OwnerLabel: render.OwnerLabelValue(envtest.Namespace, "metallb")}
	for _, o := range []client.Object{&appsv1.Deployment{}, &appsv1.DaemonSet{}, &corev1.ServiceAccount{}, &corev1.Secret{},
		&corev1.ConfigMap{}, &corev1.Service{}, &rbacv1.Role{}, &rbacv1.RoleBinding{}, &networkingv1.NetworkPolicy{}} {
		_ = env.Client.DeleteAllOf(ctx, o, client.InNamespace(envtest.Namespace), owner)
	}
	for _, o := range []client.Object{&rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{}} {
		_ = env.Client.DeleteAllOf(ctx, o, owner)
	}
}

func frrObjects(t *testing.T, ml *v1beta1.MetalLB) []*unstructured.Unstructured {
	cp := ml.DeepCopy()
	cp.Spec.BGPType = v1beta1.BGPTypeFRR
	var out []*unstructured.Unstructured
	for _, o := range expected(t, cp) {
		if o.GetKind() == "ConfigMap" {
			out = append(out, o)
		}
	}
	return out
}

func controllerutilContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSamplesApply creates config/samples (one object of every metallb.io
// kind) through the live admission webhooks: all of them are valid.
func TestSamplesApply(t *testing.T) {
	ctx := context.Background()
	cleanMetalLBObjects(t)
	t.Cleanup(func() { cleanMetalLBObjects(t) })
	objs, err := bundle.Kustomize(filepath.Join(env.Root, "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Errorf("sample %s %s refused: %v", o.GetKind(), o.GetName(), err)
		}
		if o.GetNamespace() == "" {
			// Cluster-scoped (SymmetricRouting): not in the stack's
			// namespace, so cleanMetalLBObjects does not see it.
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), o) })
		}
		kinds[o.GetKind()] = true
	}
	for _, k := range []string{"MetalLB", "IPAddressPool", "BGPPeer", "BGPAdvertisement", "L2Advertisement", "BFDProfile", "Community", "SymmetricRouting"} {
		if !kinds[k] {
			t.Errorf("config/samples has no %s", k)
		}
	}
}

// TestOperatorRBAC runs the reconciler as the operator's service account
// with the RBAC of config/ (generated from the markers in controllers/): the
// API server's escalation check refuses to create a Role or ClusterRole
// granting anything the operator does not hold, so a missing permission
// shows up as a Degraded=ApplyFailed MetalLB.
func TestOperatorRBAC(t *testing.T) {
	ctx := context.Background()
	cleanMetalLBObjects(t)
	objs, err := bundle.Kustomize(filepath.Join(env.Root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	sa := ""
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if o.GetKind() == "ServiceAccount" {
			sa = o.GetName()
		}
		o := o
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		t.Cleanup(func() { _ = env.Client.Delete(ctx, o) })
	}
	// Writes to cluster-scoped objects are limited to the operator's own
	// (issue 17: it could patch every webhook configuration and CRD and
	// rewrite or delete every ClusterRole).
	user := "system:serviceaccount:" + envtest.Namespace + ":" + sa
	for _, c := range []struct {
		group, resource, name, verb string
		want                        bool
	}{
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "lbstack-validating-webhook-configuration", "patch", true},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "someone-elses-webhook", "patch", false},
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "someone-elses-webhook", "update", false},
		{"apiextensions.k8s.io", "customresourcedefinitions", "bgppeers.metallb.io", "patch", true},
		{"apiextensions.k8s.io", "customresourcedefinitions", "ipaddresspools.metallb.io", "patch", false},
		{"apiextensions.k8s.io", "customresourcedefinitions", "certificates.cert-manager.io", "update", false},
		{"rbac.authorization.k8s.io", "clusterroles", "lbstack-speaker", "patch", true},
		{"rbac.authorization.k8s.io", "clusterroles", "lbstack-controller", "delete", true},
		{"rbac.authorization.k8s.io", "clusterroles", "cluster-admin", "patch", false},
		{"rbac.authorization.k8s.io", "clusterroles", "cluster-admin", "delete", false},
		{"rbac.authorization.k8s.io", "clusterrolebindings", "cluster-admin", "update", false},
		{"rbac.authorization.k8s.io", "clusterrolebindings", "lbstack-speaker", "update", true},
	} {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + envtest.Namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Group: c.group, Resource: c.resource, Name: c.name, Verb: c.verb},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != c.want {
			t.Errorf("operator may %s %s %q: %v, want %v", c.verb, c.resource, c.name, sar.Status.Allowed, c.want)
		}
	}

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	h := startOperatorAs(t, cfg)

	ml := &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Name: "metallb", Namespace: envtest.Namespace}, Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeFRR}}
	if err := env.Client.Create(ctx, ml); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var cur v1beta1.MetalLB
		if env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &cur) == nil {
			cur.Finalizers = nil
			_ = env.Client.Update(ctx, &cur)
			_ = env.Client.Delete(ctx, &cur)
		}
		cleanRendered(ctx)
	})
	eventually(t, "reconciled as the operator's service account", func() error {
		c := meta.FindStatusCondition(currentMetalLB(t).Status.Conditions, v1beta1.ConditionDegraded)
		if c == nil {
			return fmt.Errorf("no Degraded condition yet")
		}
		if c.Status != metav1.ConditionFalse {
			return fmt.Errorf("Degraded: %s: %s", c.Reason, c.Message)
		}
		return nil
	})
	for _, o := range expected(t, currentMetalLB(t)) {
		if _, err := getLive(o); err != nil {
			t.Errorf("%s: %v", objID(o), err)
		}
	}
	h.quiesce()
	if err := env.Client.Delete(ctx, ml); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cleanup as the operator's service account", func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &v1beta1.MetalLB{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}

// TestDefaultInstallDryRun sends `kubectl apply --server-side -k
// config/default` to the API server as a dry run: every object of the
// kustomize install is accepted (schema, RBAC objects, the webhook
// configuration). The CRDs are checked apart: envtest installed them with
// its own conversion URL, which an apply would merge with our Service
// reference; a dry-run update replacing the whole object checks ours.
func TestDefaultInstallDryRun(t *testing.T) {
	ctx := context.Background()
	objs, err := bundle.Kustomize(filepath.Join(env.Root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			live, err := getLive(o)
			if err != nil {
				t.Fatal(err)
			}
			o.SetResourceVersion(live.GetResourceVersion())
			if err := env.Client.Update(ctx, o, client.DryRunAll); err != nil {
				t.Errorf("CRD %s from config/default refused: %v", o.GetName(), err)
			}
			continue
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	path := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := env.Kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", path)
	if err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"deployment.apps/lbstack-operator", "validatingwebhookconfiguration.admissionregistration.k8s.io/lbstack-validating-webhook-configuration",
		"clusterrole.rbac.authorization.k8s.io/lbstack-operator", "role.rbac.authorization.k8s.io/lbstack-leader-election", "service/lbstack-webhook-service",
		"networkpolicy.networking.k8s.io/lbstack-operator", "namespace/metallb-system"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl output lacks %s:\n%s", want, out)
		}
	}
}

// TestOperatorReportsPodSecurity: a namespace whose Pod Security admission
// enforces less than privileged refuses the speaker pods; the MetalLB
// object says so, naming the command that fixes it, and recovers when the
// label changes (the bundle suggests the labelled namespace; the kustomize
// install labels it).
func TestOperatorReportsPodSecurity(t *testing.T) {
	ctx := context.Background()
	cleanMetalLBObjects(t)
	startOperator(t)
	setLevel := func(level string) {
		t.Helper()
		var ns corev1.Namespace
		if err := env.Client.Get(ctx, client.ObjectKey{Name: envtest.Namespace}, &ns); err != nil {
			t.Fatal(err)
		}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		if level == "" {
			delete(ns.Labels, "pod-security.kubernetes.io/enforce")
		} else {
			ns.Labels["pod-security.kubernetes.io/enforce"] = level
		}
		if err := env.Client.Update(ctx, &ns); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { setLevel("") })
	ml := &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Name: "metallb", Namespace: envtest.Namespace}, Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeNative}}
	if err := env.Client.Create(ctx, ml); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var cur v1beta1.MetalLB
		if env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &cur) == nil {
			cur.Finalizers = nil
			_ = env.Client.Update(ctx, &cur)
			_ = env.Client.Delete(ctx, &cur)
		}
		cleanRendered(ctx)
	})
	degraded := func(reason, contains string) func() error {
		return func() error {
			c := meta.FindStatusCondition(currentMetalLB(t).Status.Conditions, v1beta1.ConditionDegraded)
			if c == nil || c.Reason != reason || !strings.Contains(c.Message, contains) {
				return fmt.Errorf("Degraded %+v, want reason %s with %q", c, reason, contains)
			}
			return nil
		}
	}
	setLevel("restricted")
	eventually(t, "Degraded: Pod Security refuses the speakers", degraded("PodSecurityRefusesSpeakers",
		"kubectl label namespace "+envtest.Namespace+" pod-security.kubernetes.io/enforce=privileged --overwrite"))
	setLevel("privileged")
	eventually(t, "no longer degraded once privileged", degraded("AsExpected", "applied"))
}
