package render

import (
	"strings"
	"testing"
)

func TestImagesFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		env  map[string]string
		self string
		want [3]string
		err  bool
	}{
		{name: "own pod image", self: "registry.local:5000/lbstack:v1",
			want: [3]string{"registry.local:5000/lbstack:v1", "registry.local:5000/lbstack:v1", "registry.local:5000/lbstack-frr:v1"}},
		{name: "OPERATOR_IMAGE wins over the pod", env: map[string]string{"OPERATOR_IMAGE": "quay.io/lbstack/lbstack:v2"}, self: "x",
			want: [3]string{"quay.io/lbstack/lbstack:v2", "quay.io/lbstack/lbstack:v2", "quay.io/lbstack/lbstack-frr:v2"}},
		{name: "FRR beside the speaker image, by digest", env: map[string]string{"SPEAKER_IMAGE": "quay.io/lbstack/lbstack@sha256:0123"}, self: "x:1",
			want: [3]string{"x:1", "quay.io/lbstack/lbstack@sha256:0123", "quay.io/lbstack/lbstack-frr@sha256:0123"}},
		{name: "per component", env: map[string]string{"OPERATOR_IMAGE": "op:1", "CONTROLLER_IMAGE": "c:1", "SPEAKER_IMAGE": "s:1", "FRR_IMAGE": "registry.local:5000/frr:9"},
			want: [3]string{"c:1", "s:1", "registry.local:5000/frr:9"}},
		{name: "nothing known", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ImagesFromEnv(env(tc.env), tc.self)
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), "OPERATOR_IMAGE") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]string{img.Controller, img.Speaker, img.FRR}; got != tc.want {
				t.Errorf("images = %v, want %v", got, tc.want)
			}
		})
	}
}
