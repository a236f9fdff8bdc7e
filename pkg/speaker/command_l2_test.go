package speaker_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/l2"
	"github.com/lbstack/lbstack/pkg/l2/election"
	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// TestSpeakerL2FollowsChanges: a speaker in layer 2 after its first
// reconcile follows changes of single Services (one address moving to and
// from this node, two Services sharing one) and of the live speakers (the
// other node's speaker pod stops running, then runs again), in what it
// answers ARP for (asked from the router namespace) and in its
// ServiceL2Status objects. The speaker of node n1 runs in this process in
// the frrtest node namespace; node n2 has only a speaker pod object, set
// Running or not through the API.
func TestSpeakerL2FollowsChanges(t *testing.T) {
	inNodeNamespace(t, "TestSpeakerL2FollowsChanges", "", l2ChangesChild)
}

func l2ChangesChild(t *testing.T, _ string) {
	// The frrtest lab names the node's link lbs<id>n and the router's
	// namespace lbs-<id>-r.
	links, err := os.ReadDir("/sys/class/net")
	must(t, err)
	nodeLink := ""
	for _, l := range links {
		if strings.HasPrefix(l.Name(), "lbs") && strings.HasSuffix(l.Name(), "n") {
			nodeLink = l.Name()
		}
	}
	if nodeLink == "" {
		t.Fatal("no lab link in the node namespace")
	}
	probe := newARPProbe(t, "lbs-"+strings.TrimSuffix(strings.TrimPrefix(nodeLink, "lbs"), "n")+"-r")

	env := envtest.Start(t)
	c := env.Client
	ctx := context.Background()
	ns := envtest.Namespace
	for i, name := range []string{"n1", "n2"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
		must(t, c.Create(ctx, n))
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.18.0.%d", i+1)}}
		must(t, c.Status().Update(ctx, n))
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "speaker-" + name, Namespace: ns, Labels: map[string]string{"app": "lbstack", "component": "speaker"}},
			Spec:       corev1.PodSpec{NodeName: name, Containers: []corev1.Container{{Name: "speaker", Image: "lbstack"}}},
		}
		must(t, c.Create(ctx, p))
		p.Status.Phase = corev1.PodRunning
		must(t, c.Status().Update(ctx, p))
	}
	setPhase := func(node string, phase corev1.PodPhase) {
		t.Helper()
		var p corev1.Pod
		must(t, c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "speaker-" + node}, &p))
		p.Status.Phase = phase
		must(t, c.Status().Update(ctx, &p))
	}
	must(t, c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.18.0.240/28"}}}))
	must(t, c.Create(ctx, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: ns},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}))

	// Addresses of the pool each node wins while both are live.
	cands := []election.Candidate{{Name: "n1"}, {Name: "n2"}}
	both := map[string]bool{"n1": true, "n2": true}
	var mine, theirs []netip.Addr
	for a := netip.MustParseAddr("198.18.0.241"); a.Compare(netip.MustParseAddr("198.18.0.254")) < 0; a = a.Next() {
		if n, _ := election.Elect(a, cands, both); n == "n1" {
			mine = append(mine, a)
		} else {
			theirs = append(theirs, a)
		}
	}
	if len(mine) < 2 || len(theirs) < 1 {
		t.Fatalf("addresses of n1 %v, of n2 %v: too few for the test", mine, theirs)
	}
	service := func(name string, a netip.Addr) {
		t.Helper()
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			Annotations: map[string]string{"metallb.io/allow-shared-ip": "shared"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
		must(t, c.Create(ctx, svc))
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: a.String()}}
		must(t, c.Status().Update(ctx, svc))
		must(t, c.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n2")}},
		}))
	}
	setAddr := func(name string, a netip.Addr) {
		t.Helper()
		var svc corev1.Service
		must(t, c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &svc))
		orig := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: a.String()}}
		must(t, c.Status().Patch(ctx, &svc, client.MergeFrom(orig)))
	}
	// expect waits until this node answers ARP for exactly the answered
	// addresses of all, and has a ServiceL2Status, on the lab link, for
	// exactly the Services named.
	all := append(slices.Clone(mine), theirs...)
	expect := func(what string, answered []netip.Addr, services ...string) {
		t.Helper()
		slices.Sort(services)
		frrtest.Eventually(t, 30*time.Second, what, func() string {
			var l v1beta1.ServiceL2StatusList
			if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
				return err.Error()
			}
			var got []string
			for _, s := range l.Items {
				if s.Status.Node != "n1" || len(s.Status.Interfaces) != 1 || s.Status.Interfaces[0].Name != nodeLink {
					return fmt.Sprintf("ServiceL2Status %s says %+v", s.Name, s.Status)
				}
				got = append(got, s.Status.ServiceName)
			}
			slices.Sort(got)
			if !slices.Equal(got, services) {
				return fmt.Sprintf("ServiceL2Status of %v, want %v", got, services)
			}
			for _, a := range all {
				if want := slices.Contains(answered, a); probe.answered(a, 200*time.Millisecond) != want {
					return fmt.Sprintf("ARP for %s answered: %v, want %v", a, !want, want)
				}
			}
			return ""
		})
	}

	service("web", mine[0])
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- speaker.RunProcess(runCtx, env.Config, speaker.ProcessOptions{
			Speaker: speaker.Options{NodeName: "n1", Namespace: ns, BGPBackend: v1beta1.BGPTypeNative, Resync: time.Hour,
				Layer2: l2.Options{PodLabels: speakerPodLabels}},
			Metrics: metricsserver.Options{BindAddress: "0"}, HealthAddr: "0",
		})
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("speaker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("speaker did not stop")
		}
	})
	expect("web on n1 (first reconcile)", []netip.Addr{mine[0]}, "web")
	setAddr("web", theirs[0])
	expect("web moved to n2's address", nil)
	setAddr("web", mine[0])
	expect("web back on n1", []netip.Addr{mine[0]}, "web")

	// Two Services on one address: each has its object; the address is
	// answered while one of them has it.
	service("api", mine[1])
	expect("api on n1", []netip.Addr{mine[0], mine[1]}, "web", "api")
	service("db", mine[1])
	expect("api and db share an address", []netip.Addr{mine[0], mine[1]}, "web", "api", "db")
	must(t, c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "default"}}))
	expect("api deleted, db keeps the address", []netip.Addr{mine[0], mine[1]}, "web", "db")
	setAddr("db", theirs[0])
	expect("db moved to n2's address", []netip.Addr{mine[0]}, "web")

	// n2's speaker stops: n1 takes over its addresses; and gives them
	// back when it runs again.
	setPhase("n2", corev1.PodFailed)
	expect("n2's speaker down", []netip.Addr{mine[0], theirs[0]}, "web", "db")
	setPhase("n2", corev1.PodRunning)
	expect("n2's speaker up again", []netip.Addr{mine[0]}, "web")
}
