package speaker

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// One code path writes both kinds of per-node status: created with an
// event when the node starts announcing, left alone while nothing
// changes, deleted with an event when it stops.
func TestNodeStatusSync(t *testing.T) {
	writes := 0
	count := func() { writes++ }
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&v1beta1.ServiceBGPStatus{}, &v1beta1.ServiceL2Status{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				count()
				return c.Create(ctx, o, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
				count()
				return c.Delete(ctx, o, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				count()
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
		}).Build()
	rec := record.NewFakeRecorder(10)
	s := nodeStatus{client: c, recorder: rec, node: "n1", namespace: "metallb-system"}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	byKey := func(k string) *corev1.Service { return map[string]*corev1.Service{"default/web": svc}[k] }
	ctx := context.Background()

	for _, tc := range []struct {
		kind   statusKind
		detail []string
		event  string
	}{
		{bgpStatus, []string{"router"}, `protocol "bgp" to peers router`},
		{l2Status, []string{"eth0"}, `protocol "layer2" on eth0`},
	} {
		t.Run(tc.kind.kind, func(t *testing.T) {
			writes = 0
			if err := s.sync(ctx, tc.kind, map[string][]string{"default/web": tc.detail}, byKey); err != nil {
				t.Fatal(err)
			}
			if writes != 2 {
				t.Errorf("%d writes to create and fill the status, want 2", writes)
			}
			if e := <-rec.Events; !strings.Contains(e, "nodeAssigned") || !strings.Contains(e, tc.event) {
				t.Errorf("event %q", e)
			}
			writes = 0
			if err := s.sync(ctx, tc.kind, map[string][]string{"default/web": tc.detail}, byKey); err != nil {
				t.Fatal(err)
			}
			if writes != 0 || len(rec.Events) != 0 {
				t.Errorf("unchanged: %d writes, %d events", writes, len(rec.Events))
			}
			if err := s.sync(ctx, tc.kind, nil, byKey); err != nil {
				t.Fatal(err)
			}
			if e := <-rec.Events; !strings.Contains(e, "nodeUnassigned") {
				t.Errorf("event %q", e)
			}
			list := tc.kind.newList()
			if err := c.List(ctx, list); err != nil {
				t.Fatal(err)
			}
			if items, err := apimeta.ExtractList(list); err != nil || len(items) != 0 {
				t.Errorf("left: %v %v", items, err)
			}
		})
	}
}
