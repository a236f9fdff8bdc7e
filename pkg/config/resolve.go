package config

import (
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Resolve is Build for readers that must follow the configuration whether
// or not Build accepts it: the symmetric-routing checks report on a VRF
// peer or an advertisement even while another field of it is refused,
// because the user fixes both at once. It returns Build's Result and a
// Config assembled from every object Build admits (named, in the
// namespace, not a duplicate), each resolved as far as it goes:
//
//   - an invalid value is left at its zero value (a pool keeps its valid
//     ranges; a peer with a bad holdTime has no timers);
//   - an invalid label selector selects nothing, so that a bad selector
//     never widens to "every node" or "every Service";
//   - refused peers stay in (Result.DisabledPeers says which they are).
//
// The Config is the validated one (Result.Config) when Build accepts
// everything. Otherwise it is not valid, and nothing may run it: it only
// answers questions (which pool holds an address, which advertisements
// announce a pool to which peers) with the rules Build applies.
func Resolve(res Resources, opts Options) (*Config, Result) {
	r := Build(res, opts)
	if r.Config != nil && len(r.DisabledPeers) == 0 {
		return r.Config, r
	}
	// The steps of Build, without its refusal: every admitted object goes
	// into the Config.
	b := resolveObjects(res, opts)
	b.selectNothingWhereInvalid()
	return b.config(), r
}

// selectNothingWhereInvalid adds a selector matching nothing to every
// selector list with an invalid entry: parseSelectors leaves invalid
// entries out, and a list left empty would select everything.
func (b *builder) selectNothingWhereInvalid() {
	invalid := func(kind, name, list string) bool {
		for _, p := range b.c.errs {
			if p.Object.Kind == kind && p.Object.Name == name &&
				(p.Field == list || strings.HasPrefix(p.Field, list+"[")) {
				return true
			}
		}
		return false
	}
	nothing := func(sels []labels.Selector) []labels.Selector {
		return append(sels, labels.Nothing())
	}
	for _, p := range b.peers {
		if invalid(KindBGPPeer, p.Name, "spec.nodeSelectors") {
			p.NodeSelectors = nothing(p.NodeSelectors)
		}
	}
	for _, a := range b.bgpAdvs {
		if invalid(KindBGPAdvertisement, a.Name, "spec.nodeSelectors") {
			a.NodeSelectors = nothing(a.NodeSelectors)
		}
		if invalid(KindBGPAdvertisement, a.Name, "spec.serviceSelectors") {
			a.ServiceSelectors = nothing(a.ServiceSelectors)
		}
	}
	for _, a := range b.l2Advs {
		if invalid(KindL2Advertisement, a.Name, "spec.nodeSelectors") {
			a.NodeSelectors = nothing(a.NodeSelectors)
		}
		if invalid(KindL2Advertisement, a.Name, "spec.serviceSelectors") {
			a.ServiceSelectors = nothing(a.ServiceSelectors)
		}
	}
}
