package config_test

import (
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
)

func examplePool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "metallb-system"},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
}

// What the IPAddressPool webhook does: Build over the existing objects plus
// the object under admission (last), then refuse with the errors that
// involve it and return the warnings as admission warnings.
func ExampleBuild_admission() {
	existing := []v1beta1.IPAddressPool{examplePool("a", "203.0.113.128/25")}
	incoming := examplePool("b", "203.0.113.0/24")

	res := config.Resources{Pools: append(existing, incoming)}
	r := config.Build(res, config.Options{Namespace: "metallb-system"})
	self := config.ObjectRef{Kind: config.KindIPAddressPool, Name: incoming.Name}
	for _, p := range r.Errors {
		if p.Involves(self) {
			fmt.Println("denied:", p.Error())
		}
	}
	// Output:
	// denied: ipaddresspool "b": spec.addresses[0]: 203.0.113.0/24 overlaps 203.0.113.128/25 of ipaddresspool "a"
}

// What the controller and the speakers do: use the Config when there are no
// errors.
func ExampleBuild_config() {
	res := config.Resources{Pools: []v1beta1.IPAddressPool{examplePool("web", "203.0.113.1-203.0.113.30")}}
	r := config.Build(res, config.Options{Namespace: "metallb-system", BGPBackend: v1beta1.BGPTypeNative})
	if err := r.Err(); err != nil {
		fmt.Println(err)
		return
	}
	web := r.Config.Pools["web"]
	fmt.Println(web.CIDRs, web.AutoAssign)
	fmt.Println(r.Config.PoolFor(netip.MustParseAddr("203.0.113.7")).Name)
	// Output:
	// [203.0.113.1/32 203.0.113.2/31 203.0.113.4/30 203.0.113.8/29 203.0.113.16/29 203.0.113.24/30 203.0.113.28/31 203.0.113.30/32] true
	// web
}
