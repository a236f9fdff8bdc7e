package responder

import (
	"net"
	"reflect"
	"regexp"
	"testing"
)

func TestSelectInterfacesRules(t *testing.T) {
	up := net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	all := []net.Interface{
		{Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Name: "eth1", Flags: up},
		{Name: "eth0", Flags: up},
		{Name: "eth2", Flags: net.FlagBroadcast}, // down
		{Name: "wg0", Flags: net.FlagUp | net.FlagPointToPoint},
		{Name: "bond0", Flags: up},
		{Name: "ens1f0", Flags: up}, // enslaved to bond0
		{Name: "cni0", Flags: up},
		{Name: "br-ex", Flags: up},
	}
	masters := map[string]string{"ens1f0": "bond0"}
	master := func(n string) (string, error) { return masters[n], nil }
	names := func(ifs []net.Interface) []string {
		var out []string
		for _, i := range ifs {
			out = append(out, i.Name)
		}
		return out
	}

	tests := []struct {
		name        string
		wanted      []string
		exclude     []*regexp.Regexp
		want        []string
		wantSkipped map[string]string
	}{
		{
			name: "no names: every suitable interface, sorted",
			want: []string{"bond0", "br-ex", "cni0", "eth0", "eth1"},
			wantSkipped: map[string]string{
				"lo": "loopback", "eth2": "down", "wg0": "not broadcast-capable", "ens1f0": "enslaved to bond0",
			},
		},
		{
			name:    "exclusions drop matching names",
			exclude: append([]*regexp.Regexp{regexp.MustCompile(`^br-`)}, DefaultExclude...),
			want:    []string{"bond0", "eth0", "eth1"},
			wantSkipped: map[string]string{
				"lo": "loopback", "eth2": "down", "wg0": "not broadcast-capable", "ens1f0": "enslaved to bond0",
				"br-ex": `name matches exclusion "^br-"`,
				"cni0":  `name matches exclusion "` + DefaultExclude[0].String() + `"`,
			},
		},
		{
			name:   "names: only those, each checked, absent ones reported",
			wanted: []string{"eth1", "eth2", "ens1f0", "eth9"},
			want:   []string{"eth1"},
			wantSkipped: map[string]string{
				"eth2": "down", "ens1f0": "enslaved to bond0", "eth9": "not present on this node",
			},
		},
		{
			name:        "exclusions apply to named interfaces too",
			wanted:      []string{"cni0"},
			exclude:     DefaultExclude,
			want:        nil,
			wantSkipped: map[string]string{"cni0": `name matches exclusion "` + DefaultExclude[0].String() + `"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped, err := selectInterfaces(all, tt.wanted, tt.exclude, master)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Errorf("chosen = %v, want %v", names(got), tt.want)
			}
			if !reflect.DeepEqual(skipped, tt.wantSkipped) {
				t.Errorf("skipped = %v, want %v", skipped, tt.wantSkipped)
			}
		})
	}
}

// TestSelectInterfacesInNamespace runs the real thing (net.Interfaces and
// the kernel's link masters) in a namespace holding one of each case.
func TestSelectInterfacesInNamespace(t *testing.T) {
	requireRoot(t)
	ns := newNS(t, "if")
	for _, args := range [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"}, // eth0p stays down
		{"link", "add", "br0", "type", "bridge"},
		{"link", "add", "port0", "type", "veth", "peer", "name", "port0p"},
		{"link", "set", "port0", "master", "br0"},
		{"link", "add", "cni0", "type", "bridge"},
		{"link", "set", "eth0", "up"},
		{"link", "set", "br0", "up"},
		{"link", "set", "port0", "up"},
		{"link", "set", "cni0", "up"},
	} {
		mustRun(t, "ip", append([]string{"-n", ns}, args...)...)
	}
	var got []net.Interface
	var skipped map[string]string
	if err := inNS(ns, func() error {
		var err error
		got, skipped, err = SelectInterfaces(nil, DefaultExclude)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range got {
		names = append(names, i.Name)
	}
	if want := []string{"br0", "eth0"}; !reflect.DeepEqual(names, want) {
		t.Errorf("chosen = %v, want %v (skipped %v)", names, want, skipped)
	}
	wantSkipped := map[string]string{
		"lo":     "loopback",
		"eth0p":  "down",
		"port0p": "down",
		"port0":  "enslaved to br0",
		"cni0":   `name matches exclusion "` + DefaultExclude[0].String() + `"`,
	}
	if !reflect.DeepEqual(skipped, wantSkipped) {
		t.Errorf("skipped = %v, want %v", skipped, wantSkipped)
	}
}
