// Package load reads, through a controller-runtime reader, everything the
// symmetric-routing checks (pkg/symrouting) and the SymmetricRouting
// generator look at: the stack's metallb.io objects, Services and Nodes,
// and, when served, NMState's policies, states and enactments, OVN's
// EgressServices and OpenShift's Network objects. The operator, the
// admission webhook and must-gather share it.
package load

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lbstack/lbstack/pkg/platform"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/symrouting"
)

// AddToScheme registers the optional APIs' typed kinds: NMState's v1 and
// v1beta1 and OVN's EgressService.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{nmstatev1.AddToScheme, nmstatev1beta1.AddToScheme, ovnv1.AddToScheme} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}

// GVKs read as unstructured or only when served.
var (
	GVKConfigNetwork   = schema.GroupVersionKind{Group: "config.openshift.io", Version: "v1", Kind: "Network"}
	GVKOperatorNetwork = schema.GroupVersionKind{Group: "operator.openshift.io", Version: "v1", Kind: "Network"}
	GVKNNCP            = nmstatev1.GroupVersion.WithKind("NodeNetworkConfigurationPolicy")
	GVKNNS             = nmstatev1beta1.GroupVersion.WithKind("NodeNetworkState")
	GVKNNCE            = nmstatev1beta1.GroupVersion.WithKind("NodeNetworkConfigurationEnactment")
)

// APIs says which optional APIs the cluster serves.
type APIs struct {
	// NMState: nodenetworkconfigurationpolicies (v1) and nodenetworkstates,
	// nodenetworkconfigurationenactments (v1beta1) of nmstate.io.
	NMState bool
	// OVN: egressservices.k8s.ovn.org (v1).
	OVN bool
	// ConfigNetwork: config.openshift.io/v1 Network.
	ConfigNetwork bool
	// OperatorNetwork: operator.openshift.io/v1 Network.
	OperatorNetwork bool
}

// Detect asks mapper which of the optional APIs exist.
func Detect(mapper meta.RESTMapper) (APIs, error) {
	served := func(gvk schema.GroupVersionKind) (bool, error) { return platform.Served(mapper, gvk) }
	var a APIs
	var errs []error
	check := func(dst *bool, gvks ...schema.GroupVersionKind) {
		*dst = true
		for _, g := range gvks {
			ok, err := served(g)
			if err != nil {
				errs = append(errs, err)
			}
			*dst = *dst && ok
		}
	}
	check(&a.NMState, GVKNNCP, GVKNNS, GVKNNCE)
	check(&a.OVN, ovnv1.EgressServiceGVK)
	check(&a.ConfigNetwork, GVKConfigNetwork)
	check(&a.OperatorNetwork, GVKOperatorNetwork)
	return a, errors.Join(errs...)
}

// State is one read of everything the symmetric-routing checks look at.
type State struct {
	Inputs   symrouting.Inputs
	MetalLBs []v1beta1.MetalLB
	// Objects resolves finding references to objects (for events).
	Objects map[symrouting.ObjectRef]client.Object
	// Masquerade are OVN's masquerade subnets to keep in the main table of
	// generated policies (nil when OVN's configuration is unknown).
	Masquerade []netip.Prefix
}

// Resolve returns the first of refs that names a listed object.
func (s *State) Resolve(refs []symrouting.ObjectRef) client.Object {
	for _, ref := range refs {
		if o := s.Objects[ref]; o != nil {
			return o
		}
	}
	return nil
}

// Checked reports whether anything is subject to the checks: a BGPPeer
// with spec.vrf or an EgressService.
func (s *State) Checked() bool {
	if len(s.Inputs.EgressServices) > 0 {
		return true
	}
	for _, p := range s.Inputs.Peers {
		if p.Spec.VRFName != "" {
			return true
		}
	}
	return false
}

func (s *State) add(kind, ns, name string, o client.Object) {
	s.Objects[symrouting.ObjectRef{Kind: kind, Namespace: ns, Name: name}] = o
}

// Load lists every object the checks and the generation need through c
// (the stack's metallb.io objects from namespace), reading the optional
// APIs apis says are served.
func Load(ctx context.Context, c client.Reader, namespace string, apis APIs) (*State, error) {
	s := &State{Objects: map[symrouting.ObjectRef]client.Object{}}
	in := &s.Inputs
	in.NMStateInstalled, in.OVNInstalled = apis.NMState, apis.OVN

	var nodes corev1.NodeList
	if err := c.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	in.Nodes = nodes.Items
	sortByName(in.Nodes)
	for i := range in.Nodes {
		s.add(symrouting.KindNode, "", in.Nodes[i].Name, &in.Nodes[i])
	}
	var peers v1beta2.BGPPeerList
	if err := c.List(ctx, &peers, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list bgppeers: %w", err)
	}
	in.Peers = peers.Items
	sortByName(in.Peers)
	for i := range in.Peers {
		s.add(symrouting.KindBGPPeer, in.Peers[i].Namespace, in.Peers[i].Name, &in.Peers[i])
	}
	var ads v1beta1.BGPAdvertisementList
	if err := c.List(ctx, &ads, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list bgpadvertisements: %w", err)
	}
	in.Advertisements = ads.Items
	sortByName(in.Advertisements)
	for i := range in.Advertisements {
		s.add(symrouting.KindAdvertisement, in.Advertisements[i].Namespace, in.Advertisements[i].Name, &in.Advertisements[i])
	}
	var pools v1beta1.IPAddressPoolList
	if err := c.List(ctx, &pools, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list ipaddresspools: %w", err)
	}
	in.Pools = pools.Items
	sortByName(in.Pools)
	for i := range in.Pools {
		s.add(symrouting.KindPool, in.Pools[i].Namespace, in.Pools[i].Name, &in.Pools[i])
	}
	var svcs corev1.ServiceList
	if err := c.List(ctx, &svcs); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	in.Services = svcs.Items
	sortByName(in.Services)
	for i := range in.Services {
		s.add(symrouting.KindService, in.Services[i].Namespace, in.Services[i].Name, &in.Services[i])
	}
	var mls v1beta1.MetalLBList
	if err := c.List(ctx, &mls, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list metallbs: %w", err)
	}
	s.MetalLBs = mls.Items
	slices.SortFunc(s.MetalLBs, func(a, b v1beta1.MetalLB) int { return strings.Compare(a.Name, b.Name) })
	for i := range s.MetalLBs {
		ml := &s.MetalLBs[i]
		s.add(symrouting.KindMetalLB, ml.Namespace, ml.Name, ml)
		if i == 0 {
			in.Backend = ml.Spec.BGPType
			in.MetalLB = symrouting.ObjectRef{Kind: symrouting.KindMetalLB, Namespace: ml.Namespace, Name: ml.Name}
		}
	}

	if apis.NMState {
		var pols nmstatev1.NodeNetworkConfigurationPolicyList
		if err := c.List(ctx, &pols); err != nil {
			return nil, fmt.Errorf("list nodenetworkconfigurationpolicies: %w", err)
		}
		in.Policies = pols.Items
		sortByName(in.Policies)
		for i := range in.Policies {
			s.add(symrouting.KindPolicy, "", in.Policies[i].Name, &in.Policies[i])
		}
		var states nmstatev1beta1.NodeNetworkStateList
		if err := c.List(ctx, &states); err != nil {
			return nil, fmt.Errorf("list nodenetworkstates: %w", err)
		}
		in.States = states.Items
		sortByName(in.States)
		for i := range in.States {
			s.add(symrouting.KindState, "", in.States[i].Name, &in.States[i])
		}
		var enacts nmstatev1beta1.NodeNetworkConfigurationEnactmentList
		if err := c.List(ctx, &enacts); err != nil {
			return nil, fmt.Errorf("list nodenetworkconfigurationenactments: %w", err)
		}
		in.Enactments = enacts.Items
		sortByName(in.Enactments)
		for i := range in.Enactments {
			s.add(symrouting.KindEnactment, "", in.Enactments[i].Name, &in.Enactments[i])
		}
	}
	if apis.OVN {
		var ess ovnv1.EgressServiceList
		if err := c.List(ctx, &ess); err != nil {
			return nil, fmt.Errorf("list egressservices: %w", err)
		}
		in.EgressServices = ess.Items
		sortByName(in.EgressServices)
		for i := range in.EgressServices {
			s.add(symrouting.KindEgressService, in.EgressServices[i].Namespace, in.EgressServices[i].Name, &in.EgressServices[i])
		}
	}

	if apis.ConfigNetwork {
		u, err := getUnstructured(ctx, c, GVKConfigNetwork, "cluster")
		if err != nil {
			return nil, err
		}
		if u != nil {
			in.ClusterNetworks, in.ServiceNetworks = configNetworks(u)
			in.NetworksSource = `config.openshift.io/v1 Network "cluster"`
		}
	}
	if apis.OperatorNetwork {
		u, err := getUnstructured(ctx, c, GVKOperatorNetwork, "cluster")
		if err != nil {
			return nil, err
		}
		if u != nil {
			in.OVN = ovnConfig(u)
			if in.OVN != nil {
				s.add(symrouting.KindOperatorNetwork, "", "cluster", u)
			}
		}
	}
	if in.OVN != nil {
		s.Masquerade = masqueradeSubnets(in)
	}
	return s, nil
}

// sortByName sorts objects by namespace and name: the cache lists in no
// particular order, and messages built from the lists must not churn.
func sortByName[T any, P interface {
	*T
	client.Object
}](items []T) {
	slices.SortFunc(items, func(a, b T) int {
		pa, pb := P(&a), P(&b)
		return strings.Compare(pa.GetNamespace()+"/"+pa.GetName(), pb.GetNamespace()+"/"+pb.GetName())
	})
}

func getUnstructured(ctx context.Context, c client.Reader, gvk schema.GroupVersionKind, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.Get(ctx, types.NamespacedName{Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get %s %q: %w", gvk, name, err)
	}
	return u, nil
}

// configNetworks reads status.clusterNetwork[].cidr and
// status.serviceNetwork[] of config.openshift.io/v1 Network "cluster".
func configNetworks(u *unstructured.Unstructured) (cluster, service []netip.Prefix) {
	cn, _, _ := unstructured.NestedSlice(u.Object, "status", "clusterNetwork")
	for _, e := range cn {
		m, _ := e.(map[string]any)
		if s, _ := m["cidr"].(string); s != "" {
			if p, err := netip.ParsePrefix(s); err == nil {
				cluster = append(cluster, p)
			}
		}
	}
	sn, _, _ := unstructured.NestedStringSlice(u.Object, "status", "serviceNetwork")
	for _, s := range sn {
		if p, err := netip.ParsePrefix(s); err == nil {
			service = append(service, p)
		}
	}
	return cluster, service
}

// ovnConfig reads spec.defaultNetwork.ovnKubernetesConfig.gatewayConfig of
// operator.openshift.io/v1 Network "cluster"; nil when the default network
// is not OVN-Kubernetes.
func ovnConfig(u *unstructured.Unstructured) *symrouting.OVNConfig {
	if t, _, _ := unstructured.NestedString(u.Object, "spec", "defaultNetwork", "type"); t != "" && t != "OVNKubernetes" {
		return nil
	}
	gw := []string{"spec", "defaultNetwork", "ovnKubernetesConfig", "gatewayConfig"}
	c := &symrouting.OVNConfig{}
	c.RoutingViaHost, _, _ = unstructured.NestedBool(u.Object, append(gw, "routingViaHost")...)
	c.InternalMasqueradeSubnetV4, _, _ = unstructured.NestedString(u.Object, append(gw, "ipv4", "internalMasqueradeSubnet")...)
	c.InternalMasqueradeSubnetV6, _, _ = unstructured.NestedString(u.Object, append(gw, "ipv6", "internalMasqueradeSubnet")...)
	return c
}

// masqueradeSubnets are OVN's masquerade subnets, per family: the
// configured one, else those the nodes' symrouting.NodeMasqueradeAnnotation
// annotations name, else both platform defaults (IPv6 only when the
// cluster has IPv6 networks).
func masqueradeSubnets(in *symrouting.Inputs) []netip.Prefix {
	var out []netip.Prefix
	v6 := false
	for _, p := range append(slices.Clone(in.ClusterNetworks), in.ServiceNetworks...) {
		v6 = v6 || p.Addr().Is6()
	}
	for fi := range 2 {
		explicit := [2]string{in.OVN.InternalMasqueradeSubnetV4, in.OVN.InternalMasqueradeSubnetV6}[fi]
		if p, err := netip.ParsePrefix(explicit); err == nil {
			out = append(out, p.Masked())
			continue
		}
		var annotated []netip.Prefix
		for i := range in.Nodes {
			if p, ok := symrouting.NodeMasqueradeSubnet(&in.Nodes[i], fi); ok && !slices.Contains(annotated, p) {
				annotated = append(annotated, p)
			}
		}
		switch {
		case len(annotated) > 0:
			out = append(out, annotated...)
		case fi == 0 || v6:
			// Either default may be the cluster's (the checker accepts
			// either): generated policies keep both in the main table.
			out = append(out, symrouting.MasqueradeDefaults[fi][:]...)
		}
	}
	return out
}
