package mustgather

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/calico"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
)

// gatherCalico writes, when Calico's CRDs exist, who owns which field of
// Calico's default BGPConfiguration (calico/ownership.txt: lbstack's field
// manager is lbstack-calico), and with bgpBackend calico runs the Calico
// mode's checks the operator runs (pkg/calico) on the cluster as it is
// now (calico/findings.txt). The BGPConfigurations and BGPPeers themselves
// are written by gatherNetwork.
func (g *gatherer) gatherCalico(ctx context.Context) {
	const findingsPath, ownershipPath = "calico/findings.txt", "calico/ownership.txt"
	r, ok := g.lookup(calicov1.GroupVersion.Group, "bgpconfigurations")
	if !ok {
		return
	}
	l, err := g.list(ctx, r, "", metav1.ListOptions{})
	if err != nil {
		g.fail(ownershipPath, fmt.Errorf("list %s: %w", r.gvr.String(), err))
		return
	}
	var def *unstructured.Unstructured
	for i := range l.Items {
		if l.Items[i].GetName() == calicov1.DefaultBGPConfigurationName {
			def = &l.Items[i]
		}
	}
	g.writeFile(ownershipPath, []byte(ownership(def)))

	metallbs := typed[v1beta1.MetalLB](g.snap.get("metallb.io", "metallbs"))
	if len(metallbs) == 0 || metallbs[0].Spec.BGPType != v1beta1.BGPTypeCalico {
		g.writeFile(findingsPath, []byte("Nothing to check: no MetalLB object has spec.bgpBackend calico.\n"))
		return
	}
	built := buildConfig(&g.snap)
	if built.Config == nil {
		g.writeFile(findingsPath, []byte(fmt.Sprintf("Not checked: the metallb.io configuration is refused: %v\n", built.Err())))
		return
	}
	in := calico.Inputs{Config: built.Config, Namespace: g.snap.namespace, CurrentRead: true, LBClass: metallbs[0].Spec.LoadBalancerClass}
	if def != nil {
		var bc calicov1.BGPConfiguration
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(def.Object, &bc); err != nil {
			g.fail(findingsPath, fmt.Errorf("decode bgpconfiguration.crd.projectcalico.org default: %w", err))
			return
		}
		in.Current = &bc.Spec
	}
	if _, ok := g.lookup(calicov1.GroupVersion.Group, "bgppeers"); ok {
		in.CalicoBGPPeersListed = true
		for _, p := range typed[calicov1.BGPPeer](g.snap.get(calicov1.GroupVersion.Group, "bgppeers")) {
			in.CalicoBGPPeers = append(in.CalicoBGPPeers, calico.CalicoBGPPeer{Name: p.Name, Spec: p.Spec})
		}
	}
	for i := range g.snap.services {
		in.Services = append(in.Services, &g.snap.services[i])
	}
	findings := calico.Check(in)
	g.snap.mu.Lock()
	g.snap.calicoChecked, g.snap.calicoFindings = true, findings
	g.snap.mu.Unlock()
	g.writeFile(findingsPath, []byte(formatFindings(findings)))
}

// ownership is one line per field manager of the default
// BGPConfiguration: the spec fields it owns, and how it wrote them.
func ownership(def *unstructured.Unstructured) string {
	if def == nil {
		return "bgpconfiguration.crd.projectcalico.org \"default\" does not exist: Calico announces no LoadBalancer address (lbstack never creates it).\n"
	}
	var b strings.Builder
	b.WriteString("# field manager (operation): spec fields it owns of bgpconfiguration.crd.projectcalico.org \"default\"; lbstack's is lbstack-calico\n")
	for _, e := range def.GetManagedFields() {
		var fields []string
		if e.FieldsV1 != nil {
			var top map[string]json.RawMessage
			var spec map[string]json.RawMessage
			if json.Unmarshal(e.FieldsV1.Raw, &top) == nil && top["f:spec"] != nil && json.Unmarshal(top["f:spec"], &spec) == nil {
				for _, k := range slices.Sorted(maps.Keys(spec)) {
					if k != "." {
						fields = append(fields, "spec."+strings.TrimPrefix(k, "f:"))
					}
				}
			}
		}
		fmt.Fprintf(&b, "%s (%s): %s\n", e.Manager, e.Operation, orDash(strings.Join(fields, ", ")))
	}
	return b.String()
}

// calicoSection is summary.txt's Calico part.
func calicoSection(b *strings.Builder, s *snapshot) {
	if !s.calicoChecked {
		return
	}
	section(b, "Calico announcement mode")
	b.WriteString("checks (pkg/calico, as the operator runs them; calico/findings.txt, calico/ownership.txt): ")
	b.WriteString(formatFindings(s.calicoFindings))
}
