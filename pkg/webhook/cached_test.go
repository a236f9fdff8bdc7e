package webhook

import (
	"context"
	"fmt"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// Admission lists the metallb.io objects from the API server (objects of
// one apply arrive back to back) but Nodes, Namespaces and Secrets from
// the manager's cache: listing every Node and Secret of the cluster on
// every request does not scale (issue 17).
func TestAdmissionReadsNodesNamespacesSecretsFromTheCache(t *testing.T) {
	s := scheme.New()
	var direct, cached []string
	record := func(into *[]string) interceptor.Funcs {
		return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			*into = append(*into, fmt.Sprintf("%T", list))
			return c.List(ctx, list, opts...)
		}}
	}
	api := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(record(&direct)).
		WithObjects(&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "a"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/25"}}}).Build()
	cache := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(record(&cached)).
		WithObjects(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}).Build()
	v := &Validator{Reader: api, Cached: cache, Namespace: "metallb-system", Scheme: s}
	res, _, err := v.load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pools) != 1 || len(res.Nodes) != 1 || len(res.Namespaces) != 1 {
		t.Fatalf("loaded %d pools, %d nodes, %d namespaces", len(res.Pools), len(res.Nodes), len(res.Namespaces))
	}
	for _, l := range []string{"*v1.NodeList", "*v1.NamespaceList", "*v1.SecretList"} {
		if slices.Contains(direct, l) {
			t.Errorf("%s listed from the API server on an admission request", l)
		}
		if !slices.Contains(cached, l) {
			t.Errorf("%s not read from the cache", l)
		}
	}
	if !slices.Contains(direct, "*v1beta1.IPAddressPoolList") {
		t.Errorf("pools not read from the API server: %v", direct)
	}
}
