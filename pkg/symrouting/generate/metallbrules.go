package generate

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
)

// The BGPPeer and the IPAddressPools a SymmetricRouting generates must pass
// the rules MetalLB's objects pass at admission. pkg/config holds those
// rules; Validate runs them on the generated objects (config.Build) and
// reports each problem at the SymmetricRouting field it comes from, so that
// the rules are written once. Each object is built alone: how the objects
// of one declaration relate (duplicate pool names) is Validate's own
// check, and how they fit the cluster's other objects (overlapping pools,
// two peers for one session) is admission's, which sees them.

// buildName is the name the generated objects are built under: their
// names follow the SymmetricRouting's rules, checked by Validate, and may
// be empty while the declaration is incomplete.
const buildName = "generated"

// fieldSource maps the fields of a generated object that come from the
// SymmetricRouting, by prefix, to the SymmetricRouting field.
type fieldSource struct {
	prefix string
	path   *field.Path
	value  any
	// said: the SymmetricRouting's own checks have reported what is
	// wrong with the source; its problems are left out.
	said bool
}

// validateGeneratedPeer runs the BGPPeer rules of pkg/config on the peer
// sr generates. A problem at a path errs already names is left out: the
// SymmetricRouting's own check said it first, and said it in its terms.
func validateGeneratedPeer(sr *v1alpha1.SymmetricRouting, errs field.ErrorList) field.ErrorList {
	p := peer(sr, "")
	p.Name = buildName
	r := config.Build(config.Resources{Peers: []v1beta2.BGPPeer{*p}}, config.Options{})
	sp := sr.Spec.Peer
	peerPath := field.NewPath("spec", "peer")
	vrfPath := field.NewPath("spec", "vrf")
	var holdTime any
	if sp.HoldTime != nil {
		holdTime = sp.HoldTime.Duration.String()
	}
	sources := []fieldSource{
		{prefix: "spec.myASN", path: peerPath.Child("myASN"), value: sp.MyASN},
		{prefix: "spec.peerASN", path: peerPath.Child("peerASN"), value: sp.ASN},
		{prefix: "spec.peerAddress", path: peerPath.Child("peerAddress"), value: sp.Address},
		{prefix: "spec.peerPort", path: peerPath.Child("peerPort"), value: sp.Port},
		// keepaliveTime is derived from holdTime.
		{prefix: "spec.holdTime", path: peerPath.Child("holdTime"), value: holdTime},
		{prefix: "spec.keepaliveTime", path: peerPath.Child("holdTime"), value: holdTime},
		{prefix: "spec.passwordSecret", path: peerPath.Child("passwordSecret"), value: sp.PasswordSecret},
		{prefix: "spec.bfdProfile", path: peerPath.Child("bfdProfile"), value: sp.BFDProfile},
		{prefix: "spec.vrf", path: vrfPath.Child("name"), value: sr.Spec.VRF.Name},
		// The peer's node selector is spec.vrf.nodeSelector and the
		// nodes of spec.vrf.nodeAddresses; Validate checks the latter.
		{prefix: "spec.nodeSelectors", path: vrfPath.Child("nodeSelector"), value: sr.Spec.VRF.NodeSelector},
	}
	sources[len(sources)-1].said = hasErrorUnder(errs, vrfPath.Child("nodeAddresses"))
	return mapProblems(r.Errors, sources, peerPath, errs)
}

// validateGeneratedPool runs the IPAddressPool rules of pkg/config on the
// pool generated for the Service at p.
func validateGeneratedPool(sr *v1alpha1.SymmetricRouting, svc v1alpha1.SymmetricService, p *field.Path, errs field.ErrorList) field.ErrorList {
	obj := pool(sr, svc, "")
	obj.Name = buildName
	r := config.Build(config.Resources{Pools: []v1beta1.IPAddressPool{*obj}}, config.Options{})
	var sources []fieldSource
	for i, a := range svc.Addresses {
		// The pool's spec.addresses are the Service's addresses, in order.
		sources = append(sources, fieldSource{prefix: fmt.Sprintf("spec.addresses[%d]", i), path: p.Child("addresses").Index(i), value: a})
	}
	sources = append(sources, fieldSource{prefix: "spec.addresses", path: p.Child("addresses"), value: svc.Addresses})
	return mapProblems(r.Errors, sources, p, errs)
}

// mapProblems turns config problems into field errors at the
// SymmetricRouting fields sources name; a problem of another field is
// reported at fallback, naming the generated field. Problems at a path
// errs (or an earlier problem) already has an error for are left out.
func mapProblems(problems []config.Problem, sources []fieldSource, fallback *field.Path, errs field.ErrorList) field.ErrorList {
	var out field.ErrorList
	taken := func(path string) bool {
		for _, e := range append(errs, out...) {
			if e.Field == path {
				return true
			}
		}
		return false
	}
	for _, pr := range problems {
		src, ok := sourceOf(pr.Field, sources)
		if !ok {
			out = append(out, field.Invalid(fallback, "", fmt.Sprintf("generated %s: %s: %s", pr.Object.Kind, pr.Field, pr.Message)))
			continue
		}
		if src.said || taken(src.path.String()) {
			continue
		}
		out = append(out, field.Invalid(src.path, src.value, inSRTerms(pr.Message, sources)))
	}
	return out
}

// inSRTerms rewrites the generated object's field paths a message quotes
// (an overlap names the other entry: "overlaps spec.addresses[1]") as the
// SymmetricRouting's.
func inSRTerms(msg string, sources []fieldSource) string {
	byLength := slices.Clone(sources)
	slices.SortStableFunc(byLength, func(a, b fieldSource) int { return len(b.prefix) - len(a.prefix) })
	var pairs []string
	for i, s := range byLength {
		token := fmt.Sprintf("\x00%d\x00", i)
		msg = replaceField(msg, s.prefix, token)
		pairs = append(pairs, token, s.path.String())
	}
	return strings.NewReplacer(pairs...).Replace(msg)
}

// replaceField replaces the field path f in msg where it is a whole path
// (not followed by more of a path).
func replaceField(msg, f, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(msg, f)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		end := i + len(f)
		if end < len(msg) && (msg[end] == '.' || msg[end] == '[') {
			b.WriteString(msg[:end])
		} else {
			b.WriteString(msg[:i] + with)
		}
		msg = msg[end:]
	}
}

// sourceOf returns the source of the generated field f: the source whose
// prefix is f, or f's longest prefix ending at a path separator.
func sourceOf(f string, sources []fieldSource) (fieldSource, bool) {
	var best fieldSource
	found := false
	for _, s := range sources {
		if f != s.prefix && !strings.HasPrefix(f, s.prefix+".") && !strings.HasPrefix(f, s.prefix+"[") {
			continue
		}
		if !found || len(s.prefix) > len(best.prefix) {
			best, found = s, true
		}
	}
	return best, found
}

func hasErrorUnder(errs field.ErrorList, p *field.Path) bool {
	for _, e := range errs {
		if e.Field == p.String() || strings.HasPrefix(e.Field, p.String()+".") || strings.HasPrefix(e.Field, p.String()+"[") {
			return true
		}
	}
	return false
}
