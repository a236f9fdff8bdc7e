// Package symrouting_test runs the symmetric-routing coordinator
// (srreconciler.Reconciler) against a real kube-apiserver
// with NMState's, OVN-Kubernetes' EgressService and OpenShift's Network
// CRDs installed (test/crds), lbstack's admission webhooks live.
package symrouting_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
	"github.com/lbstack/lbstack/test/envtest"
)

// env has the extra CRDs; tests needing an API server without them start
// their own.
var env *envtest.Env

var extraCRDs = []string{"test/crds/nmstate", "test/crds/ovn", "test/crds/openshift"}

func TestMain(m *testing.M) {
	var err error
	env, err = envtest.StartEnvWith(envtest.Options{ExtraCRDDirs: extraCRDs})
	if err == nil {
		err = srreconciler.AddToScheme(env.Scheme)
	}
	if err != nil {
		os.Stderr.WriteString("envtest: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		os.Stderr.WriteString("envtest stop: " + err.Error() + "\n")
	}
	os.Exit(code)
}

const (
	ns     = envtest.Namespace
	appNS  = "test"
	timout = 30 * time.Second
)

var (
	gvkConfigNetwork   = schema.GroupVersionKind{Group: "config.openshift.io", Version: "v1", Kind: "Network"}
	gvkOperatorNetwork = schema.GroupVersionKind{Group: "operator.openshift.io", Version: "v1", Kind: "Network"}
)

// harness runs the coordinator in a manager configured as `lbstack
// operator` configures it.
type harness struct {
	r   *srreconciler.Reconciler
	env *envtest.Env
}

func startCoordinator(t *testing.T, e *envtest.Env) *harness {
	t.Helper()
	apis := detect(t, e.Config)
	mgr, err := ctrl.NewManager(e.Config, ctrl.Options{
		Scheme:                 e.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{ns: {}},
			ByObject:          srreconciler.CacheObjects(apis),
		},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &srreconciler.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: e.Scheme, Namespace: ns,
		Recorder: mgr.GetEventRecorderFor("lbstack-symmetric-routing"), APIs: apis,
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
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}
	return &harness{r: r, env: e}
}

func detect(t *testing.T, cfg *rest.Config) srreconciler.APIs {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	apis, err := srreconciler.DetectAPIs(mapper)
	if err != nil {
		t.Fatal(err)
	}
	return apis
}

// reconcileAll runs the cluster-wide check and every SymmetricRouting
// once, by hand.
func (h *harness) reconcileAll(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	reqs := []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: "symmetric-routing-checks"}}}
	var srs v1alpha1.SymmetricRoutingList
	if err := h.env.Client.List(ctx, &srs); err != nil {
		t.Fatal(err)
	}
	for _, sr := range srs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: sr.Name}})
	}
	for _, req := range reqs {
		// The manager runs the same reconciler meanwhile: a write that
		// loses the optimistic lock to it is retried, as the work queue
		// would.
		for try := 0; ; try++ {
			_, err := h.r.Reconcile(ctx, req)
			if err == nil {
				break
			}
			if !apierrors.IsConflict(err) || try == 5 {
				t.Fatalf("reconcile %v: %v", req, err)
			}
		}
	}
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timout)
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

func scenarioDir(t *testing.T) string {
	t.Helper()
	d, err := envtest.ScenariosDir()
	if err != nil {
		t.Fatal(err)
	}
	d = filepath.Join(d, "symmetric-routing-vrf")
	if _, err := os.Stat(d); err != nil {
		t.Fatal(err)
	}
	return d
}

// scenarioFile reads one scenario file, with replacements (old, new, ...)
// applied to its text; each old string must occur.
func scenarioFile(t *testing.T, name string, replace ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scenarioDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s does not contain %q", name, replace[i])
		}
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return []byte(s)
}

// scenarioObject decodes a scenario file into its type.
func scenarioObject(t *testing.T, name string, replace ...string) client.Object {
	t.Helper()
	var o client.Object
	switch name {
	case "node-network-vrf.yaml":
		o = &nmstatev1.NodeNetworkConfigurationPolicy{}
	case "frr-via-vrf.yaml":
		o = &v1beta2.BGPPeer{}
	case "first-pool.yaml":
		o = &v1beta1.IPAddressPool{}
	case "first-adv.yaml":
		o = &v1beta1.BGPAdvertisement{}
	case "egress-service.yaml":
		o = &ovnv1.EgressService{}
	case "metallb.yaml":
		o = &v1beta1.MetalLB{}
	default:
		t.Fatalf("unknown scenario file %s", name)
	}
	if err := yaml.UnmarshalStrict(scenarioFile(t, name, replace...), o); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

// put creates o, or replaces the live object's spec (and labels) with o's.
func put(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "write "+o.GetName(), func() error {
		live := o.DeepCopyObject().(client.Object)
		err := c.Get(ctx, client.ObjectKeyFromObject(o), live)
		if apierrors.IsNotFound(err) {
			return c.Create(ctx, o.DeepCopyObject().(client.Object))
		}
		if err != nil {
			return err
		}
		upd := o.DeepCopyObject().(client.Object)
		upd.SetResourceVersion(live.GetResourceVersion())
		upd.SetFinalizers(live.GetFinalizers())
		upd.SetAnnotations(live.GetAnnotations())
		return c.Update(ctx, upd)
	})
}

func del(t *testing.T, c client.Client, o client.Object) {
	t.Helper()
	if err := c.Delete(context.Background(), o); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	eventually(t, "delete "+o.GetName(), func() error {
		err := c.Get(context.Background(), client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object))
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
}

// ---- the world the scenario assumes: nodes, Service, NMState's and OVN's view ----

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

var nodeNames = []string{"worker-0", "worker-1"}

// createNodes creates the two workers with the VRF's label; OVN picked
// worker-0 as the egress node of test/server1.
func createNodes(t *testing.T, c client.Client) {
	t.Helper()
	for i, n := range nodeNames {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{
			"vrf": "true", "kubernetes.io/hostname": n,
		}}}
		if i == 0 {
			node.Labels[ovnv1.NodeLabel(appNS, "server1")] = ""
		}
		put(t, c, node)
	}
}

// createService creates a LoadBalancer Service asking for pool with
// address ip (set in its status, as the lbstack controller would).
func createService(t *testing.T, c client.Client, name, pool, ip string) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: name},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if pool != "" {
		svc.Annotations = map[string]string{"metallb.io/address-pool": pool}
	}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	setIngress(t, c, name, ip)
}

func setIngress(t *testing.T, c client.Client, name, ip string) {
	t.Helper()
	eventually(t, "service status", func() error {
		var svc corev1.Service
		if err := c.Get(context.Background(), types.NamespacedName{Namespace: appNS, Name: name}, &svc); err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = nil
		if ip != "" {
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		}
		return c.Status().Update(context.Background(), &svc)
	})
}

// createConfigNetwork creates config.openshift.io/v1 Network "cluster" as
// OpenShift reports it.
func createConfigNetwork(t *testing.T, c client.Client) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkConfigNetwork)
	u.SetName("cluster")
	if err := c.Create(context.Background(), u); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, "config network status", func() error {
		if err := c.Get(context.Background(), types.NamespacedName{Name: "cluster"}, u); err != nil {
			return err
		}
		u.Object["status"] = map[string]any{
			"clusterNetwork": []any{map[string]any{"cidr": "10.132.0.0/14", "hostPrefix": int64(23)}},
			"serviceNetwork": []any{"172.30.0.0/16"},
		}
		return c.Status().Update(context.Background(), u)
	})
}

// createOperatorNetwork creates operator.openshift.io/v1 Network "cluster"
// with OVN-Kubernetes' gateway configuration.
func createOperatorNetwork(t *testing.T, c client.Client, gatewayConfig map[string]any) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"defaultNetwork": map[string]any{
			"type":                "OVNKubernetes",
			"ovnKubernetesConfig": map[string]any{"gatewayConfig": gatewayConfig},
		}},
	}}
	u.SetGroupVersionKind(gvkOperatorNetwork)
	u.SetName("cluster")
	put(t, c, u)
}

func operatorNetwork() *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvkOperatorNetwork)
	u.SetName("cluster")
	return u
}

// vrfState is a node's current nmstate state showing VRF ens4vrf.
func vrfState(table int) []byte {
	return fmt.Appendf(nil, `interfaces:
- name: ens4vrf
  type: vrf
  state: up
  vrf:
    port: [ens4]
    route-table-id: %d
- name: ens4
  type: ethernet
  state: up
  ipv4:
    enabled: true
    address:
    - ip: 198.19.130.130
      prefix-length: 24
`, table)
}

// setNodeState writes the NodeNetworkState of node as the nmstate handler
// would.
func setNodeState(t *testing.T, c client.Client, node string, state []byte) {
	t.Helper()
	nns := &nmstatev1beta1.NodeNetworkState{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := c.Create(context.Background(), nns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, "nns status", func() error {
		if err := c.Get(context.Background(), types.NamespacedName{Name: node}, nns); err != nil {
			return err
		}
		nns.Status.CurrentState = nmstateshared.State{Raw: state}
		return c.Status().Update(context.Background(), nns)
	})
}

// enact writes the enactment <node>.<policy> as the nmstate handler does:
// condType (Available, Failing, ...) true at the policy's generation.
func enact(t *testing.T, c client.Client, policy, node, condType, message string) {
	t.Helper()
	ctx := context.Background()
	name := node + "." + policy
	nnce := &nmstatev1beta1.NodeNetworkConfigurationEnactment{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, nnce); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	eventually(t, "enactment "+name, func() error {
		var pol nmstatev1.NodeNetworkConfigurationPolicy
		if err := c.Get(ctx, types.NamespacedName{Name: policy}, &pol); err != nil {
			return err
		}
		if err := c.Get(ctx, types.NamespacedName{Name: name}, nnce); err != nil {
			return err
		}
		nnce.Status.PolicyGeneration = pol.Generation
		nnce.Status.Conditions = nil
		for _, ct := range []string{"Available", "Failing", "Progressing", "Pending", "Aborted"} {
			st := corev1.ConditionFalse
			msg := ""
			if ct == condType {
				st, msg = corev1.ConditionTrue, message
			}
			nnce.Status.Conditions = append(nnce.Status.Conditions, nmstateshared.Condition{
				Type: nmstateshared.ConditionType(ct), Status: st, Reason: nmstateshared.ConditionReason(ct), Message: msg,
				LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now(),
			})
		}
		return c.Status().Update(ctx, nnce)
	})
}

// cleanup removes everything the tests create in env.
func cleanup(t *testing.T, c client.Client) {
	t.Helper()
	ctx := context.Background()
	var srs v1alpha1.SymmetricRoutingList
	if err := c.List(ctx, &srs); err == nil {
		for i := range srs.Items {
			sr := &srs.Items[i]
			if len(sr.Finalizers) > 0 {
				sr.Finalizers = nil
				_ = c.Update(ctx, sr)
			}
			_ = c.Delete(ctx, sr)
		}
	}
	for _, o := range []client.Object{&v1beta2.BGPPeer{}, &v1beta1.IPAddressPool{}, &v1beta1.BGPAdvertisement{}, &v1beta1.MetalLB{}} {
		_ = c.DeleteAllOf(ctx, o, client.InNamespace(ns))
	}
	for _, o := range []client.Object{&ovnv1.EgressService{}, &corev1.Service{}} {
		_ = c.DeleteAllOf(ctx, o, client.InNamespace(appNS))
	}
	var svcs corev1.ServiceList // DeleteAllOf is not served for Services
	if err := c.List(ctx, &svcs, client.InNamespace(appNS)); err == nil {
		for i := range svcs.Items {
			_ = c.Delete(ctx, &svcs.Items[i])
		}
	}
	for _, o := range []client.Object{
		&nmstatev1.NodeNetworkConfigurationPolicy{}, &nmstatev1beta1.NodeNetworkState{},
		&nmstatev1beta1.NodeNetworkConfigurationEnactment{}, &corev1.Node{},
	} {
		_ = c.DeleteAllOf(ctx, o)
	}
	for _, g := range []schema.GroupVersionKind{gvkConfigNetwork, gvkOperatorNetwork} {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(g)
		u.SetName("cluster")
		_ = c.Delete(ctx, u)
	}
	for _, n := range []string{"default", ns, appNS} {
		_ = c.DeleteAllOf(ctx, &corev1.Event{}, client.InNamespace(n))
	}
	eventually(t, "clean", func() error {
		var peers v1beta2.BGPPeerList
		var svcs corev1.ServiceList
		var srs v1alpha1.SymmetricRoutingList
		for _, l := range []client.ObjectList{&peers, &svcs, &srs} {
			if err := c.List(ctx, l); err != nil {
				return err
			}
		}
		if n := len(peers.Items) + len(srs.Items); n > 0 {
			return fmt.Errorf("%d objects left", n)
		}
		for _, s := range svcs.Items {
			if s.Namespace == appNS {
				return fmt.Errorf("service %s left", s.Name)
			}
		}
		return nil
	})
}

func metalLBCondition(t *testing.T, c client.Client) *metav1.Condition {
	t.Helper()
	var ml v1beta1.MetalLB
	if err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "metallb"}, &ml); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(ml.Status.Conditions, srreconciler.ConditionSymmetricRoutingConsistent)
}

// events lists the events in every namespace.
func events(t *testing.T, c client.Client) []corev1.Event {
	t.Helper()
	var l corev1.EventList
	if err := c.List(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	return l.Items
}
