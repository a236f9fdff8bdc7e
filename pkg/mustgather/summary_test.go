package mustgather

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	lbstackv1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/bgp/frr"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/pkg/symrouting"
)

// sectionOf is the body of summary section title ("" when absent).
func sectionOf(text, title string) string {
	head := "\n== " + title + "\n"
	i := strings.Index(text, head)
	if i < 0 {
		return ""
	}
	body := text[i+len(head):]
	if j := strings.Index(body, "\n== "); j >= 0 {
		body = body[:j]
	}
	return body
}

// snap builds a snapshot; objects go where the gatherer puts them.
func snap(t *testing.T, objs ...runtime.Object) *snapshot {
	t.Helper()
	s := &snapshot{namespace: ns}
	for _, o := range objs {
		switch x := o.(type) {
		case *corev1.Pod:
			s.pods = append(s.pods, *x)
		case *corev1.Service:
			s.services = append(s.services, *x)
		case *corev1.Node:
			s.nodes = append(s.nodes, *x)
		case *corev1.Namespace:
			s.namespaces = append(s.namespaces, *x)
		case *appsv1.Deployment:
			s.deployments = append(s.deployments, *toUnstructured(t, x))
		case *appsv1.DaemonSet:
			s.daemonsets = append(s.daemonsets, *toUnstructured(t, x))
		default:
			u := toUnstructured(t, o)
			if u.GetKind() == "ClusterServiceVersion" {
				s.csvs = append(s.csvs, *u)
				continue
			}
			group := u.GroupVersionKind().Group
			plural := strings.ToLower(u.GetKind()) + "s"
			switch u.GetKind() {
			case "Community":
				plural = "communities"
			case "ServiceBGPStatus", "ServiceL2Status":
				plural = strings.ToLower(u.GetKind()) + "es"
			}
			s.add(group, plural, append(s.get(group, plural), *u))
		}
	}
	return s
}

var installed = Result{Namespace: ns, Found: "the MetalLB object metallb-system/metallb", OperatorInstalled: true}

func TestSummaryStack(t *testing.T) {
	two := int32(2)
	ml := metallbObj(ns, "metallb")
	ml.Spec.LoadBalancerClass = "example.com/lb"
	ml.Spec.BGPType = v1beta1.BGPTypeNative
	ml.Status.Conditions = []metav1.Condition{
		{Type: "Available", Status: metav1.ConditionTrue, Reason: "Ok", Message: "all good"},
		{Type: "Progressing", Status: metav1.ConditionFalse, Reason: "Done", Message: "rolled out"},
		{Type: "Degraded", Status: metav1.ConditionTrue, Reason: "SpeakerDown", Message: "1 of 3 speakers down"},
	}
	crash := runningPod("speaker-x", "n1", nil, "speaker", "frr")
	crash.Status.ContainerStatuses[0].Ready = false
	crash.Status.ContainerStatuses[0].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}
	crash.Status.ContainerStatuses[0].RestartCount = 4
	crash.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}
	pendingPod := runningPod("controller-y", "", nil, "controller")
	pendingPod.Status.Phase = corev1.PodPending
	done := runningPod("job", "n1", nil)
	done.Status.Phase = corev1.PodSucceeded
	cases := []struct {
		name string
		res  Result
		objs []runtime.Object
		want string
	}{
		{name: "not installed", res: Result{Namespace: ns, Found: "the default: no MetalLB object, CSV or Subscription found"},
			want: "namespace: metallb-system (found by the default: no MetalLB object, CSV or Subscription found)\n" +
				"OPERATOR NOT INSTALLED: the metallb.io API is not served and no OLM CSV or Subscription names lbstack.\n" +
				"Install it (docs/install.md), then create one MetalLB object; everything below is what the cluster has without it.\n"},
		{name: "installed without MetalLB object", res: installed,
			want: "namespace: metallb-system (found by the MetalLB object metallb-system/metallb)\n" +
				"NO MetalLB OBJECT: the operator runs nothing until one exists (create metallb-system/metallb).\n"},
		{name: "MetalLB backend, conditions (messages of the bad ones), class, CSV, workloads, pods in trouble", res: installed,
			objs: []runtime.Object{ml, csvObj(ns, "lbstack.v1", true, false), csvObj(ns, "widgets.v1", false, false),
				&appsv1.Deployment{TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: nsMeta(ns, "controller"), Spec: appsv1.DeploymentSpec{Replicas: &two}, Status: appsv1.DeploymentStatus{ReadyReplicas: 1}},
				&appsv1.Deployment{TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: nsMeta(ns, "webhook"), Status: appsv1.DeploymentStatus{ReadyReplicas: 1}},
				&appsv1.DaemonSet{TypeMeta: tm("apps/v1", "DaemonSet"), ObjectMeta: nsMeta(ns, "speaker"), Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, NumberReady: 2}},
				crash, pendingPod, done, runningPod("fine", "n2", nil, "speaker"),
			},
			want: "namespace: metallb-system (found by the MetalLB object metallb-system/metallb)\n" +
				"MetalLB metallb-system/metallb: bgpBackend native; Available=True, Progressing=False (Done: rolled out), Degraded=True (SpeakerDown: 1 of 3 speakers down)\n" +
				"serves only Services with spec.loadBalancerClass \"example.com/lb\"\n" +
				"OLM: ClusterServiceVersion lbstack.v1 phase Succeeded\n" +
				"deployment controller: 1/2 ready  <- NOT READY\n" +
				"deployment webhook: 1/1 ready\n" +
				"daemonset speaker: 2/3 ready  <- NOT READY\n" +
				"pod speaker-x (node n1): container speaker not ready (CrashLoopBackOff); container speaker restarted 4 time(s), last exit 2 (Error): see its previous log\n" +
				"pod controller-y (node ): phase Pending\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := renderSummary(snap(t, tc.objs...), tc.res, 0, time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
			if !strings.HasPrefix(text, "lbstack must-gather summary, 2026-12-06T12:00:00Z (") {
				t.Errorf("first line: %q", strings.SplitN(text, "\n", 2)[0])
			}
			if got := sectionOf(text, "Stack"); got != tc.want {
				t.Errorf("Stack:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func cfgState(name string, result v1beta1.ConfigurationResult, summary string) *v1beta1.ConfigurationState {
	return &v1beta1.ConfigurationState{TypeMeta: tm("metallb.io/v1beta1", "ConfigurationState"), ObjectMeta: nsMeta(ns, name),
		Status: v1beta1.ConfigurationStateStatus{Result: result, ErrorSummary: summary}}
}

func TestSummaryConfiguration(t *testing.T) {
	badPeer := peerObj(ns, "bad", "")
	badPeer.Spec.Address = "not-an-ip"
	cases := []struct {
		name string
		objs []runtime.Object
		want string
	}{
		{name: "a valid configuration is counted",
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), peerObj(ns, "edge", ""), bgpAdvObj("adv", "a"), cfgState("speaker-n1", "Valid", "")},
			want: "valid: 1 pool(s), 1 BGP peer(s), 1 BGP and 0 L2 advertisement(s)\nConfigurationState speaker-n1: Valid\n"},
		{name: "an invalid configuration is refused with every problem",
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), poolObj("b", "192.0.2.7/32"), cfgState("controller", "Invalid", "ipaddresspool \"b\": overlaps"), cfgState("x", "", "")},
			want: "REFUSED: the metallb.io objects do not form a valid configuration; the components keep the last valid one:\n" +
				"  ipaddresspool \"b\": spec.addresses[0]: 192.0.2.7/32 overlaps 192.0.2.0/24 of ipaddresspool \"a\"\n" +
				"ConfigurationState controller: Invalid: ipaddresspool \"b\": overlaps\nConfigurationState x: -\n"},
		{name: "a bad BGPPeer is left out, the rest in use",
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), peerObj(ns, "edge", ""), badPeer},
			want: "BGPPEERS REFUSED: bad; every other object is in use, and each speaker leaves these peers out or runs their last valid version (see its ConfigurationState):\n" +
				"  bgppeer \"bad\": spec.peerAddress: invalid peerAddress: \"not-an-ip\" is not an IP address\n" +
				"valid: 1 pool(s), 1 BGP peer(s), 0 BGP and 0 L2 advertisement(s)\n"},
		{name: "warnings are listed",
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), bgpAdvObj("adv", "ghost")},
			want: "valid: 1 pool(s), 0 BGP peer(s), 1 BGP and 0 L2 advertisement(s)\n" +
				"warning: bgpadvertisement \"adv\": spec.ipAddressPools[0]: ipaddresspool \"ghost\" does not exist (yet); the advertisement applies to it once it does\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := renderSummary(snap(t, tc.objs...), installed, 0, time.Now())
			if got := sectionOf(text, "Configuration"); got != tc.want {
				t.Errorf("Configuration:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func bgpAdvObj(name string, pools ...string) *v1beta1.BGPAdvertisement {
	return &v1beta1.BGPAdvertisement{TypeMeta: tm("metallb.io/v1beta1", "BGPAdvertisement"), ObjectMeta: nsMeta(ns, name), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: pools}}
}

func l2AdvObj(name string, pools ...string) *v1beta1.L2Advertisement {
	return &v1beta1.L2Advertisement{TypeMeta: tm("metallb.io/v1beta1", "L2Advertisement"), ObjectMeta: nsMeta(ns, name), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func bgpStatus(name, svcNS, svc, node string, peers ...string) *v1beta1.ServiceBGPStatus {
	return &v1beta1.ServiceBGPStatus{TypeMeta: tm("metallb.io/v1beta1", "ServiceBGPStatus"), ObjectMeta: nsMeta(ns, name),
		Status: v1beta1.MetalLBServiceBGPStatus{Node: node, ServiceName: svc, ServiceNamespace: svcNS, Peers: peers}}
}

func l2Status(name, svcNS, svc, node string, ifs ...string) *v1beta1.ServiceL2Status {
	st := &v1beta1.ServiceL2Status{TypeMeta: tm("metallb.io/v1beta1", "ServiceL2Status"), ObjectMeta: nsMeta(ns, name),
		Status: v1beta1.MetalLBServiceL2Status{Node: node, ServiceName: svc, ServiceNamespace: svcNS}}
	for _, i := range ifs {
		st.Status.Interfaces = append(st.Status.Interfaces, v1beta1.InterfaceInfo{Name: i})
	}
	return st
}

func TestSummaryServices(t *testing.T) {
	annotated := lbService("web", "annotated", "192.0.2.10")
	annotated.Annotations = map[string]string{lbservice.AnnotationIPAllocatedFromPool: "from-annotation"}
	otherClass := lbService("web", "classy")
	cls := "other.example/lb"
	otherClass.Spec.LoadBalancerClass = &cls
	cases := []struct {
		name   string
		res    Result
		objs   []runtime.Object
		events map[string][]corev1.Event
		want   string
	}{
		{name: "no LoadBalancer Service", res: installed,
			objs: []runtime.Object{&corev1.Service{ObjectMeta: nsMeta("web", "internal")}}, want: "none\n"},
		{name: "pool from the annotation, else from the address; announcers by BGP and L2; nobody", res: installed,
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), poolObj("b", "198.51.100.0/24"), l2AdvObj("l2", "b"),
				annotated, lbService("web", "by-address", "198.51.100.7"), lbService("web", "outside", "203.0.113.1"),
				bgpStatus("s1", "web", "annotated", "n2", "edge"), bgpStatus("s2", "web", "annotated", "n1", "edge", "core"),
				l2Status("s3", "web", "by-address", "n1", "eth0", "eth1"), l2Status("s4", "web", "by-address", "n2")},
			want: "SERVICE         ADDRESS       POOL             ANNOUNCED BY\n" +
				"web/annotated   192.0.2.10    from-annotation  bgp: n1 (peers edge,core), n2 (peers edge)\n" +
				"web/by-address  198.51.100.7  b                l2: n1 (eth0,eth1), n2 (-)\n" +
				"web/outside     203.0.113.1   -                NOBODY (no ServiceBGPStatus or ServiceL2Status: no advertisement covers the pool, no node may announce it, or no session is Established)\n"},
		{name: "no address: the cause, the latest warning event", res: installed,
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), otherClass},
			events: map[string][]corev1.Event{"web/classy": {
				{Type: corev1.EventTypeWarning, Reason: "Old", Message: "older"},
				{Type: corev1.EventTypeWarning, Reason: "AllocationFailed", Message: "newest warning"},
				{Type: corev1.EventTypeNormal, Reason: "Info", Message: "normal after"},
			}},
			want: "SERVICE     ADDRESS  POOL  ANNOUNCED BY\n" +
				"web/classy  <none>   -     -\n" +
				"web/classy has no address. Likely cause: wrong loadBalancerClass: the Service has spec.loadBalancerClass \"other.example/lb\", this stack serves Services without spec.loadBalancerClass (MetalLB spec.loadBalancerClass); another load balancer must serve it, or change the class\n" +
				"  latest warning event: AllocationFailed: newest warning\n"},
		{name: "no address, not installed: that is the cause", res: Result{Namespace: ns},
			objs: []runtime.Object{lbService("web", "pending")},
			want: "SERVICE      ADDRESS  POOL  ANNOUNCED BY\nweb/pending  <none>   -     -\n" +
				"web/pending has no address. Likely cause: lbstack is not installed: nothing assigns addresses to LoadBalancer Services\n"},
		{name: "no address under a refused configuration: the configuration is the cause", res: installed,
			objs: []runtime.Object{poolObj("a", "192.0.2.0/24"), poolObj("b", "192.0.2.1/32"), lbService("web", "pending")},
			want: "SERVICE      ADDRESS  POOL  ANNOUNCED BY\n" +
				"web/pending  <none>   -     -\n" +
				"web/pending has no address. Likely cause: the configuration is refused: ipaddresspool \"b\": spec.addresses[0]: 192.0.2.1/32 overlaps 192.0.2.0/24 of ipaddresspool \"a\"; the controller allocates with the last valid configuration, fix the objects the error names\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := snap(t, tc.objs...)
			s.serviceEvents = tc.events
			text := renderSummary(s, tc.res, 0, time.Now())
			if got := sectionOf(text, "LoadBalancer Services"); got != tc.want {
				t.Errorf("LoadBalancer Services:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestSummarySessions(t *testing.T) {
	since := time.Date(2026, 12, 6, 8, 0, 0, 0, time.FixedZone("x", 3600))
	cases := []struct {
		name     string
		speakers map[string]*speaker.DebugState
		reloader map[string]*frr.StatusDoc
		want     string
	}{
		{name: "nothing reported", want: "no speaker reported its sessions (see errors.txt)\n"},
		{name: "the speaker's view wins; no session; refused config",
			speakers: map[string]*speaker.DebugState{
				"n1": {Sessions: []speaker.DebugSession{{Name: "edge", PeerAddress: "192.0.2.1", VRF: "red", State: "Established", Since: since, Advertised: 3}}},
				"n2": {ConfigError: "bgppeer \"x\": bad"},
			},
			reloader: map[string]*frr.StatusDoc{"n1": {Sessions: []bgp.SessionStatus{{Name: "ignored", State: "Idle"}}}},
			want: "NODE  PEER                                ADDRESS    VRF  STATE        SINCE                 PREFIXES  SOURCE\n" +
				"n1    edge                                192.0.2.1  red  Established  2026-12-06T07:00:00Z  3         speaker\n" +
				"n2    (none)                                                                                           speaker\n" +
				"n2    (config refused: bgppeer \"x\": bad)                                                               speaker\n"},
		{name: "the reloader's report when the speaker's is missing, its error and BFD peers",
			reloader: map[string]*frr.StatusDoc{"n3": {
				Error:    "vtysh: line 3: unknown command",
				Sessions: []bgp.SessionStatus{{Name: "edge", PeerAddr: netip.MustParseAddr("192.0.2.1"), State: "Active"}, {Name: "dyn", State: "Idle"}},
				BFDPeers: []frr.BFDPeer{{Peer: netip.MustParseAddr("192.0.2.1"), Status: "down", ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3}},
			}},
			want: "NODE  PEER                                                  ADDRESS    VRF  STATE   SINCE  PREFIXES  SOURCE\n" +
				"n3    edge                                                  192.0.2.1  -    Active  -      0         frr-reloader\n" +
				"n3    dyn                                                              -    Idle    -      0         frr-reloader\n" +
				"n3    (FRR reload failing: vtysh: line 3: unknown command)                                           frr-reloader\n" +
				"BFD peers:\n" +
				"  n3: peer 192.0.2.1 vrf - status down (rx 300 ms, tx 300 ms, multiplier 3)\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := snap(t)
			s.speakerState, s.reloaderStatus = tc.speakers, tc.reloader
			text := renderSummary(s, installed, 0, time.Now())
			if got := sectionOf(text, "BGP sessions"); got != tc.want {
				t.Errorf("BGP sessions:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestSummarySymmetricRoutingAndCollection(t *testing.T) {
	sr := &lbstackv1alpha1.SymmetricRouting{TypeMeta: tm("lbstack.io/v1alpha1", "SymmetricRouting"), ObjectMeta: metav1.ObjectMeta{Name: "edge"}}
	sr.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: "Findings", Message: "2 findings"}}
	sr.Status.Findings = []string{"Error VRFNotDefined spec.vrf: no policy", "Warning X -: y"}
	es := unstructuredNamed("k8s.ovn.org/v1", "EgressService", "web", "svc")
	_ = unstructured.SetNestedField(es.Object, "red", "spec", "network")
	cases := []struct {
		name     string
		objs     []runtime.Object
		checked  bool
		findings []symrouting.Finding
		failures int
		wantSym  string
		wantColl string
	}{
		{name: "no SymmetricRouting and not checked: no section", wantSym: "", wantColl: "everything was collected\n"},
		{name: "checked, consistent", checked: true, failures: 2,
			wantSym:  "checks (pkg/symrouting, as the operator runs them; symmetric-routing/findings.txt): consistent: every check passes\n",
			wantColl: "2 item(s) could not be collected: see errors.txt\n"},
		{name: "findings, SymmetricRouting status and EgressServices", checked: true, objs: []runtime.Object{sr, es},
			findings: []symrouting.Finding{{Check: "VRFNotDefined", Severity: symrouting.Error, Field: "spec.vrf", Message: "no policy"}, {Check: "Other", Severity: symrouting.Warning, Message: "hm"}},
			wantSym: "checks (pkg/symrouting, as the operator runs them; symmetric-routing/findings.txt): Error VRFNotDefined spec.vrf: no policy\nWarning Other -: hm\n" +
				"SymmetricRouting edge: Ready=False (Findings: 2 findings)\n  Error VRFNotDefined spec.vrf: no policy\n  Warning X -: y\n" +
				"EgressService web/svc: network \"red\", host -\n",
			wantColl: "everything was collected\n"},
		{name: "a SymmetricRouting without the checks having run", objs: []runtime.Object{sr},
			wantSym:  "SymmetricRouting edge: Ready=False (Findings: 2 findings)\n  Error VRFNotDefined spec.vrf: no policy\n  Warning X -: y\n",
			wantColl: "everything was collected\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := snap(t, tc.objs...)
			s.symChecked, s.symFindings = tc.checked, tc.findings
			text := renderSummary(s, installed, tc.failures, time.Now())
			if got := sectionOf(text, "Symmetric routing"); got != tc.wantSym {
				t.Errorf("Symmetric routing:\n%s\nwant:\n%s", got, tc.wantSym)
			}
			if got := sectionOf(text, "Collection"); got != tc.wantColl {
				t.Errorf("Collection:\n%q\nwant:\n%q", got, tc.wantColl)
			}
		})
	}
}
