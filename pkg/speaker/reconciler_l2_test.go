package speaker

import (
	"slices"
	"testing"
)

// TestChangedKeys: the ServiceL2Status objects written after a layer-2
// change are those of the Services whose interfaces differ, appeared or
// went, and no others.
func TestChangedKeys(t *testing.T) {
	tests := []struct {
		name string
		a, b map[string][]string
		want []string
	}{
		{name: "nothing", want: nil},
		{name: "the same", a: map[string][]string{"d/a": {"eth0"}}, b: map[string][]string{"d/a": {"eth0"}}},
		{name: "appeared", b: map[string][]string{"d/a": {"eth0"}}, want: []string{"d/a"}},
		{name: "went", a: map[string][]string{"d/a": {"eth0"}}, b: map[string][]string{}, want: []string{"d/a"}},
		{name: "interfaces changed (a Service sharing the address)",
			a:    map[string][]string{"d/a": {"eth0"}, "d/b": {"eth0"}, "d/c": {"eth1"}},
			b:    map[string][]string{"d/a": {"eth0", "eth1"}, "d/b": {"eth0", "eth1"}, "d/c": {"eth1"}},
			want: []string{"d/a", "d/b"}},
		{name: "sorted", a: map[string][]string{"d/z": nil}, b: map[string][]string{"d/a": nil}, want: []string{"d/a", "d/z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := changedKeys(tt.a, tt.b); !slices.Equal(got, tt.want) {
				t.Errorf("changedKeys = %v, want %v", got, tt.want)
			}
		})
	}
}
