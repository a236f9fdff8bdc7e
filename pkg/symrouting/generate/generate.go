// Package generate expands a SymmetricRouting declaration (lbstack.io/v1alpha1)
// into the objects the operator creates and owns for it:
//
//   - NodeNetworkConfigurationPolicies (nmstate.io/v1) creating the VRF, its
//     port addresses, default route and the route rules that keep cluster
//     traffic in the main table: none when spec.vrf.existingPolicy is set,
//     one named like the SymmetricRouting with spec.vrf.addresses, one per
//     node named <sr>-<node> with spec.vrf.nodeAddresses;
//   - one BGPPeer (metallb.io/v1beta2) bound to the VRF;
//   - per Service a dedicated IPAddressPool and a BGPAdvertisement
//     (metallb.io/v1beta1) announced only from the node OVN labels as the
//     Service's egress node, towards that peer only;
//   - per Service an EgressService (k8s.ovn.org/v1) whose network is the
//     VRF's route table.
//
// Generate is a pure function: the controller supplies what it discovers in
// the cluster (operator namespace, cluster/service networks, OVN's
// masquerade subnet) through Inputs.
package generate

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/iprange"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// Labels every generated object carries.
const (
	// SymmetricRoutingLabel names the SymmetricRouting an object was
	// generated for.
	SymmetricRoutingLabel = "lbstack.io/symmetric-routing"
	// ManagedByLabel marks objects the operator owns.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value on generated objects.
	ManagedByValue = "lbstack"
)

// Defaults of optional SymmetricRouting fields.
const (
	// DefaultRouteMetric is the VRF default route's metric.
	DefaultRouteMetric int32 = 150
	// DefaultRulePriority is the priority of the main-table route rules.
	DefaultRulePriority int32 = 998
	// MainRouteTable is the kernel's main routing table.
	MainRouteTable int32 = 254
	// HostnameLabel selects one node in per-node policies.
	HostnameLabel = "kubernetes.io/hostname"
)

// Inputs is what the controller discovers and Generate cannot know.
//
// The main-table destinations (the route rules' ip-to) are, in this order:
// ServiceNetworks, ClusterNetworks, OtherNetworks, then
// spec.mainTableNetworks. Each group is sorted (IPv4 before IPv6, then by
// address, then by prefix length) so that the order in which the
// controller happens to discover networks does not churn the policy; every
// prefix is masked to its network address and a prefix listed twice keeps
// its first place. Service networks come first because that is what the
// reference scenario (and OpenShift's documentation) writes.
type Inputs struct {
	// Namespace is the operator's namespace: the BGPPeer, pools and
	// advertisements live there, and the peer's password Secret too.
	Namespace string
	// ServiceNetworks are the cluster's service CIDRs.
	ServiceNetworks []netip.Prefix
	// ClusterNetworks are the cluster's pod CIDRs.
	ClusterNetworks []netip.Prefix
	// OtherNetworks are further discovered destinations to keep in the
	// main table, e.g. OVN-Kubernetes' masquerade subnets.
	OtherNetworks []netip.Prefix
}

// Objects are the generated objects of one SymmetricRouting.
type Objects struct {
	// Policies create the VRF; empty with spec.vrf.existingPolicy.
	Policies []*nmstatev1.NodeNetworkConfigurationPolicy
	// Peer is the VRF-bound BGP peer.
	Peer *v1beta2.BGPPeer
	// Pools, Advertisements and EgressServices have one entry per
	// spec.services entry, in spec order.
	Pools          []*v1beta1.IPAddressPool
	Advertisements []*v1beta1.BGPAdvertisement
	EgressServices []*ovnv1.EgressService
}

// All returns every object in a stable order: policies, peer, then per
// kind the pools, advertisements and EgressServices in spec order.
func (o *Objects) All() []client.Object {
	var out []client.Object
	for _, p := range o.Policies {
		out = append(out, p)
	}
	if o.Peer != nil {
		out = append(out, o.Peer)
	}
	for _, p := range o.Pools {
		out = append(out, p)
	}
	for _, a := range o.Advertisements {
		out = append(out, a)
	}
	for _, e := range o.EgressServices {
		out = append(out, e)
	}
	return out
}

// PeerName is the generated BGPPeer's name.
func PeerName(sr *v1alpha1.SymmetricRouting) string {
	if sr.Spec.Peer.Name != "" {
		return sr.Spec.Peer.Name
	}
	return sr.Name
}

// PoolName is the name of the IPAddressPool generated for svc.
func PoolName(sr *v1alpha1.SymmetricRouting, svc v1alpha1.SymmetricService) string {
	if svc.PoolName != "" {
		return svc.PoolName
	}
	return sr.Name + "-" + svc.Namespace + "-" + svc.Name
}

// AdvertisementName is the name of the BGPAdvertisement generated for svc.
func AdvertisementName(sr *v1alpha1.SymmetricRouting, svc v1alpha1.SymmetricService) string {
	if svc.AdvertisementName != "" {
		return svc.AdvertisementName
	}
	return PoolName(sr, svc)
}

// PolicyName is the name of the policy generated for node, or of the
// single shared policy when node is empty.
func PolicyName(sr *v1alpha1.SymmetricRouting, node string) string {
	if node == "" {
		return sr.Name
	}
	return sr.Name + "-" + node
}

// Labels are the labels of every object generated for sr.
func Labels(sr *v1alpha1.SymmetricRouting) map[string]string {
	return map[string]string{
		SymmetricRoutingLabel: sr.Name,
		ManagedByLabel:        ManagedByValue,
	}
}

// OwnerReference is the controller reference every generated object
// carries. SymmetricRouting is cluster-scoped, so it may own both
// namespaced and cluster-scoped objects.
func OwnerReference(sr *v1alpha1.SymmetricRouting) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "SymmetricRouting",
		Name:               sr.Name,
		UID:                sr.UID,
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

// MainTableDestinations are the destinations the route rules keep in the
// main table, in the order documented on Inputs.
func MainTableDestinations(sr *v1alpha1.SymmetricRouting, in Inputs) ([]netip.Prefix, error) {
	spec := make([]netip.Prefix, 0, len(sr.Spec.MainTableNetworks))
	for i, s := range sr.Spec.MainTableNetworks {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("spec.mainTableNetworks[%d]: %q is not a CIDR", i, s)
		}
		spec = append(spec, p)
	}
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for gi, group := range [][]netip.Prefix{in.ServiceNetworks, in.ClusterNetworks, in.OtherNetworks, spec} {
		var g []netip.Prefix
		for _, p := range group {
			if !p.IsValid() {
				return nil, fmt.Errorf("invalid prefix in main-table network group %d", gi)
			}
			p = p.Masked()
			if !seen[p] {
				seen[p] = true
				g = append(g, p)
			}
		}
		slices.SortFunc(g, iprange.ComparePrefixes)
		out = append(out, g...)
	}
	return out, nil
}

// Generate validates sr and returns the objects to create for it.
func Generate(sr *v1alpha1.SymmetricRouting, in Inputs) (*Objects, error) {
	if sr == nil {
		return nil, fmt.Errorf("no SymmetricRouting")
	}
	if errs := Validate(sr); len(errs) > 0 {
		return nil, fmt.Errorf("SymmetricRouting %q is invalid: %w", sr.Name, errs.ToAggregate())
	}
	if in.Namespace == "" {
		return nil, fmt.Errorf("SymmetricRouting %q: no operator namespace", sr.Name)
	}
	if sr.UID == "" {
		// The owner references need it; Validate does not ask for it so that
		// a webhook can validate objects not yet created.
		return nil, fmt.Errorf("SymmetricRouting %q has no UID", sr.Name)
	}
	o := &Objects{}
	vrf := sr.Spec.VRF

	if vrf.ExistingPolicy == "" {
		dests, err := MainTableDestinations(sr, in)
		if err != nil {
			return nil, fmt.Errorf("SymmetricRouting %q: %w", sr.Name, err)
		}
		if len(dests) == 0 {
			return nil, fmt.Errorf("SymmetricRouting %q: no main-table networks were discovered: list the cluster (pod) and service CIDRs in spec.mainTableNetworks", sr.Name)
		}
		if len(vrf.NodeAddresses) == 0 {
			p, err := policy(sr, "", vrf.Addresses, dests)
			if err != nil {
				return nil, err
			}
			o.Policies = append(o.Policies, p)
		}
		for _, na := range vrf.NodeAddresses {
			p, err := policy(sr, na.Node, na.Addresses, dests)
			if err != nil {
				return nil, err
			}
			o.Policies = append(o.Policies, p)
		}
	}

	o.Peer = peer(sr, in.Namespace)
	for _, svc := range sr.Spec.Services {
		o.Pools = append(o.Pools, pool(sr, svc, in.Namespace))
		o.Advertisements = append(o.Advertisements, advertisement(sr, svc, in.Namespace))
		o.EgressServices = append(o.EgressServices, egressService(sr, svc))
	}
	return o, nil
}

func objectMeta(sr *v1alpha1.SymmetricRouting, namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       namespace,
		Labels:          Labels(sr),
		OwnerReferences: []metav1.OwnerReference{OwnerReference(sr)},
	}
}

// vrfNodes is the node selector of the nodes that have the VRF, as a
// label selector: spec.vrf.nodeSelector, and with nodeAddresses also the
// listed nodes' hostnames (other nodes matching nodeSelector get no
// policy, hence no VRF). Nil when it selects every node.
func vrfNodes(sr *v1alpha1.SymmetricRouting) *metav1.LabelSelector {
	vrf := sr.Spec.VRF
	if len(vrf.NodeSelector) == 0 && len(vrf.NodeAddresses) == 0 {
		return nil
	}
	sel := &metav1.LabelSelector{}
	if len(vrf.NodeSelector) > 0 {
		sel.MatchLabels = maps.Clone(vrf.NodeSelector)
	}
	if len(vrf.NodeAddresses) > 0 {
		var nodes []string
		for _, na := range vrf.NodeAddresses {
			nodes = append(nodes, na.Node)
		}
		slices.Sort(nodes)
		sel.MatchExpressions = []metav1.LabelSelectorRequirement{{
			Key:      HostnameLabel,
			Operator: metav1.LabelSelectorOpIn,
			Values:   nodes,
		}}
	}
	return sel
}

func policy(sr *v1alpha1.SymmetricRouting, node string, addresses []string, dests []netip.Prefix) (*nmstatev1.NodeNetworkConfigurationPolicy, error) {
	raw, err := desiredState(sr, addresses, dests)
	if err != nil {
		return nil, fmt.Errorf("SymmetricRouting %q: %w", sr.Name, err)
	}
	sel := maps.Clone(sr.Spec.VRF.NodeSelector)
	if node != "" {
		if sel == nil {
			sel = map[string]string{}
		}
		sel[HostnameLabel] = node
	}
	p := &nmstatev1.NodeNetworkConfigurationPolicy{
		TypeMeta: metav1.TypeMeta{
			APIVersion: nmstatev1.GroupVersion.String(),
			Kind:       "NodeNetworkConfigurationPolicy",
		},
		ObjectMeta: objectMeta(sr, "", PolicyName(sr, node)),
		Spec: nmstateshared.NodeNetworkConfigurationPolicySpec{
			NodeSelector: sel,
			DesiredState: nmstateshared.State{Raw: raw},
		},
	}
	if mu := sr.Spec.VRF.MaxUnavailable; mu != nil {
		c := intstr.IntOrString(*mu)
		p.Spec.MaxUnavailable = &c
	}
	return p, nil
}

func peer(sr *v1alpha1.SymmetricRouting, namespace string) *v1beta2.BGPPeer {
	sp := sr.Spec.Peer
	p := &v1beta2.BGPPeer{
		TypeMeta: metav1.TypeMeta{
			APIVersion: v1beta2.GroupVersion.String(),
			Kind:       "BGPPeer",
		},
		ObjectMeta: objectMeta(sr, namespace, PeerName(sr)),
		Spec: v1beta2.BGPPeerSpec{
			MyASN:      sp.MyASN,
			ASN:        sp.ASN,
			Address:    sp.Address,
			BFDProfile: sp.BFDProfile,
			VRFName:    sr.Spec.VRF.Name,
		},
	}
	if sp.Port != 0 {
		port := sp.Port
		p.Spec.Port = &port
	}
	if sp.HoldTime != nil {
		ht := *sp.HoldTime
		p.Spec.HoldTime = &ht
	}
	if sp.PasswordSecret != "" {
		p.Spec.PasswordSecret = corev1.SecretReference{Name: sp.PasswordSecret, Namespace: namespace}
	}
	if sel := vrfNodes(sr); sel != nil {
		p.Spec.NodeSelectors = []metav1.LabelSelector{*sel}
	}
	return p
}

func pool(sr *v1alpha1.SymmetricRouting, svc v1alpha1.SymmetricService, namespace string) *v1beta1.IPAddressPool {
	// autoAssign is false on purpose: the pool is dedicated to this one
	// Service, which asks for it with the metallb.io/address-pool
	// annotation. The reference scenario leaves it at MetalLB's default
	// (true); this is the one intended difference from it.
	autoAssign := false
	return &v1beta1.IPAddressPool{
		TypeMeta: metav1.TypeMeta{
			APIVersion: v1beta1.GroupVersion.String(),
			Kind:       "IPAddressPool",
		},
		ObjectMeta: objectMeta(sr, namespace, PoolName(sr, svc)),
		Spec: v1beta1.IPAddressPoolSpec{
			Addresses:  slices.Clone(svc.Addresses),
			AutoAssign: &autoAssign,
		},
	}
}

func advertisement(sr *v1alpha1.SymmetricRouting, svc v1alpha1.SymmetricService, namespace string) *v1beta1.BGPAdvertisement {
	return &v1beta1.BGPAdvertisement{
		TypeMeta: metav1.TypeMeta{
			APIVersion: v1beta1.GroupVersion.String(),
			Kind:       "BGPAdvertisement",
		},
		ObjectMeta: objectMeta(sr, namespace, AdvertisementName(sr, svc)),
		Spec: v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{PoolName(sr, svc)},
			Peers:          []string{PeerName(sr)},
			NodeSelectors: []metav1.LabelSelector{{
				MatchLabels: map[string]string{ovnv1.NodeLabel(svc.Namespace, svc.Name): ""},
			}},
		},
	}
}

func egressService(sr *v1alpha1.SymmetricRouting, svc v1alpha1.SymmetricService) *ovnv1.EgressService {
	mode := ovnv1.SourceIPMode(sr.Spec.SourceIPBy)
	if mode == "" {
		mode = ovnv1.SourceIPLoadBalancer
	}
	e := &ovnv1.EgressService{
		TypeMeta: metav1.TypeMeta{
			APIVersion: ovnv1.GroupVersion.String(),
			Kind:       ovnv1.EgressServiceGVK.Kind,
		},
		ObjectMeta: objectMeta(sr, svc.Namespace, svc.Name),
		Spec: ovnv1.EgressServiceSpec{
			SourceIPBy: mode,
			Network:    strconv.Itoa(int(sr.Spec.VRF.RouteTableID)),
		},
	}
	if sel := vrfNodes(sr); sel != nil {
		e.Spec.NodeSelector = *sel
	}
	return e
}
