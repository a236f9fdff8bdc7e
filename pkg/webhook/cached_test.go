package webhook

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// Admission reads nothing from the API server: the pools come from the
// view the watch keeps, everything else from the manager's cache. Listing
// every object per request made admission slow down as the cluster grew
// (issue 21).
func TestAdmissionReadsNothingFromTheAPIServer(t *testing.T) {
	s := scheme.New()
	var direct, cached []string
	record := func(into *[]string) interceptor.Funcs {
		return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			*into = append(*into, fmt.Sprintf("%T", list))
			return c.List(ctx, list, opts...)
		}}
	}
	stored := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "a"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/25"}}}
	api := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(record(&direct)).Build()
	cache := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(record(&cached)).
		WithObjects(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}).Build()
	v := seeded(&Validator{Reader: api, Cached: cache, Namespace: "metallb-system", Scheme: s}, stored)
	w := v.view()
	w.mu.Lock()
	res, _, err := v.load(context.Background(), w, nil)
	w.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pools) != 1 || len(res.Nodes) != 1 || len(res.Namespaces) != 1 {
		t.Fatalf("loaded %d pools, %d nodes, %d namespaces", len(res.Pools), len(res.Nodes), len(res.Namespaces))
	}
	if len(direct) > 0 {
		t.Errorf("listed from the API server on an admission request: %v", direct)
	}
	want := []string{"*v1beta2.BGPPeerList", "*v1beta1.BGPAdvertisementList", "*v1beta1.BFDProfileList", "*v1beta1.CommunityList",
		"*v1.SecretList", "*v1beta1.L2AdvertisementList", "*v1.NodeList", "*v1.NamespaceList"}
	if fmt.Sprint(cached) != fmt.Sprint(want) {
		t.Errorf("read from the cache: %v\nwant %v (no pool or MetalLB list)", cached, want)
	}
}
