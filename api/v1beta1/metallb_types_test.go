package v1beta1

import "testing"

// TestBGPTypeSupported: the backends lbstack runs, not the frr-k8s modes.
func TestBGPTypeSupported(t *testing.T) {
	for typ, want := range map[BGPType]bool{
		BGPTypeNative: true, BGPTypeFRR: true, BGPTypeCalico: true,
		BGPTypeFRRK8s: false, BGPTypeFRRK8sExternal: false, "": false, "gobgp": false,
	} {
		if got := typ.Supported(); got != want {
			t.Errorf("%q.Supported() = %v, want %v", typ, got, want)
		}
	}
}
