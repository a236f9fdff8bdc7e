package controllers

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
)

// notRendered are the MetalLB spec fields that never reach a template as
// text: bgpBackend picks the templates (and anything but native or frr is
// refused before rendering), frrk8sConfig belongs to the frr-k8s backends,
// which lbstack refuses.
var notRendered = map[string]bool{
	"Spec.BGPType":      true,
	"Spec.FRRK8SConfig": true,
}

// hostile is a value meant to break out of a YAML scalar: a newline that
// starts a new list item (an extra container), a comment marker that cuts
// the value, both quote kinds and a template action.
func hostile(path string) string {
	return fmt.Sprintf("v:%s\n- name: injected\n  image: evil #1 \"dq\" 'sq' {{ .Namespace }} ${X} $(NODE_NAME)", path)
}

// fillHostile sets every string reachable from v (struct fields, slice
// elements - one is appended to empty slices - string maps' keys and
// values, pointers to structs) to a distinct hostile value and returns the
// values set, by path. Maps of non-string values (resource lists of
// quantities) are left alone.
func fillHostile(t *testing.T, v reflect.Value, path string, out map[string]string) {
	t.Helper()
	if notRendered[path] {
		return
	}
	switch v.Kind() {
	case reflect.String:
		s := hostile(path)
		v.SetString(s)
		out[path] = s
	case reflect.Pointer:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillHostile(t, v.Elem(), path, out)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fillHostile(t, v.Field(i), path+"."+f.Name, out)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		if v.Len() == 0 {
			v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
		}
		for i := 0; i < v.Len(); i++ {
			fillHostile(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		k, val := hostile(path+"{key}"), hostile(path+"{value}")
		v.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), reflect.ValueOf(val).Convert(v.Type().Elem()))
		out[path+"{key}"], out[path+"{value}"] = k, val
	}
}

// strs collects every string of a rendered object: values and map keys.
func strs(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case map[string]any:
		for k, e := range x {
			*out = append(*out, k)
			strs(e, out)
		}
	case []any:
		for _, e := range x {
			strs(e, out)
		}
	}
}

func containerNames(t *testing.T, objs []*unstructured.Unstructured, kind, field string) []string {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != kind {
			continue
		}
		cs, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
		if err != nil {
			t.Fatalf("%s %s: %v", kind, o.GetName(), err)
		}
		var names []string
		for _, c := range cs {
			names = append(names, c.(map[string]any)["name"].(string))
		}
		return names
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

// TestHostileSpecValues renders the stack for a MetalLB object whose every
// string field (nested ones included) holds a value built to escape its
// YAML scalar, and checks the objects still parse, carry every value
// verbatim, and hold exactly the containers a benign spec renders: no value
// of the spec can add a container, an argument or a field.
func TestHostileSpecValues(t *testing.T) {
	for _, backend := range []v1beta1.BGPType{v1beta1.BGPTypeNative, v1beta1.BGPTypeFRR} {
		t.Run(string(backend), func(t *testing.T) {
			benign := &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "metallb"}, Spec: v1beta1.MetalLBSpec{BGPType: backend}}
			images := render.Images{Controller: "quay.io/lbstack/lbstack:v1", Speaker: "quay.io/lbstack/lbstack:v1", FRR: "quay.io/lbstack/lbstack-frr:v1"}
			want, err := render.Render(bindata.FS, ParamsFor(benign, images, false, true, "a2V5"))
			if err != nil {
				t.Fatal(err)
			}

			ml := benign.DeepCopy()
			values := map[string]string{}
			fillHostile(t, reflect.ValueOf(ml).Elem().FieldByName("Spec"), "Spec", values)
			if len(values) < 20 {
				t.Fatalf("only %d string fields filled; the walk is broken", len(values))
			}
			got, err := render.Render(bindata.FS, ParamsFor(ml, images, false, true, "a2V5"))
			if err != nil {
				t.Fatalf("render with hostile values: %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("hostile values rendered %d objects, a benign spec %d", len(got), len(want))
			}
			for _, kind := range []string{"Deployment", "DaemonSet"} {
				for _, f := range []string{"containers", "initContainers"} {
					if g, w := containerNames(t, got, kind, f), containerNames(t, want, kind, f); !slices.Equal(g, w) {
						t.Errorf("%s %s: %v, want %v", kind, f, g, w)
					}
				}
			}
			var all []string
			for _, o := range got {
				strs(o.Object, &all)
			}
			for path, v := range values {
				found := slices.ContainsFunc(all, func(s string) bool {
					// Arguments carry the value after their flag.
					return s == v || (strings.HasPrefix(s, "--") && strings.HasSuffix(s, "="+v))
				})
				if !found {
					t.Errorf("%s: the rendered objects do not carry %q verbatim", path, v)
				}
			}
		})
	}
}
