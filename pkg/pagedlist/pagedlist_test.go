package pagedlist

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestListOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   metav1.ListOptions
		want metav1.ListOptions
	}{
		{"first list from the cache becomes a paged consistent read", metav1.ListOptions{ResourceVersion: "0", Limit: 500}, metav1.ListOptions{Limit: 500}},
		{"first list without a size gets the default page", metav1.ListOptions{ResourceVersion: "0"}, metav1.ListOptions{Limit: PageSize}},
		{"selectors are kept", metav1.ListOptions{ResourceVersion: "0", LabelSelector: "a=b", FieldSelector: "metadata.name=x", Limit: 100},
			metav1.ListOptions{LabelSelector: "a=b", FieldSelector: "metadata.name=x", Limit: 100}},
		{"a relist from a known version is left alone", metav1.ListOptions{ResourceVersion: "42", Limit: 500}, metav1.ListOptions{ResourceVersion: "42", Limit: 500}},
		{"a consistent read is left alone", metav1.ListOptions{Limit: 500}, metav1.ListOptions{Limit: 500}},
		{"a continuation is left alone", metav1.ListOptions{Continue: "tok", Limit: 500}, metav1.ListOptions{Continue: "tok", Limit: 500}},
		{"an explicit match is left alone", metav1.ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan},
			metav1.ListOptions{ResourceVersion: "0", ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ListOptions(tc.in); got != tc.want {
				t.Errorf("ListOptions(%+v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// fakeLW answers List with a copy of page and records the options asked.
type fakeLW struct {
	page  corev1.ConfigMapList
	err   error
	asked []metav1.ListOptions
}

func (f *fakeLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	f.asked = append(f.asked, opts)
	if f.err != nil {
		return nil, f.err
	}
	return f.page.DeepCopy(), nil
}

func (f *fakeLW) Watch(metav1.ListOptions) (watch.Interface, error) { return watch.NewFake(), nil }

func page() corev1.ConfigMapList {
	var l corev1.ConfigMapList
	for _, n := range []string{"a", "b", "c"} {
		l.Items = append(l.Items, corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: n, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		}})
	}
	return l
}

func stripInPlace(o any) (any, error) {
	o.(*corev1.ConfigMap).ManagedFields = nil
	return o, nil
}

func renameToCopy(o any) (any, error) {
	c := o.(*corev1.ConfigMap).DeepCopy()
	c.Name += "-copy"
	return c, nil
}

func TestWrapTransformsEveryItem(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transform toolscache.TransformFunc
		check     func(corev1.ConfigMap) bool
	}{
		{"in place", stripInPlace, func(c corev1.ConfigMap) bool { return c.ManagedFields == nil }},
		{"new objects put back", renameToCopy, func(c corev1.ConfigMap) bool { return len(c.Name) > 5 && c.Name[len(c.Name)-5:] == "-copy" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLW{page: page()}
			out, err := Wrap(f, tc.transform).(toolscache.ListerWithContext).ListWithContext(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
			if err != nil {
				t.Fatal(err)
			}
			got := out.(*corev1.ConfigMapList)
			if len(got.Items) != 3 {
				t.Fatalf("%d items, want 3", len(got.Items))
			}
			for _, c := range got.Items {
				if !tc.check(c) {
					t.Errorf("item not transformed: %+v", c.ObjectMeta)
				}
			}
			if len(f.asked) != 1 || f.asked[0].ResourceVersion != "" || f.asked[0].Limit != PageSize {
				t.Errorf("asked %+v, want one consistent read of %d", f.asked, PageSize)
			}
		})
	}
}

func TestWrapErrors(t *testing.T) {
	f := &fakeLW{err: errors.New("boom")}
	if _, err := Wrap(f, stripInPlace).List(metav1.ListOptions{}); err == nil || err.Error() != "boom" {
		t.Errorf("list error: got %v, want boom", err)
	}
	f = &fakeLW{page: page()}
	failing := func(any) (any, error) { return nil, errors.New("bad object") }
	if _, err := Wrap(f, failing).List(metav1.ListOptions{}); err == nil {
		t.Error("a failing transform must fail the list")
	}
	// No transform: the page passes as listed.
	out, err := Wrap(f, nil).List(metav1.ListOptions{})
	if err != nil || out.(*corev1.ConfigMapList).Items[0].ManagedFields == nil {
		t.Errorf("without a transform the page must pass unchanged: %v", err)
	}
}

func TestTransformsOf(t *testing.T) {
	byKind := func(any) (any, error) { return "by kind", nil }
	def := func(any) (any, error) { return "default", nil }
	opts := cache.Options{DefaultTransform: def, ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Transform: byKind},
		&corev1.Secret{}:    {}, // no transform of its own: the default
	}}
	for _, tc := range []struct {
		example runtime.Object
		want    string
	}{
		{&corev1.ConfigMap{}, "by kind"},
		{&corev1.Secret{}, "default"},
		{&corev1.Service{}, "default"},
	} {
		out, _ := transformsOf(opts)(tc.example)(nil)
		if out != tc.want {
			t.Errorf("%T: transform %v, want %s", tc.example, out, tc.want)
		}
	}
	if transformsOf(cache.Options{})(&corev1.Service{}) != nil {
		t.Error("no transform set: want none")
	}
}
