package assigner

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/pkg/ipam"
)

// Event reasons on Services (MetalLB's, plus PoolNameMatchedIgnoringCase).
const (
	// ReasonIPAllocated (Normal): the Service got new addresses.
	ReasonIPAllocated = "IPAllocated"
	// ReasonAllocationFailed (Warning): the Service has no address; the
	// message says why and what to do.
	ReasonAllocationFailed = "AllocationFailed"
	// ReasonClearAssignment (Warning): addresses the Service had were taken
	// away; the message says why.
	ReasonClearAssignment = "ClearAssignment"
	// ReasonPoolNameMatchedIgnoringCase (Normal): the pool annotation names
	// a pool only ignoring case (e.g. IPPool-B for ippool-b).
	ReasonPoolNameMatchedIgnoringCase = "PoolNameMatchedIgnoringCase"
)

// svcEvent is one event to record on a Service.
type svcEvent struct {
	Type, Reason, Message string
}

// events returns the events an outcome deserves, given that the Service's
// status changes from status to the outcome's addresses.
func (out *outcome) events(key string, status []netip.Addr) []svcEvent {
	var evs []svcEvent
	if len(out.Dropped) > 0 {
		evs = append(evs, svcEvent{corev1.EventTypeWarning, ReasonClearAssignment,
			fmt.Sprintf("Cleared %s: %s", quoteAddrs(out.Dropped), out.DropReason)})
	}
	if out.Err != nil {
		evs = append(evs, svcEvent{corev1.EventTypeWarning, ReasonAllocationFailed, failureMessage(key, out.Err)})
		return evs
	}
	if !sameAddrs(status, out.Assignment.IPs) {
		if out.Note != "" {
			evs = append(evs, svcEvent{corev1.EventTypeNormal, ReasonPoolNameMatchedIgnoringCase, out.Note})
		}
		evs = append(evs, svcEvent{corev1.EventTypeNormal, ReasonIPAllocated,
			fmt.Sprintf("Assigned IP %s from ipaddresspool %q", quoteAddrs(out.Assignment.IPs), out.Assignment.Pool)})
	}
	return evs
}

// failureMessage is the AllocationFailed message: what failed, and what to
// do about it.
func failureMessage(key string, err error) string {
	msg := fmt.Sprintf("Failed to allocate IP for %q: %s", key, err.Error())
	if h := hint(err); h != "" {
		msg += "; " + h
	}
	return msg
}

// hint says what a user can do about an allocation error. Errors made here
// (userError) already say it.
func hint(err error) string {
	var ue *userError
	if errors.As(err, &ue) && ue.kind == nil {
		return ""
	}
	var sc *ipam.SharingConflictError
	if errors.As(err, &sc) {
		switch sc.Reason {
		case ipam.ConflictNotShared, ipam.ConflictSharingKey:
			return "give every Service that should share the address the same metallb.io/allow-shared-ip value, or ask for another address"
		case ipam.ConflictBackend:
			return "or ask for another address"
		case ipam.ConflictPort:
			return "Services sharing an address must use different ports: change the port or ask for another address"
		}
		return "ask for another address"
	}
	switch {
	case errors.Is(err, ipam.ErrPoolExhausted):
		return "free addresses (delete unused LoadBalancer Services) or add addresses to the pool"
	case errors.Is(err, ipam.ErrFamilyUnavailable):
		return "add a range of the missing IP family to the pool, or change spec.ipFamilyPolicy"
	case errors.Is(err, ipam.ErrNotInPool), errors.Is(err, ipam.ErrDifferentPools):
		return "ask for addresses of one pool that may serve this Service"
	case errors.Is(err, ipam.ErrInvalidRequest):
		return "ask for at most one address per IP family, of the Service's families"
	}
	return ""
}

// errorReason is the metrics label of an allocation error.
func errorReason(err error) string {
	for _, k := range []struct {
		err    error
		reason string
	}{
		{ipam.ErrSharingConflict, "sharing_conflict"},
		{ipam.ErrPoolExhausted, "pool_exhausted"},
		{ipam.ErrFamilyUnavailable, "family_unavailable"},
		{ipam.ErrNotInPool, "not_in_pool"},
		{ipam.ErrDifferentPools, "different_pools"},
		{ipam.ErrNoPool, "no_pool"},
		{ipam.ErrUnknownPool, "unknown_pool"},
		{ipam.ErrInvalidRequest, "invalid_request"},
	} {
		if errors.Is(err, k.err) {
			return k.reason
		}
	}
	var ue *userError
	if errors.As(err, &ue) {
		return "invalid_service"
	}
	return "other"
}

func quoteAddrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = fmt.Sprintf("%q", ip.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
