package config

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/equality"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// Builders for test objects, all in the stack's namespace.

const testNS = "metallb-system"

var frrOpts = Options{Namespace: testNS, BGPBackend: v1beta1.BGPTypeFRR}
var nativeOpts = Options{Namespace: testNS, BGPBackend: v1beta1.BGPTypeNative}

func meta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: testNS} }

func pool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: meta(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func poolWith(name string, mod func(*v1beta1.IPAddressPool), addrs ...string) v1beta1.IPAddressPool {
	p := pool(name, addrs...)
	mod(&p)
	return p
}

// peer is an eBGP peer 65001 → 65000 at addr; mod adjusts it.
func peer(name, addr string, mods ...func(*v1beta2.BGPPeerSpec)) v1beta2.BGPPeer {
	p := v1beta2.BGPPeer{ObjectMeta: meta(name), Spec: v1beta2.BGPPeerSpec{MyASN: 65001, ASN: 65000, Address: addr}}
	for _, m := range mods {
		m(&p.Spec)
	}
	return p
}

func bgpAdv(name string, mods ...func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
	a := v1beta1.BGPAdvertisement{ObjectMeta: meta(name)}
	for _, m := range mods {
		m(&a.Spec)
	}
	return a
}

func l2Adv(name string, mods ...func(*v1beta1.L2AdvertisementSpec)) v1beta1.L2Advertisement {
	a := v1beta1.L2Advertisement{ObjectMeta: meta(name)}
	for _, m := range mods {
		m(&a.Spec)
	}
	return a
}

func bfd(name string, mods ...func(*v1beta1.BFDProfileSpec)) v1beta1.BFDProfile {
	p := v1beta1.BFDProfile{ObjectMeta: meta(name)}
	for _, m := range mods {
		m(&p.Spec)
	}
	return p
}

// community builds a Community object from name/value pairs.
func community(name string, kv ...string) v1beta1.Community {
	c := v1beta1.Community{ObjectMeta: meta(name)}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: kv[i], Value: kv[i+1]})
	}
	return c
}

func secret(name string, typ corev1.SecretType, data map[string]string) corev1.Secret {
	s := corev1.Secret{ObjectMeta: meta(name), Type: typ, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func node(name string, lbls map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func sel(kv ...string) metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return metav1.LabelSelector{MatchLabels: m}
}

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }

func ptr[T any](v T) *T { return &v }

func deepCopyResources(r Resources) Resources {
	var c Resources
	for i := range r.Pools {
		c.Pools = append(c.Pools, *r.Pools[i].DeepCopy())
	}
	for i := range r.Peers {
		c.Peers = append(c.Peers, *r.Peers[i].DeepCopy())
	}
	for i := range r.BGPAdvs {
		c.BGPAdvs = append(c.BGPAdvs, *r.BGPAdvs[i].DeepCopy())
	}
	for i := range r.L2Advs {
		c.L2Advs = append(c.L2Advs, *r.L2Advs[i].DeepCopy())
	}
	for i := range r.BFDProfiles {
		c.BFDProfiles = append(c.BFDProfiles, *r.BFDProfiles[i].DeepCopy())
	}
	for i := range r.Communities {
		c.Communities = append(c.Communities, *r.Communities[i].DeepCopy())
	}
	for i := range r.Secrets {
		c.Secrets = append(c.Secrets, *r.Secrets[i].DeepCopy())
	}
	for i := range r.Nodes {
		c.Nodes = append(c.Nodes, *r.Nodes[i].DeepCopy())
	}
	for i := range r.Namespaces {
		c.Namespaces = append(c.Namespaces, *r.Namespaces[i].DeepCopy())
	}
	return c
}

func equalResources(a, b Resources) bool { return equality.Semantic.DeepEqual(a, b) }

func equalProblems(a, b []Problem) bool {
	return slices.EqualFunc(a, b, func(x, y Problem) bool { return compareProblems(x, y) == 0 })
}
