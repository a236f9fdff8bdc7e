package mustgather

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/symrouting"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

// gatherSymmetricRouting runs the symmetric-routing checks the operator
// runs (pkg/symrouting) on the cluster as it is now, and writes every
// finding: a cluster where the operator is down or its events expired
// still tells its story.
func (g *gatherer) gatherSymmetricRouting(ctx context.Context) {
	const path = "symmetric-routing/findings.txt"
	if _, ok := g.lookup("metallb.io", "bgppeers"); !ok {
		return
	}
	_, nncp := g.lookup("nmstate.io", "nodenetworkconfigurationpolicies")
	_, nns := g.lookup("nmstate.io", "nodenetworkstates")
	_, nnce := g.lookup("nmstate.io", "nodenetworkconfigurationenactments")
	_, es := g.lookup("k8s.ovn.org", "egressservices")
	_, cfgNet := g.lookup("config.openshift.io", "networks")
	_, opNet := g.lookup("operator.openshift.io", "networks")
	apis := load.APIs{NMState: nncp && nns && nnce, OVN: es, ConfigNetwork: cfgNet, OperatorNetwork: opNet}
	var c client.Reader = g.symReader
	if c == nil {
		s := scheme.New()
		if err := load.AddToScheme(s); err != nil {
			g.fail(path, err)
			return
		}
		var err error
		if c, err = client.New(g.rest, client.Options{Scheme: s}); err != nil {
			g.fail(path, err)
			return
		}
	}
	st, err := load.Load(ctx, c, g.res.Namespace, apis)
	if err != nil {
		g.fail(path, fmt.Errorf("read the objects symmetric routing checks: %w", err))
		return
	}
	if !st.Checked() {
		g.writeFile(path, []byte("Nothing to check: no BGPPeer with spec.vrf and no EgressService.\n"))
		return
	}
	findings := symrouting.Check(st.Inputs)
	g.snap.symChecked, g.snap.symFindings = true, findings
	g.writeFile(path, []byte(formatFindings(findings)))
}

// formatFindings is one line per finding: severity, check, field, message.
func formatFindings(fs []symrouting.Finding) string {
	if len(fs) == 0 {
		return "consistent: every check passes\n"
	}
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s %s %s: %s\n", f.Severity, f.Check, orDash(f.Field), f.Message)
	}
	return b.String()
}
