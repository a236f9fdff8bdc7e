package platform

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// failingMapper fails every lookup with an error other than no-match.
type failingMapper struct{ meta.RESTMapper }

func (failingMapper) RESTMapping(schema.GroupKind, ...string) (*meta.RESTMapping, error) {
	return nil, errors.New("discovery unavailable")
}

func TestServed(t *testing.T) {
	calico := schema.GroupVersionKind{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPConfiguration"}
	nmstate := schema.GroupVersionKind{Group: "nmstate.io", Version: "v1", Kind: "NodeNetworkConfigurationPolicy"}
	known := meta.NewDefaultRESTMapper(nil)
	known.Add(calico, meta.RESTScopeRoot)
	for _, tc := range []struct {
		name    string
		mapper  meta.RESTMapper
		gvk     schema.GroupVersionKind
		want    bool
		wantErr bool
	}{
		{name: "served", mapper: known, gvk: calico, want: true},
		{name: "no match: not served", mapper: known, gvk: nmstate},
		{name: "another version of a served kind: not served", mapper: known, gvk: schema.GroupVersionKind{Group: calico.Group, Version: "v3", Kind: calico.Kind}},
		{name: "discovery failing: an error", mapper: failingMapper{}, gvk: calico, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Served(tc.mapper, tc.gvk)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("Served(%s) = %v, %v; want %v, error %v", tc.gvk, got, err, tc.want, tc.wantErr)
			}
		})
	}
}
