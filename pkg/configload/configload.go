// Package configload reads, through a controller-runtime client, the
// objects that config.Build turns into a configuration. The webhook, the
// controller and the speaker all read them here, so they build from the
// same inputs; pkg/config itself stays free of Kubernetes I/O.
package configload

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
)

// Options say which objects to read besides the pools, peers, BGP
// advertisements, BFD profiles, communities and Secrets of Namespace.
type Options struct {
	// Namespace is the stack's namespace.
	Namespace string
	// L2Advertisements also reads the L2Advertisements of Namespace.
	L2Advertisements bool
	// Nodes and Namespaces also read those cluster-scoped objects.
	Nodes, Namespaces bool
	// NoPools leaves the IPAddressPools out: the admission webhook keeps
	// them indexed from watch events and picks the few a request needs.
	NoPools bool
	// Cached, when set, reads the Secrets, Nodes and Namespaces.
	Cached client.Reader
}

// Load lists the objects o asks for.
func Load(ctx context.Context, r client.Reader, o Options) (config.Resources, error) {
	var res config.Resources
	in := client.InNamespace(o.Namespace)
	var (
		pools      v1beta1.IPAddressPoolList
		peers      v1beta2.BGPPeerList
		bgpAdvs    v1beta1.BGPAdvertisementList
		l2Advs     v1beta1.L2AdvertisementList
		bfds       v1beta1.BFDProfileList
		comms      v1beta1.CommunityList
		secrets    corev1.SecretList
		nodes      corev1.NodeList
		namespaces corev1.NamespaceList
	)
	cached := o.Cached
	if cached == nil {
		cached = r
	}
	type listing struct {
		from client.Reader
		list client.ObjectList
		opts []client.ListOption
	}
	lists := []listing{{r, &peers, []client.ListOption{in}}, {r, &bgpAdvs, []client.ListOption{in}},
		{r, &bfds, []client.ListOption{in}}, {r, &comms, []client.ListOption{in}}, {cached, &secrets, []client.ListOption{in}}}
	if !o.NoPools {
		lists = append(lists, listing{r, &pools, []client.ListOption{in}})
	}
	if o.L2Advertisements {
		lists = append(lists, listing{r, &l2Advs, []client.ListOption{in}})
	}
	if o.Nodes {
		lists = append(lists, listing{cached, &nodes, nil})
	}
	if o.Namespaces {
		lists = append(lists, listing{cached, &namespaces, nil})
	}
	for _, l := range lists {
		if err := l.from.List(ctx, l.list, l.opts...); err != nil {
			return res, fmt.Errorf("list %T: %w", l.list, err)
		}
	}
	res.Pools, res.Peers, res.BGPAdvs, res.L2Advs = pools.Items, peers.Items, bgpAdvs.Items, l2Advs.Items
	res.BFDProfiles, res.Communities, res.Secrets = bfds.Items, comms.Items, secrets.Items
	res.Nodes, res.Namespaces = nodes.Items, namespaces.Items
	return res, nil
}

// BGPBackend returns spec.bgpBackend of the MetalLB object in namespace,
// or "" when there is none or it does not say.
func BGPBackend(ctx context.Context, r client.Reader, namespace string) (v1beta1.BGPType, error) {
	var mls v1beta1.MetalLBList
	if err := r.List(ctx, &mls, client.InNamespace(namespace)); err != nil {
		return "", fmt.Errorf("list MetalLB: %w", err)
	}
	if len(mls.Items) == 0 {
		return "", nil
	}
	return mls.Items[0].Spec.BGPType, nil
}
