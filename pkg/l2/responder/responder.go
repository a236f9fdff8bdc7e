// Package responder answers ARP (IPv4) and NDP (IPv6) for addresses that a
// node announces in layer 2, on one network interface, without configuring
// those addresses on the interface: the kernel keeps ignoring them, and
// only the responder claims them. Which node announces what is decided
// elsewhere (pkg/l2/election); a Responder only does what it is told, and
// stops at once when told to.
package responder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
)

// Defaults of Options. Five announcements 500 ms apart span two seconds:
// enough to outlast Linux's neighbour locktime (1 s, during which a second
// update of an entry is ignored) and a lost frame or two.
const (
	DefaultGratuitousCount    = 5
	DefaultGratuitousInterval = 500 * time.Millisecond
)

// Options tune a Responder. The zero value is usable.
type Options struct {
	// GratuitousCount is how many gratuitous ARP packets (IPv4) or
	// unsolicited neighbour advertisements (IPv6) Announce sends, the first
	// at once: they move the neighbour caches of the segment to this node
	// after a failover, before the caches expire on their own.
	// 0 means DefaultGratuitousCount; negative sends none.
	GratuitousCount int
	// GratuitousInterval is the pause between them; 0 means
	// DefaultGratuitousInterval.
	GratuitousInterval time.Duration
	// Log receives errors that do not stop the responder (a failed send)
	// and debug lines; the zero Logger discards them.
	Log logr.Logger
}

// Stats are the responder's counters since it was created.
type Stats struct {
	// RequestsReceived counts ARP requests and neighbour solicitations for
	// an announced address (requests for other addresses are not counted:
	// a busy segment would drown the figure).
	RequestsReceived uint64
	// ResponsesSent counts ARP replies and solicited neighbour
	// advertisements sent.
	ResponsesSent uint64
	// GratuitousSent counts gratuitous ARP packets and unsolicited
	// neighbour advertisements sent.
	GratuitousSent uint64
	// SendErrors counts packets that could not be sent.
	SendErrors uint64
}

// Responder answers ARP and NDP on one interface for the addresses it was
// told to Announce. Its methods are safe for concurrent use.
type Responder struct {
	ifi  *net.Interface
	opts Options

	// arp is nil on an interface without broadcast (no ARP there); ndp and
	// ndpUnicast are nil on an interface without an IPv6 link-local
	// address. ndp gets the multicast solicitations, ndpUnicast the
	// unicast ones (see ndp_unicast.go).
	arp        *arp.Client
	ndp        *ndp.Conn
	ndpUnicast *packet.Conn

	mu     sync.Mutex
	closed bool
	owned  map[netip.Addr]chan struct{} // closed to stop the address's gratuitous announcements
	groups map[netip.Addr]int           // solicited-node groups joined, by the number of owned addresses in them

	wg sync.WaitGroup

	requests, responses, gratuitous, sendErrors atomic.Uint64
}

// New opens the ARP and NDP sockets on the named interface and starts
// answering (for nothing yet). ARP runs when the interface is
// broadcast-capable, NDP when it has an IPv6 link-local address; New fails
// when neither can. NDP binds to the link-local address, so New also fails
// while that address is still tentative (duplicate address detection,
// about a second after the interface comes up): the caller retries.
//
// The sockets belong to the network namespace of the calling thread, and
// stay in it for their lifetime.
func New(name string, opts Options) (*Responder, error) {
	if opts.GratuitousCount == 0 {
		opts.GratuitousCount = DefaultGratuitousCount
	}
	if opts.GratuitousInterval <= 0 {
		opts.GratuitousInterval = DefaultGratuitousInterval
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("interface %q: no Ethernet hardware address", name)
	}
	r := &Responder{
		ifi:    ifi,
		opts:   opts,
		owned:  map[netip.Addr]chan struct{}{},
		groups: map[netip.Addr]int{},
	}
	if ifi.Flags&net.FlagBroadcast != 0 {
		c, err := arp.Dial(ifi)
		if err != nil {
			return nil, fmt.Errorf("interface %q: opening ARP socket: %w", name, err)
		}
		r.arp = c
	}
	if err := r.startNDPLocked(ifi); err != nil {
		_ = r.closeSockets()
		return nil, err
	}
	if r.arp == nil && r.ndp == nil {
		return nil, fmt.Errorf("interface %q: neither ARP (no broadcast) nor NDP (no IPv6 link-local address) can run on it", name)
	}
	if r.arp != nil {
		r.wg.Add(1)
		go r.serveARP()
	}
	return r, nil
}

// startNDPLocked opens the NDP sockets and starts answering solicitations
// once ifi has an IPv6 link-local address (NDP is sent from it); without
// one it does nothing, and a later Announce of an IPv6 address tries again:
// an interface that just came up gets its link-local address a moment
// later. Called from New, or with mu held.
func (r *Responder) startNDPLocked(ifi *net.Interface) error {
	if r.ndp != nil || !hasLinkLocal(ifi) {
		return nil
	}
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return fmt.Errorf("interface %q: opening NDP socket: %w", ifi.Name, err)
	}
	u, err := listenUnicastNS(ifi)
	if err != nil {
		_ = c.Close()
		return fmt.Errorf("interface %q: %w", ifi.Name, err)
	}
	r.ndp, r.ndpUnicast = c, u
	if err := r.ndpFilter(); err != nil {
		return fmt.Errorf("interface %q: %w", ifi.Name, err)
	}
	r.wg.Add(2)
	go r.serveNDP()
	go r.serveUnicastNS()
	return nil
}

// Interface is the name of the responder's interface.
func (r *Responder) Interface() string { return r.ifi.Name }

// HardwareAddr is the MAC address the responder answers with.
func (r *Responder) HardwareAddr() net.HardwareAddr { return r.ifi.HardwareAddr }

// Announce starts answering for addr and sends its gratuitous
// announcements (Options.GratuitousCount, the first at once). Announcing
// an address already announced does nothing: a reconcile loop may call it
// on every pass without flooding the segment.
func (r *Responder) Announce(addr netip.Addr) error {
	addr = addr.Unmap()
	if err := r.supports(addr); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("interface %q: announce %s: responder closed", r.ifi.Name, addr)
	}
	if _, ok := r.owned[addr]; ok {
		return nil
	}
	if addr.Is6() {
		if r.ndp == nil {
			if ifi, err := net.InterfaceByName(r.ifi.Name); err == nil {
				if err := r.startNDPLocked(ifi); err != nil {
					return err
				}
			}
		}
		if r.ndp == nil {
			return fmt.Errorf("interface %q: cannot announce %s: no NDP on this interface (it has no IPv6 link-local address)", r.ifi.Name, addr)
		}
		if err := r.joinGroupLocked(addr); err != nil {
			return err
		}
	}
	stop := make(chan struct{})
	r.owned[addr] = stop
	r.wg.Add(1)
	go r.announceLoop(addr, stop)
	return nil
}

// Withdraw stops answering for addr at once and cancels its pending
// gratuitous announcements. Withdrawing an address not announced does
// nothing. An error means the solicited-node group could not be left; the
// address is withdrawn all the same.
func (r *Responder) Withdraw(addr netip.Addr) error {
	addr = addr.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	stop, ok := r.owned[addr]
	if !ok {
		return nil
	}
	delete(r.owned, addr)
	close(stop)
	if addr.Is6() && r.ndp != nil {
		return r.leaveGroupLocked(addr)
	}
	return nil
}

// Announced returns the addresses being announced, in no order.
func (r *Responder) Announced() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]netip.Addr, 0, len(r.owned))
	for a := range r.owned {
		out = append(out, a)
	}
	return out
}

// Stats returns the counters.
func (r *Responder) Stats() Stats {
	return Stats{
		RequestsReceived: r.requests.Load(),
		ResponsesSent:    r.responses.Load(),
		GratuitousSent:   r.gratuitous.Load(),
		SendErrors:       r.sendErrors.Load(),
	}
}

// Close withdraws every address, closes the sockets and waits for the
// responder's goroutines to end.
func (r *Responder) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for a, stop := range r.owned {
		close(stop)
		delete(r.owned, a)
	}
	r.mu.Unlock()
	err := r.closeSockets()
	r.wg.Wait()
	return err
}

func (r *Responder) closeSockets() error {
	var errs []error
	if r.arp != nil {
		// A deadline in the past wakes a blocked Read even where closing
		// the socket alone would not.
		_ = r.arp.SetReadDeadline(time.Now())
		if err := r.arp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("interface %q: closing ARP socket: %w", r.ifi.Name, err))
		}
	}
	if r.ndp != nil {
		_ = r.ndp.SetReadDeadline(time.Now())
		if err := r.ndp.Close(); err != nil {
			errs = append(errs, fmt.Errorf("interface %q: closing NDP socket: %w", r.ifi.Name, err))
		}
	}
	if r.ndpUnicast != nil {
		_ = r.ndpUnicast.SetReadDeadline(time.Now())
		if err := r.ndpUnicast.Close(); err != nil {
			errs = append(errs, fmt.Errorf("interface %q: closing unicast solicitation socket: %w", r.ifi.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Responder) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// ifOwned calls answer when addr is announced, holding the lock so that
// no answer leaves after Withdraw returned. It reports whether addr is
// announced.
func (r *Responder) ifOwned(addr netip.Addr, answer func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.owned[addr.Unmap()]; !ok {
		return false
	}
	answer()
	return true
}

func (r *Responder) supports(addr netip.Addr) error {
	switch {
	case !addr.IsValid():
		return fmt.Errorf("interface %q: invalid address", r.ifi.Name)
	case addr.Is4() && r.arp == nil:
		return fmt.Errorf("interface %q: cannot announce %s: no ARP on this interface (not broadcast-capable)", r.ifi.Name, addr)
	case addr.IsMulticast() || addr.IsUnspecified() || addr.IsLoopback() || addr.IsLinkLocalUnicast():
		return fmt.Errorf("interface %q: cannot announce %s: not a unicast service address", r.ifi.Name, addr)
	}
	return nil
}

// announceLoop sends the gratuitous announcements of addr until they are
// all sent, the address is withdrawn or the responder closes.
func (r *Responder) announceLoop(addr netip.Addr, stop <-chan struct{}) {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.GratuitousInterval)
	defer t.Stop()
	for i := 0; i < r.opts.GratuitousCount; i++ {
		if i > 0 {
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
		if !r.announceOnce(addr, stop) {
			return
		}
	}
}

// announceOnce sends one gratuitous announcement of addr unless it was
// withdrawn. It holds the lock while sending (microseconds) so that no
// announcement leaves after Withdraw returned.
func (r *Responder) announceOnce(addr netip.Addr, stop <-chan struct{}) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-stop:
		return false
	default:
	}
	var err error
	if addr.Is4() {
		err = r.gratuitousARP(addr)
	} else {
		err = r.unsolicitedNA(addr)
	}
	if err != nil {
		r.opts.Log.Error(err, "gratuitous announcement failed", "interface", r.ifi.Name, "address", addr)
	}
	return true
}

// sent counts the outcome of one send.
func (r *Responder) sent(counter *atomic.Uint64, err error) error {
	if err != nil {
		r.sendErrors.Add(1)
		return err
	}
	counter.Add(1)
	return nil
}

func hasLinkLocal(ifi *net.Interface) bool {
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}
