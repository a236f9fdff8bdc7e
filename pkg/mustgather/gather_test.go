package mustgather

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

const ns = DefaultNamespace

func tm(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

func nsMeta(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name, UID: types.UID("uid-" + namespace + "-" + name)}
}

func metallbObj(namespace, name string) *v1beta1.MetalLB {
	return &v1beta1.MetalLB{TypeMeta: tm("metallb.io/v1beta1", "MetalLB"), ObjectMeta: nsMeta(namespace, name)}
}

func poolObj(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{TypeMeta: tm("metallb.io/v1beta1", "IPAddressPool"), ObjectMeta: nsMeta(ns, name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func peerObj(namespace, name, password string) *v1beta2.BGPPeer {
	return &v1beta2.BGPPeer{TypeMeta: tm("metallb.io/v1beta2", "BGPPeer"), ObjectMeta: nsMeta(namespace, name),
		Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "192.0.2.1", Password: password}}
}

func secretObj(namespace, name string, typ corev1.SecretType, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: nsMeta(namespace, name), Type: typ, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func lbService(namespace, name string, ips ...string) *corev1.Service {
	s := &corev1.Service{TypeMeta: tm("v1", "Service"), ObjectMeta: nsMeta(namespace, name), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func runningPod(name, node string, labels map[string]string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{TypeMeta: tm("v1", "Pod"), ObjectMeta: nsMeta(ns, name), Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	p.Labels = labels
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	}
	return p
}

// speakerExec answers the commands a speaker pod is asked, as a healthy
// FRR speaker on node n1 would.
func speakerExec(running string) func(c execCall) execResult {
	return func(c execCall) execResult {
		switch {
		case c.cmd == "vtysh -c show running-config":
			return execResult{Stdout: []byte(running)}
		case strings.HasPrefix(c.cmd, "vtysh -c "):
			return execResult{Stdout: []byte("{}\n")}
		case c.cmd == "cat /etc/lbstack-frr/lbstack-status.json":
			return execResult{Stdout: []byte(`{"generation":1,"sessions":[{"name":"edge","peerAddr":"192.0.2.1","state":"Established"}]}`)}
		case strings.HasPrefix(c.cmd, "cat "):
			return execResult{Stdout: []byte("contents of " + strings.TrimPrefix(c.cmd, "cat ") + "\n")}
		case strings.HasPrefix(c.cmd, "ip "):
			return execResult{Stdout: []byte(c.cmd + " output\n")}
		case strings.HasPrefix(c.cmd, "/usr/bin/lbstack speaker-state"):
			st := speaker.DebugState{Node: "n1", BGPBackend: "frr", Sessions: []speaker.DebugSession{{Name: "edge", PeerAddress: "192.0.2.1", State: "Established", Advertised: 2}}}
			b, _ := json.Marshal(st)
			return execResult{Stdout: b}
		}
		return execResult{Err: errors.New("unexpected command " + c.cmd)}
	}
}

// fullCluster is an installed stack with one FRR speaker, one
// LoadBalancer Service with an address and one without.
func fullCluster() *cluster {
	node := &corev1.Node{TypeMeta: tm("v1", "Node"), ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"egress-service.k8s.ovn.org/web-x": ""}},
		Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"quay.io/huge/image"}}}}}
	speakerPod := runningPod("speaker-abc", "n1", map[string]string{"component": "speaker"}, "speaker", "frr", "reloader")
	speakerPod.Spec.InitContainers = []corev1.Container{{Name: "cp-frr-files"}}
	speakerPod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "cp-frr-files", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}}
	controllerPod := runningPod("controller-xyz", "n1", map[string]string{"component": "controller"}, "controller")
	web := lbService("default", "web", "203.0.113.5")
	web.Annotations = map[string]string{lbservice.AnnotationIPAllocatedFromPool: "a"}
	pending := lbService("default", "pending")
	clusterIP := &corev1.Service{TypeMeta: tm("v1", "Service"), ObjectMeta: nsMeta("default", "internal"), Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}
	slice := &discoveryv1.EndpointSlice{TypeMeta: tm("discovery.k8s.io/v1", "EndpointSlice"), ObjectMeta: nsMeta("default", "web-1")}
	slice.Labels = map[string]string{"kubernetes.io/service-name": "web"}
	otherSlice := &discoveryv1.EndpointSlice{TypeMeta: tm("discovery.k8s.io/v1", "EndpointSlice"), ObjectMeta: nsMeta("default", "internal-1")}
	otherSlice.Labels = map[string]string{"kubernetes.io/service-name": "internal"}
	warn := &corev1.Event{ObjectMeta: nsMeta("default", "pending.1"), InvolvedObject: corev1.ObjectReference{UID: pending.UID},
		Type: corev1.EventTypeWarning, Reason: "AllocationFailed", Message: "no available IPs"}
	replicas := int32(1)
	dep := &appsv1.Deployment{TypeMeta: tm("apps/v1", "Deployment"), ObjectMeta: nsMeta(ns, "controller"), Spec: appsv1.DeploymentSpec{Replicas: &replicas}, Status: appsv1.DeploymentStatus{ReadyReplicas: 1}}
	ds := &appsv1.DaemonSet{TypeMeta: tm("apps/v1", "DaemonSet"), ObjectMeta: nsMeta(ns, "speaker"), Status: appsv1.DaemonSetStatus{DesiredNumberScheduled: 1, NumberReady: 1}}
	peer := peerObj(ns, "edge", "peer-pass-123")
	crdOurs := &unstructuredCRD{name: "ipaddresspools.metallb.io", group: "metallb.io"}
	crdOther := &unstructuredCRD{name: "widgets.example.com", group: "example.com"}
	vwcOurs := unstructuredNamed("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "lbstack-validating-webhook-configuration")
	vwcOther := unstructuredNamed("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "cert-manager-webhook")
	return &cluster{
		resources: append(append([]apiRes(nil), coreResources...), metallbResources...),
		kube: []runtime.Object{
			&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
			node, speakerPod, controllerPod, web, pending, clusterIP, slice, otherSlice, warn,
			secretObj(ns, "memberlist", corev1.SecretTypeOpaque, map[string]string{"secretkey": "memberlist-secret-value"}),
			secretObj(ns, "bgp-auth", corev1.SecretTypeBasicAuth, map[string]string{"password": "pw"}),
		},
		dyn: []runtime.Object{metallbObj(ns, "metallb"), poolObj("a", "203.0.113.0/24"), peer, dep, ds,
			crdOurs.object(), crdOther.object(), vwcOurs, vwcOther,
			secretObj(ns, "memberlist", corev1.SecretTypeOpaque, map[string]string{"secretkey": "memberlist-secret-value"})},
		logs: func(namespace, pod string, opts *corev1.PodLogOptions) (*http.Response, error) {
			return okBody("started; memberlist key memberlist-secret-value; user pw logged in\n")
		},
		exec: speakerExec("router bgp 64512\n neighbor 192.0.2.1 password peer-pass-123\n!\nvrf red\n exit-vrf\n"),
	}
}

func symReaderFor(t *testing.T, objs ...runtime.Object) *crfakeReader {
	s := scheme.New()
	if err := load.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return &crfakeReader{crfake.NewClientBuilder().WithScheme(s).WithRuntimeObjects(objs...).Build()}
}

// TestFullGatherLayout runs a whole gather against a fake cluster and
// checks every file written, and what the key ones hold.
func TestFullGatherLayout(t *testing.T) {
	c := fullCluster()
	g := c.gatherer(t)
	g.symReader = symReaderFor(t, peerObj(ns, "edge", "peer-pass-123"))
	res, err := g.run(context.Background())
	files := tree(t, g.opts.DestDir)
	if err != nil {
		t.Fatalf("run: %v\nerrors.txt:\n%s", err, files["errors.txt"])
	}
	if res.Namespace != ns || res.Found != "the MetalLB object metallb-system/metallb" || !res.OperatorInstalled || len(res.Failures) != 0 {
		t.Errorf("result %+v", res)
	}
	got := strings.Join(keys(files), "\n")
	want := strings.Join([]string{
		"calico/ABSENT.txt",
		"cluster/api-resources.txt",
		"cluster/clusterroles.yaml",
		"cluster/crds.txt",
		"cluster/nodes.yaml",
		"cluster/validatingwebhookconfigurations.yaml",
		"errors.txt",
		"gather-info.txt",
		"lbstack.io/ABSENT.txt",
		"metallb.io/bfdprofiles.yaml",
		"metallb.io/bgpadvertisements.yaml",
		"metallb.io/bgppeers.yaml",
		"metallb.io/communities.yaml",
		"metallb.io/configurationstates.yaml",
		"metallb.io/ipaddresspools.yaml",
		"metallb.io/l2advertisements.yaml",
		"metallb.io/metallbs.yaml",
		"metallb.io/servicebgpstatuses.yaml",
		"metallb.io/servicel2statuses.yaml",
		"namespaces/metallb-system/configmaps.yaml",
		"namespaces/metallb-system/daemonsets.yaml",
		"namespaces/metallb-system/deployments.yaml",
		"namespaces/metallb-system/events.yaml",
		"namespaces/metallb-system/namespace.yaml",
		"namespaces/metallb-system/pods/controller-xyz/events.yaml",
		"namespaces/metallb-system/pods/controller-xyz/logs/controller.log",
		"namespaces/metallb-system/pods/controller-xyz/pod.yaml",
		"namespaces/metallb-system/pods/speaker-abc/events.yaml",
		"namespaces/metallb-system/pods/speaker-abc/logs/cp-frr-files.log",
		"namespaces/metallb-system/pods/speaker-abc/logs/frr.log",
		"namespaces/metallb-system/pods/speaker-abc/logs/reloader.log",
		"namespaces/metallb-system/pods/speaker-abc/logs/speaker.log",
		"namespaces/metallb-system/pods/speaker-abc/pod.yaml",
		"namespaces/metallb-system/secrets.txt",
		"namespaces/metallb-system/serviceaccounts.yaml",
		"namespaces/metallb-system/services.yaml",
		"nmstate/ABSENT.txt",
		"olm/ABSENT.txt",
		"openshift/ABSENT.txt",
		"ovn/ABSENT.txt",
		"ovn/egress-node-labels.txt",
		"services/default/pending/endpointslices.yaml",
		"services/default/pending/events.yaml",
		"services/default/pending/service.yaml",
		"services/default/web/endpointslices.yaml",
		"services/default/web/events.yaml",
		"services/default/web/service.yaml",
		"speakers/n1/frr/bfd-peers-vrf-red.json",
		"speakers/n1/frr/bfd-peers.json",
		"speakers/n1/frr/bgp-ipv4.json",
		"speakers/n1/frr/bgp-ipv6.json",
		"speakers/n1/frr/bgp-neighbors.json",
		"speakers/n1/frr/bgp-summary.json",
		"speakers/n1/frr/desired-state.json",
		"speakers/n1/frr/frr.conf",
		"speakers/n1/frr/reloader-status.json",
		"speakers/n1/frr/rendered.conf",
		"speakers/n1/frr/running-config.txt",
		"speakers/n1/node/ip-route-all.txt",
		"speakers/n1/node/ip-rule.txt",
		"speakers/n1/node/ip6-route-all.txt",
		"speakers/n1/node/ip6-rule.txt",
		"speakers/n1/pod.txt",
		"speakers/n1/speaker-state.json",
		"summary.txt",
		"symmetric-routing/findings.txt",
		"version",
	}, "\n")
	if got != want {
		t.Errorf("files:\n%s\nwant:\n%s", got, want)
	}
	for path, content := range files {
		for _, leak := range []string{"memberlist-secret-value", "peer-pass-123", "bWVtYmVybGlzdC1zZWNyZXQtdmFsdWU="} {
			if strings.Contains(content, leak) {
				t.Errorf("%s holds the secret value %q", path, leak)
			}
		}
	}
	exact := map[string]string{
		"errors.txt":                            "",
		"namespaces/metallb-system/secrets.txt": "# Secrets: names and types only, never their data.\nbgp-auth\tkubernetes.io/basic-auth\nmemberlist\tOpaque\n",
		"namespaces/metallb-system/pods/speaker-abc/logs/speaker.log": "started; memberlist key <redacted>; user <redacted> logged in\n",
		"speakers/n1/frr/running-config.txt":                          "router bgp 64512\n neighbor 192.0.2.1 password <redacted>\n!\nvrf red\n exit-vrf\n",
		"speakers/n1/frr/frr.conf":                                    "contents of /etc/frr/frr.conf\n",
		"speakers/n1/node/ip-rule.txt":                                "ip rule output\n",
		"speakers/n1/pod.txt":                                         "pod: metallb-system/speaker-abc\nphase: Running\n",
		"cluster/crds.txt":                                            "ipaddresspools.metallb.io\tv1beta1(served=true,storage=true)\n",
		"ovn/egress-node-labels.txt":                                  "# node\tegress-service.k8s.ovn.org/* labels (set by OVN-Kubernetes on each EgressService's host)\nn1\tegress-service.k8s.ovn.org/web-x=\n",
		"symmetric-routing/findings.txt":                              "Nothing to check: no BGPPeer with spec.vrf and no EgressService.\n",
		"nmstate/ABSENT.txt":                                          "NMState (nmstate.io) is not installed.\n",
		"olm/ABSENT.txt":                                              "OLM (operators.coreos.com) is not installed.\n",
		"openshift/ABSENT.txt":                                        "This is not OpenShift: no config.openshift.io Network.\n",
		"ovn/ABSENT.txt":                                              "OVN-Kubernetes' EgressService API (k8s.ovn.org) is not installed.\n",
		"lbstack.io/ABSENT.txt":                                       "The lbstack.io API is not served by this cluster: its CRDs are not installed.\n",
	}
	for path, want := range exact {
		if files[path] != want {
			t.Errorf("%s:\n%s\nwant:\n%s", path, files[path], want)
		}
	}
	contains := map[string][]string{
		"metallb.io/bgppeers.yaml":                     {"password: <redacted>", "peerAddress: 192.0.2.1"},
		"cluster/validatingwebhookconfigurations.yaml": {"name: lbstack-validating-webhook-configuration"},
		"services/default/web/endpointslices.yaml":     {"name: web-1"},
		"gather-info.txt":                              {"namespace: metallb-system (the MetalLB object metallb-system/metallb)\noperator installed: true\nfailures: 0\n"},
		"summary.txt": {
			"MetalLB metallb-system/metallb: bgpBackend frr (default); no conditions reported\ndeployment controller: 1/1 ready\ndaemonset speaker: 1/1 ready\n",
			"default/pending has no address. Likely cause: ",
			"  latest warning event: AllocationFailed: no available IPs\n",
			"n1    edge  192.0.2.1  -    Established  -      2         speaker\n",
			"== Collection\neverything was collected\n",
		},
	}
	notContains := map[string][]string{
		"cluster/validatingwebhookconfigurations.yaml": {"cert-manager"},
		"services/default/web/endpointslices.yaml":     {"internal-1"},
		"cluster/nodes.yaml":                           {"quay.io/huge/image"},
		"cluster/crds.txt":                             {"widgets.example.com"},
		"metallb.io/bgppeers.yaml":                     {"managedFields"},
	}
	for path, subs := range contains {
		for _, sub := range subs {
			if !strings.Contains(files[path], sub) {
				t.Errorf("%s lacks %q:\n%s", path, sub, files[path])
			}
		}
	}
	for path, subs := range notContains {
		for _, sub := range subs {
			if strings.Contains(files[path], sub) {
				t.Errorf("%s holds %q:\n%s", path, sub, files[path])
			}
		}
	}
	// The speaker pod's commands, in order; the controller pod is no
	// speaker and is not exec'd into.
	var calls []string
	for _, e := range c.execs {
		calls = append(calls, e.pod+" "+e.container+": "+e.cmd)
	}
	wantCalls := []string{
		"speaker-abc frr: vtysh -c show running-config",
		"speaker-abc frr: vtysh -c show bgp vrf all summary json",
		"speaker-abc frr: vtysh -c show bgp vrf all ipv4 json",
		"speaker-abc frr: vtysh -c show bgp vrf all ipv6 json",
		"speaker-abc frr: vtysh -c show bgp vrf all neighbors json",
		"speaker-abc frr: vtysh -c show bfd peers json",
		"speaker-abc frr: vtysh -c show bfd vrf red peers json",
		"speaker-abc frr: cat /etc/frr/frr.conf",
		"speaker-abc reloader: cat /etc/lbstack-frr/lbstack-rendered.conf",
		"speaker-abc reloader: cat /etc/lbstack-frr/lbstack-status.json",
		"speaker-abc reloader: cat /etc/lbstack-frr/lbstack-desired.json",
		"speaker-abc frr: ip rule",
		"speaker-abc frr: ip -6 rule",
		"speaker-abc frr: ip route show table all",
		"speaker-abc frr: ip -6 route show table all",
		"speaker-abc speaker: /usr/bin/lbstack speaker-state --url http://" + speaker.DefaultLocalAddr + speaker.DebugStatePath,
	}
	if strings.Join(calls, "\n") != strings.Join(wantCalls, "\n") {
		t.Errorf("exec calls:\n%s\nwant:\n%s", strings.Join(calls, "\n"), strings.Join(wantCalls, "\n"))
	}
}
