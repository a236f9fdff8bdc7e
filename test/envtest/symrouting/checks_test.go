package symrouting_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/symrouting"
)

// setupScenario applies the scenario's files as written (kubectl apply -f
// on the directory) and creates what the scenario assumes around them: the
// namespace, two nodes labelled vrf=true (OVN's egress label on worker-0),
// the Service test/server1 with its address, NMState's view (states and
// enactments) and OpenShift's config Network.
func setupScenario(t *testing.T) {
	t.Helper()
	c := env.Client
	ensureNamespace(t, c, appNS)
	createNodes(t, c)
	createConfigNetwork(t, c)
	if out, errOut, err := env.Kubectl("apply", "-f", scenarioDir(t)); err != nil {
		t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
	}
	createService(t, c, "server1", "first-pool", "203.0.113.200")
	for _, n := range nodeNames {
		setNodeState(t, c, n, vrfState(2))
		enact(t, c, "vrfpolicy", n, "Available", "")
	}
}

func waitConsistent(t *testing.T) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	eventually(t, "MetalLB SymmetricRoutingConsistent=True", func() error {
		cond = metalLBCondition(t, env.Client)
		if cond == nil || cond.Status != metav1.ConditionTrue {
			return fmt.Errorf("condition %+v", cond)
		}
		return nil
	})
	return cond
}

// checkReasons are the check ids, the reasons of the finding events.
func checkReasons() map[string]bool {
	out := map[string]bool{}
	for _, c := range symrouting.Checks() {
		out[c.ID] = true
	}
	return out
}

// TestScenarioAsWritten: the scenario's five objects, as the user writes
// them, are consistent; the only finding is the warning that the pool
// auto-assigns.
func TestScenarioAsWritten(t *testing.T) {
	cleanup(t, env.Client)
	t.Cleanup(func() { cleanup(t, env.Client) })
	// The whole scenario exists before the coordinator starts, so that no
	// half-created state is ever seen: every finding event is one about
	// the scenario as written.
	setupScenario(t)
	h := startCoordinator(t, env)
	cond := waitConsistent(t)
	if cond.Reason != "NoErrors" || !strings.Contains(cond.Message, "PoolAutoAssign") {
		t.Errorf("condition %+v, want reason NoErrors with the PoolAutoAssign warning", cond)
	}
	eventually(t, "the PoolAutoAssign event", func() error {
		for _, e := range events(t, env.Client) {
			if e.Reason == symrouting.CheckPoolAutoAssign && e.InvolvedObject.Kind == "IPAddressPool" && e.InvolvedObject.Name == "first-pool" {
				return nil
			}
		}
		return fmt.Errorf("none")
	})
	h.reconcileAll(t)
	time.Sleep(time.Second)
	reasons := checkReasons()
	for _, e := range events(t, env.Client) {
		if reasons[e.Reason] && e.Reason != symrouting.CheckPoolAutoAssign {
			t.Errorf("unexpected finding event %s on %s %s: %s", e.Reason, e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
		}
		if e.Reason == symrouting.CheckPoolAutoAssign && e.Count > 1 {
			t.Errorf("the PoolAutoAssign event was emitted %d times; a steady state must emit it once", e.Count)
		}
	}
}

// Object references as findings print them.
const (
	refPeer   = `bgppeer "metallb-system/frrviavrf"`
	refPolicy = `nodenetworkconfigurationpolicy "vrfpolicy"`
	refES     = `egressservice "test/server1"`
	refSvc    = `service "test/server1"`
	refAd     = `bgpadvertisement "metallb-system/first-adv"`
	refPool   = `ipaddresspool "metallb-system/first-pool"`
	refOpNet  = `network.operator.openshift.io "cluster"`
	refML     = `metallb "metallb-system/metallb"`
)

// inconsistency is the scenario with one thing changed (and what undoes it).
type inconsistency struct {
	name    string
	change  func(t *testing.T)
	restore func(t *testing.T)
	// check is the finding expected; objects and field must all be in its
	// message.
	check   string
	objects []string
	field   string
}

func putFile(file string, replace ...string) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		put(t, env.Client, scenarioObject(t, file, replace...))
		if file == "node-network-vrf.yaml" {
			// As the nmstate handler would: enacted at the new generation.
			for _, n := range nodeNames {
				enact(t, env.Client, "vrfpolicy", n, "Available", "")
			}
		}
	}
}

func both(fs ...func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		t.Helper()
		for _, f := range fs {
			f(t)
		}
	}
}

func delES(name string) func(t *testing.T) {
	return func(t *testing.T) {
		del(t, env.Client, &ovnv1.EgressService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: name}})
	}
}

const longName = "server-with-a-very-long-name-that-no-label-can-hold-0123456789"

var inconsistencies = []inconsistency{
	// 1. The peer's VRF is defined, on the peer's nodes, with a table and an addressed port.
	{
		name:    "BGPPeer vrf ens5vrf",
		change:  putFile("frr-via-vrf.yaml", "vrf: ens4vrf", "vrf: ens5vrf"),
		restore: putFile("frr-via-vrf.yaml"),
		check:   symrouting.CheckVRFNotDefined, objects: []string{refPeer, refPolicy}, field: "spec.vrf",
	},
	{
		name:    "NNCP ens4vrf type dummy",
		change:  putFile("node-network-vrf.yaml", "type: vrf", "type: dummy"),
		restore: putFile("node-network-vrf.yaml"),
		check:   symrouting.CheckVRFInterfaceInvalid, objects: []string{refPolicy, refPeer}, field: "type",
	},
	{
		name:    "NNCP nodeSelector vrf=false",
		change:  putFile("node-network-vrf.yaml", "vrf: \"true\"", "vrf: \"false\""),
		restore: putFile("node-network-vrf.yaml"),
		check:   symrouting.CheckVRFNotOnPeerNodes, objects: []string{refPeer, refPolicy, "worker-0, worker-1"}, field: "spec.nodeSelector",
	},
	{
		name:    "NNCP route-table-id 254",
		change:  putFile("node-network-vrf.yaml", "route-table-id: 2", "route-table-id: 254"),
		restore: putFile("node-network-vrf.yaml"),
		check:   symrouting.CheckVRFRouteTableReserved, objects: []string{refPolicy, refPeer}, field: "route-table-id",
	},
	{
		name:    "NNCP port address disabled",
		change:  putFile("node-network-vrf.yaml", "enabled: true", "enabled: false"),
		restore: putFile("node-network-vrf.yaml"),
		check:   symrouting.CheckVRFPortNoAddress, objects: []string{refPolicy, refPeer}, field: "vrf.port",
	},
	// 1. On the nodes: NodeNetworkState and enactment.
	{
		name:    "NNS worker-0 shows table 3",
		change:  func(t *testing.T) { setNodeState(t, env.Client, "worker-0", vrfState(3)) },
		restore: func(t *testing.T) { setNodeState(t, env.Client, "worker-0", vrfState(2)) },
		check:   symrouting.CheckVRFNotOnNode, objects: []string{`nodenetworkstate "worker-0"`, refPolicy, refPeer}, field: "route-table-id",
	},
	{
		name:    "NNCE worker-1.vrfpolicy Failing",
		change:  func(t *testing.T) { enact(t, env.Client, "vrfpolicy", "worker-1", "Failing", "ens4 does not exist") },
		restore: func(t *testing.T) { enact(t, env.Client, "vrfpolicy", "worker-1", "Available", "") },
		check:   symrouting.CheckEnactmentFailed, objects: []string{`nodenetworkconfigurationenactment "worker-1.vrfpolicy"`, refPolicy}, field: "Failing",
	},
	// 2. EgressService network equals the table, below 1000.
	{
		name:    "EgressService network 3",
		change:  putFile("egress-service.yaml", `network: "2"`, `network: "3"`),
		restore: putFile("egress-service.yaml"),
		check:   symrouting.CheckEgressNetworkMismatch, objects: []string{refES, refPeer, refPolicy}, field: "spec.network",
	},
	{
		name: "NNCP route-table-id and EgressService network 1000",
		change: both(putFile("node-network-vrf.yaml", "route-table-id: 2", "route-table-id: 1000"),
			putFile("egress-service.yaml", `network: "2"`, `network: "1000"`)),
		restore: both(putFile("node-network-vrf.yaml"), putFile("egress-service.yaml")),
		check:   symrouting.CheckEgressNetworkInvalid, objects: []string{refES, refPeer, refPolicy}, field: "spec.network",
	},
	// 3. The Service exists, has an address; the label fits.
	{
		name:    "EgressService name server2",
		change:  both(delES("server1"), putFile("egress-service.yaml", "name: server1", "name: server2")),
		restore: both(delES("server2"), putFile("egress-service.yaml")),
		check:   symrouting.CheckEgressServiceNoService, objects: []string{`egressservice "test/server2"`, `service "test/server2"`, "server1"}, field: "name",
	},
	{
		name:    "Service without address",
		change:  func(t *testing.T) { setIngress(t, env.Client, "server1", "") },
		restore: func(t *testing.T) { setIngress(t, env.Client, "server1", "203.0.113.200") },
		check:   symrouting.CheckEgressServiceNoIngress, objects: []string{refSvc, refES}, field: "ingress",
	},
	{
		name:    "EgressService name too long for the node label",
		change:  both(delES("server1"), putFile("egress-service.yaml", "name: server1", "name: "+longName)),
		restore: both(delES(longName), putFile("egress-service.yaml")),
		check:   symrouting.CheckEgressServiceNameTooLong, objects: []string{`egressservice "test/` + longName + `"`, "egress-service.k8s.ovn.org/test-" + longName}, field: "63",
	},
	// 4. Advertisements select the label and VRF peers only; the pool is dedicated.
	{
		name:    "BGPAdvertisement nodeSelector test-server2",
		change:  putFile("first-adv.yaml", "test-server1", "test-server2"),
		restore: putFile("first-adv.yaml"),
		check:   symrouting.CheckAdvertisementNodeSelector, objects: []string{refAd, refES, "egress-service.k8s.ovn.org/test-server1"}, field: "spec.nodeSelectors",
	},
	{
		name: "BGPAdvertisement also to a peer outside the VRF",
		change: both(func(t *testing.T) {
			put(t, env.Client, &v1beta2.BGPPeer{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tor"},
				Spec:       v1beta2.BGPPeerSpec{MyASN: 100, ASN: 300, Address: "192.0.2.1"},
			})
		}, putFile("first-adv.yaml", "- frrviavrf", "- frrviavrf\n    - tor")),
		restore: both(putFile("first-adv.yaml"), func(t *testing.T) {
			del(t, env.Client, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tor"}})
		}),
		check: symrouting.CheckAdvertisementNonVRFPeer, objects: []string{refAd, `bgppeer "metallb-system/tor"`, refES}, field: "spec.peers[1]",
	},
	{
		name: "pool shared with another Service",
		change: both(putFile("first-pool.yaml", "203.0.113.200/32", "203.0.113.200/31"), func(t *testing.T) {
			createService(t, env.Client, "server3", "", "203.0.113.201")
		}),
		restore: both(func(t *testing.T) {
			del(t, env.Client, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "server3"}})
		}, putFile("first-pool.yaml")),
		check: symrouting.CheckPoolShared, objects: []string{refPool, `service "test/server3"`, refES}, field: "holds 203.0.113.201",
	},
	// sourceIPBy Network needs routingViaHost.
	{
		name: "sourceIPBy Network without routingViaHost",
		change: both(func(t *testing.T) {
			createOperatorNetwork(t, env.Client, map[string]any{"routingViaHost": false})
		}, putFile("egress-service.yaml", `sourceIPBy: "LoadBalancerIP"`, `sourceIPBy: "Network"`)),
		restore: both(putFile("egress-service.yaml"), func(t *testing.T) { del(t, env.Client, operatorNetwork()) }),
		check:   symrouting.CheckRoutingViaHostDisabled, objects: []string{refOpNet, refES}, field: "gatewayConfig.routingViaHost",
	},
	// 5. Route rules: cluster, service and OVN masquerade networks.
	{
		name:    "route rule for 10.128.0.0/14 instead of the cluster network",
		change:  putFile("node-network-vrf.yaml", "ip-to: 10.132.0.0/14", "ip-to: 10.128.0.0/14"),
		restore: putFile("node-network-vrf.yaml"),
		check:   symrouting.CheckMainTableRuleMissing, objects: []string{refPolicy, refPeer, "10.132.0.0/14", `config.openshift.io/v1 Network "cluster"`}, field: "route-rules.config",
	},
	{
		name: "OVN masquerade subnet not kept in the main table",
		change: func(t *testing.T) {
			createOperatorNetwork(t, env.Client, map[string]any{"ipv4": map[string]any{"internalMasqueradeSubnet": "169.254.0.0/17"}})
		},
		restore: func(t *testing.T) { del(t, env.Client, operatorNetwork()) },
		check:   symrouting.CheckMasqueradeRuleMissing, objects: []string{refPolicy, refOpNet, refPeer, "169.254.0.0/17"}, field: "ipv4.internalMasqueradeSubnet",
	},
	// 6. The backend can bind the VRF (stored while the webhook was off:
	// admission refuses frr-k8s).
	{
		name: "MetalLB bgpBackend frr-k8s",
		change: func(t *testing.T) {
			withoutMetalLBWebhook(t, func() error {
				ml := metalLB(t)
				ml.Spec.BGPType = v1beta1.BGPTypeFRRK8s
				return env.Client.Update(context.Background(), ml)
			})
		},
		restore: putFile("metallb.yaml"),
		check:   symrouting.CheckBackendCannotBindVRF, objects: []string{refML, refPeer}, field: "spec.bgpBackend",
	},
}

// withoutMetalLBWebhook runs f with the MetalLB admission webhook removed,
// as if the object had been stored while the webhook was down.
func withoutMetalLBWebhook(t *testing.T, write func() error) {
	t.Helper()
	ctx := context.Background()
	var list admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := env.Client.List(ctx, &list); err != nil {
		t.Fatal(err)
	}
	for i := range list.Items {
		vwc := &list.Items[i]
		orig := vwc.DeepCopy()
		vwc.Webhooks = slices.DeleteFunc(vwc.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool {
			return strings.HasPrefix(w.Name, "metallbvalidationwebhook")
		})
		if len(vwc.Webhooks) == len(orig.Webhooks) {
			continue
		}
		if err := env.Client.Update(ctx, vwc); err != nil {
			t.Fatal(err)
		}
		defer func() {
			eventually(t, "restore the webhook", func() error {
				var cur admissionregistrationv1.ValidatingWebhookConfiguration
				if err := env.Client.Get(ctx, client.ObjectKeyFromObject(orig), &cur); err != nil {
					return err
				}
				cur.Webhooks = orig.Webhooks
				return env.Client.Update(ctx, &cur)
			})
		}()
	}
	// The API server's webhook configuration cache follows the update
	// asynchronously: retry until the write goes through.
	eventually(t, "write without the webhook", write)
}

// TestInconsistencies changes one thing of the scenario at a time and
// expects the finding, as an event naming both objects and the field on
// the object to change and in the MetalLB object's condition, then
// restores the scenario and expects consistency again. One API server and
// one coordinator serve every case.
func TestInconsistencies(t *testing.T) {
	cleanup(t, env.Client)
	t.Cleanup(func() { cleanup(t, env.Client) })
	startCoordinator(t, env)
	setupScenario(t)
	waitConsistent(t)
	ctx := context.Background()
	covered := map[string]bool{}
	for _, tc := range inconsistencies {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []string{"default", ns, appNS} {
				if err := env.Client.DeleteAllOf(ctx, &corev1.Event{}, client.InNamespace(n)); err != nil {
					t.Fatal(err)
				}
			}
			tc.change(t)
			var found *corev1.Event
			eventually(t, "a "+tc.check+" event", func() error {
				var seen []string
				for _, e := range events(t, env.Client) {
					if e.Reason != tc.check {
						continue
					}
					seen = append(seen, e.Message)
					if e.Type != corev1.EventTypeWarning {
						continue
					}
					ok := strings.Contains(e.Message, tc.field)
					for _, o := range tc.objects {
						ok = ok && strings.Contains(e.Message, o)
					}
					if ok {
						found = &e
						return nil
					}
				}
				return fmt.Errorf("events with reason %s: %q", tc.check, seen)
			})
			t.Logf("event on %s %s/%s: %s", found.InvolvedObject.Kind, found.InvolvedObject.Namespace, found.InvolvedObject.Name, found.Message)
			if found.Source.Component != "lbstack-symmetric-routing" {
				t.Errorf("event source %+v", found.Source)
			}
			eventually(t, "MetalLB SymmetricRoutingConsistent=False naming "+tc.check, func() error {
				c := metalLBCondition(t, env.Client)
				if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Inconsistent" {
					return fmt.Errorf("condition %+v", c)
				}
				if !strings.Contains(c.Message, tc.check+": ") && !strings.Contains(c.Message, "more)") {
					return fmt.Errorf("condition message does not name %s: %s", tc.check, c.Message)
				}
				return nil
			})
			covered[tc.check] = true
			tc.restore(t)
			waitConsistent(t)
		})
	}
	if len(covered) < 8 {
		t.Errorf("only %d checks covered", len(covered))
	}
}

// metalLB returns the scenario's MetalLB object.
func metalLB(t *testing.T) *v1beta1.MetalLB {
	t.Helper()
	var ml v1beta1.MetalLB
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "metallb"}, &ml); err != nil {
		t.Fatal(err)
	}
	return &ml
}
