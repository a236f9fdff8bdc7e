package mustgather

import (
	"strings"
	"testing"
)

func TestWriteSummary(t *testing.T) {
	var b strings.Builder
	r := &Result{Namespace: "metallb-system", Found: "the MetalLB object"}
	if err := r.WriteSummary(&b, "must-gather.local"); err != nil {
		t.Fatal(err)
	}
	want := "must-gather: wrote must-gather.local (stack namespace metallb-system, found by the MetalLB object)\n" +
		"must-gather: the lbstack operator is not installed in this cluster\n"
	if b.String() != want {
		t.Errorf("summary %q, want %q", b.String(), want)
	}
	b.Reset()
	r.OperatorInstalled = true
	if err := r.WriteSummary(&b, "d"); err != nil || strings.Contains(b.String(), "not installed") {
		t.Errorf("summary with the operator installed: %q, %v", b.String(), err)
	}
}
