package mustgather

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// gatherServices writes every type LoadBalancer Service, of every
// namespace, with its EndpointSlices and events.
func (g *gatherer) gatherServices(ctx context.Context) {
	svcs, err := g.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		g.fail("services", err)
		return
	}
	g.snap.services = svcs.Items
	n := 0
	for i := range svcs.Items {
		s := &svcs.Items[i]
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		n++
		dir := fmt.Sprintf("services/%s/%s/", s.Namespace, s.Name)
		clean := s.DeepCopy()
		clean.ManagedFields = nil
		g.writeYAML(dir+"service.yaml", clean)
		eps, err := g.kube.DiscoveryV1().EndpointSlices(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + s.Name})
		if err != nil {
			g.fail(dir+"endpointslices.yaml", err)
		} else {
			for j := range eps.Items {
				eps.Items[j].ManagedFields = nil
			}
			eps.APIVersion, eps.Kind = "v1", "List"
			g.writeYAML(dir+"endpointslices.yaml", eps)
		}
		g.snap.setServiceEvents(s.Namespace+"/"+s.Name, g.writeEvents(ctx, dir+"events.yaml", s.Namespace, string(s.UID)))
	}
	if n == 0 {
		g.writeFile("services/NONE.txt", []byte("No Service of type LoadBalancer exists.\n"))
	}
	if nss, err := g.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
		g.snap.namespaces = nss.Items
	} else {
		g.fail("(summary) namespaces", err)
	}
}

// gatherNetwork writes the nodes and, when their APIs exist, NMState's
// policies, states and enactments, OVN's EgressServices (and the egress
// labels OVN put on nodes), and OpenShift's cluster network configuration.
func (g *gatherer) gatherNetwork(ctx context.Context) {
	nodes, err := g.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		g.fail("cluster/nodes.yaml", err)
	} else {
		g.snap.nodes = nodes.Items
		clean := nodes.DeepCopy()
		for i := range clean.Items {
			clean.Items[i].ManagedFields = nil
			// The image list is long and says nothing about networking.
			clean.Items[i].Status.Images = nil
		}
		clean.APIVersion, clean.Kind = "v1", "List"
		g.writeYAML("cluster/nodes.yaml", clean)
		var b strings.Builder
		for _, n := range nodes.Items {
			var labels []string
			for k, v := range n.Labels {
				if strings.HasPrefix(k, ovnv1.NodeLabelPrefix) {
					labels = append(labels, k+"="+v)
				}
			}
			sort.Strings(labels)
			fmt.Fprintf(&b, "%s\t%s\n", n.Name, strings.Join(labels, ","))
		}
		g.writeFile("ovn/egress-node-labels.txt", []byte("# node\tegress-service.k8s.ovn.org/* labels (set by OVN-Kubernetes on each EgressService's host)\n"+b.String()))
	}
	optional := []struct {
		group, plural, path, absent string
	}{
		{"nmstate.io", "nodenetworkconfigurationpolicies", "nmstate/nodenetworkconfigurationpolicies.yaml", "NMState (nmstate.io) is not installed."},
		{"nmstate.io", "nodenetworkstates", "nmstate/nodenetworkstates.yaml", ""},
		{"nmstate.io", "nodenetworkconfigurationenactments", "nmstate/nodenetworkconfigurationenactments.yaml", ""},
		{"k8s.ovn.org", "egressservices", "ovn/egressservices.yaml", "OVN-Kubernetes' EgressService API (k8s.ovn.org) is not installed."},
		{"config.openshift.io", "networks", "openshift/networks.config.openshift.io.yaml", "This is not OpenShift: no config.openshift.io Network."},
		{"operator.openshift.io", "networks", "openshift/networks.operator.openshift.io.yaml", ""},
		// The Calico announcement mode: Calico's CRDs (what lbstack
		// writes) and, when Calico's API server runs, its v3 view.
		{"crd.projectcalico.org", "bgpconfigurations", "calico/bgpconfigurations.crd.projectcalico.org.yaml", "Calico's CRDs (crd.projectcalico.org) are not installed."},
		{"crd.projectcalico.org", "bgppeers", "calico/bgppeers.crd.projectcalico.org.yaml", ""},
		{"projectcalico.org", "bgpconfigurations", "calico/bgpconfigurations.projectcalico.org.yaml", ""},
		{"projectcalico.org", "bgppeers", "calico/bgppeers.projectcalico.org.yaml", ""},
	}
	for _, o := range optional {
		r, ok := g.lookup(o.group, o.plural)
		if !ok {
			if o.absent != "" {
				g.writeFile(strings.SplitN(o.path, "/", 2)[0]+"/ABSENT.txt", []byte(o.absent+"\n"))
			}
			continue
		}
		if l := g.dump(ctx, o.path, r, "", nil); l != nil {
			g.snap.add(o.group, o.plural, l.Items)
		}
	}
}

// nested reads a string field of u, "" when absent.
func nested(u *unstructured.Unstructured, fields ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, fields...)
	return s
}
