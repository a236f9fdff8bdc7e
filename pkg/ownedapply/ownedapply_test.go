package ownedapply

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestSubset(t *testing.T) {
	for _, tc := range []struct {
		name      string
		want, got any
		ok        bool
	}{
		{"defaulted fields ignored", map[string]any{"a": int64(1)}, map[string]any{"a": int64(1), "b": "x"}, true},
		{"number types", map[string]any{"port": int64(7472)}, map[string]any{"port": float64(7472)}, true},
		{"changed scalar", map[string]any{"a": "x"}, map[string]any{"a": "y"}, false},
		{"missing field", map[string]any{"a": "x"}, map[string]any{}, false},
		{"list element drift", []any{"controller", "--log-level=info"}, []any{"controller", "--log-level=none"}, false},
		{"list shortened", []any{"a", "b"}, []any{"a"}, false},
		{"list grown", []any{"a"}, []any{"a", "b"}, false},
		{"list elements are subsets", []any{map[string]any{"name": "c"}}, []any{map[string]any{"name": "c", "terminationMessagePath": "/dev/termination-log"}}, true},
		{"empty maps match", map[string]any{"emptyDir": map[string]any{}}, map[string]any{"emptyDir": map[string]any{}}, true},
		{"empty map matches absent", map[string]any{"labels": map[string]any{}}, map[string]any{}, true},
		{"number against string", map[string]any{"port": int64(80)}, map[string]any{"port": "80"}, false},
	} {
		if got := Subset(tc.want, tc.got); got != tc.ok {
			t.Errorf("%s: Subset = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestNeedsApplyOnHashChange(t *testing.T) {
	const ann = "example.com/hash"
	rendered := map[string]any{"metadata": map[string]any{"name": "x", "annotations": map[string]any{ann: "new"}}}
	live := map[string]any{"metadata": map[string]any{"name": "x", "annotations": map[string]any{ann: "old"}, "resourceVersion": "5"}}
	if !NeedsApply(rendered, live, ann) {
		t.Error("a changed hash must apply (fields dropped from the templates are only removed that way)")
	}
	live["metadata"].(map[string]any)["annotations"].(map[string]any)[ann] = "new"
	if NeedsApply(rendered, live, ann) {
		t.Error("same hash and no drift must not apply")
	}
}

const hashAnn = "example.com/generated-hash"

func generated(data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "gen", Labels: map[string]string{"owner": "me"}},
		// ConfigMaps have no spec: CreateOrUpdate compares labels and the
		// hash, which is what changes with data.
		Data: map[string]string{"k": data},
	}
}

// countingClient counts writes through an interceptor.
func countingClient(t *testing.T, objs ...client.Object) (client.Client, *int) {
	t.Helper()
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	writes := 0
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			writes++
			return c.Create(ctx, o, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.UpdateOption) error {
			writes++
			return c.Update(ctx, o, opts...)
		},
	}).Build()
	return c, &writes
}

func TestCreateOrUpdate(t *testing.T) {
	ours := func(o client.Object) bool { return o.GetLabels()["owner"] == "me" }
	ctx := context.Background()

	t.Run("creates, then a second pass writes nothing", func(t *testing.T) {
		c, writes := countingClient(t)
		a := &Applier{Client: c, Scheme: c.Scheme(), HashAnnotation: hashAnn}
		if out, err := a.CreateOrUpdate(ctx, generated("v1"), ours); err != nil || out != Created {
			t.Fatalf("first = %v, %v; want Created", out, err)
		}
		if out, err := a.CreateOrUpdate(ctx, generated("v1"), ours); err != nil || out != Unchanged {
			t.Fatalf("second = %v, %v; want Unchanged", out, err)
		}
		if *writes != 1 {
			t.Errorf("%d writes, want 1", *writes)
		}
	})

	t.Run("a new generation updates and keeps others' labels and annotations", func(t *testing.T) {
		c, _ := countingClient(t)
		a := &Applier{Client: c, Scheme: c.Scheme(), HashAnnotation: hashAnn}
		if _, err := a.CreateOrUpdate(ctx, generated("v1"), ours); err != nil {
			t.Fatal(err)
		}
		var live corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "gen"}, &live); err != nil {
			t.Fatal(err)
		}
		first := live.Annotations[hashAnn]
		live.Labels["team"] = "net"
		live.Annotations["note"] = "kept"
		if err := c.Update(ctx, &live); err != nil {
			t.Fatal(err)
		}
		if out, err := a.CreateOrUpdate(ctx, generated("v2"), ours); err != nil || out != Updated {
			t.Fatalf("= %v, %v; want Updated", out, err)
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "gen"}, &live); err != nil {
			t.Fatal(err)
		}
		if live.Annotations[hashAnn] == first || live.Labels["team"] != "net" || live.Annotations["note"] != "kept" || live.Labels["owner"] != "me" {
			t.Errorf("after update: labels %v annotations %v", live.Labels, live.Annotations)
		}
	})

	t.Run("a label removed by someone is put back", func(t *testing.T) {
		c, _ := countingClient(t)
		a := &Applier{Client: c, Scheme: c.Scheme(), HashAnnotation: hashAnn}
		o := generated("v1")
		o.Labels["tier"] = "x"
		if _, err := a.CreateOrUpdate(ctx, o, ours); err != nil {
			t.Fatal(err)
		}
		var live corev1.ConfigMap
		_ = c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "gen"}, &live)
		delete(live.Labels, "tier")
		if err := c.Update(ctx, &live); err != nil {
			t.Fatal(err)
		}
		o = generated("v1")
		o.Labels["tier"] = "x"
		if out, err := a.CreateOrUpdate(ctx, o, ours); err != nil || out != Updated {
			t.Fatalf("= %v, %v; want Updated", out, err)
		}
	})

	t.Run("someone else's object is never written", func(t *testing.T) {
		theirs := generated("theirs")
		theirs.Labels = map[string]string{"owner": "someone"}
		c, writes := countingClient(t, theirs)
		a := &Applier{Client: c, Scheme: c.Scheme(), HashAnnotation: hashAnn}
		if out, err := a.CreateOrUpdate(ctx, generated("v1"), ours); err != nil || out != NotOurs {
			t.Fatalf("= %v, %v; want NotOurs", out, err)
		}
		if *writes != 0 {
			t.Errorf("%d writes, want 0", *writes)
		}
		var live corev1.ConfigMap
		_ = c.Get(ctx, client.ObjectKey{Namespace: "ns", Name: "gen"}, &live)
		if live.Data["k"] != "theirs" {
			t.Errorf("their object was changed: %v", live.Data)
		}
	})
}

func TestHashIsStable(t *testing.T) {
	a, _ := Hash(map[string]any{"b": 1, "a": []any{"x"}})
	b, _ := Hash(map[string]any{"a": []any{"x"}, "b": 1})
	c, _ := Hash(map[string]any{"a": []any{"y"}, "b": 1})
	if a != b || a == c || len(a) != 32 {
		t.Errorf("hashes %q %q %q", a, b, c)
	}
}
