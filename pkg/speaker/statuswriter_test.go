package speaker

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/go-logr/logr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// The writer writes what it was last told, coalescing what came in while
// it was away, owns the objects by the Node, and a Service told twice
// before it runs is written once.
func TestStatusWriter(t *testing.T) {
	writes := 0
	c := fake.NewClientBuilder().WithScheme(scheme.New()).
		WithStatusSubresource(&v1beta1.ServiceBGPStatus{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				writes++
				return c.Create(ctx, o, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.DeleteOption) error {
				writes++
				return c.Delete(ctx, o, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				writes++
				return c.SubResource(sub).Patch(ctx, o, p, opts...)
			},
		}).Build()
	w := newStatusWriter(nodeStatus{client: c, recorder: record.NewFakeRecorder(100), node: "n1", namespace: ns}, bgpStatus, logr.Discard())
	w.setNode("uid-n1")
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}
	w.setAll(map[string][]string{"default/web": {"a"}, "default/api": {"a"}}, map[string]*corev1.Service{"default/web": web})
	w.set("default/api", nil, false, nil)
	w.set("default/web", []string{"a", "b"}, true, web)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)
	wait := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !w.idle(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the writer never settled")
			}
		}
	}
	wait()
	var l v1beta1.ServiceBGPStatusList
	if err := c.List(ctx, &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Status.ServiceName != "web" || len(l.Items[0].Status.Peers) != 2 {
		t.Fatalf("objects %+v", l.Items)
	}
	if refs := l.Items[0].OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].UID != "uid-n1" {
		t.Errorf("owner references %+v", refs)
	}
	if writes != 2 {
		t.Errorf("%d writes, want 2 (create, status)", writes)
	}
	writes = 0
	w.set("default/web", []string{"a", "b"}, true, web)
	wait()
	if writes != 0 {
		t.Errorf("unchanged: %d writes", writes)
	}
	w.set("default/web", nil, false, web)
	wait()
	if err := c.List(ctx, &l); err != nil || len(l.Items) != 0 || writes != 1 {
		t.Errorf("after withdrawal: %d objects, %d writes, %v", len(l.Items), writes, err)
	}
}
