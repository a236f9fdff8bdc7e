package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lbstack/lbstack/test/lab"
)

// TestClientHelpers: the client on the node segment resolves addresses the
// way the layer-2 checks will - ARP and NDP answers with the answering MACs,
// and its kernel's neighbour table.
func TestClientHelpers(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	ctx := context.Background()
	c := l.Client
	macs, err := c.ARP(ctx, lab.NodeAddr(2))
	if err != nil || !slices.Equal(macs, []string{lab.NodeMAC(2)}) {
		t.Errorf("ARP %s: %v %v, want only %s", lab.NodeAddr(2), macs, err, lab.NodeMAC(2))
	}
	macs, err = c.NDP(ctx, lab.NodeAddr6(3), 2*time.Second)
	if err != nil || !slices.Equal(macs, []string{lab.NodeMAC(3)}) {
		t.Errorf("NDP %s: %v %v, want only %s", lab.NodeAddr6(3), macs, err, lab.NodeMAC(3))
	}
	// Nobody holds a layer-2 pool address until a speaker announces it.
	if macs, err := c.ARP(ctx, "198.18.0.250"); err != nil || len(macs) != 0 {
		t.Errorf("ARP for an unannounced address: %v %v", macs, err)
	}
	if macs, err := c.NDP(ctx, "2001:db8:18::250", time.Second); err != nil || len(macs) != 0 {
		t.Errorf("NDP for an unannounced address: %v %v", macs, err)
	}
	for _, a := range []string{lab.RouterAddr, lab.RouterAddr6} {
		if err := c.Poke(a); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "router in the client's neighbour table", func() (bool, string) {
		ns, err := c.Neighbours(ctx)
		if err != nil {
			return false, err.Error()
		}
		found := 0
		for _, n := range ns {
			if (n.Addr == lab.RouterAddr || n.Addr == lab.RouterAddr6) && n.MAC == lab.RouterMAC {
				found++
			}
		}
		return found == 2, "neighbours: " + func() string {
			s := ""
			for _, n := range ns {
				s += n.Addr + "=" + n.MAC + " "
			}
			return s
		}()
	})
}
