package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Sentinel errors. Every error returned by Assign and Claim matches one or
// more of these with errors.Is; the message itself names the pool, address,
// service and port involved, so the controller can put it verbatim into an
// AllocationFailed event.
var (
	// ErrPoolExhausted: a candidate pool has a range of the wanted family
	// but no free (or shareable) address left in it.
	ErrPoolExhausted = errors.New("address pool exhausted")
	// ErrNotInPool: an explicit address is in no pool, is excluded by the
	// pool's avoidBuggyIPs, or is in a pool the service may not use.
	ErrNotInPool = errors.New("address not in an allowed pool")
	// ErrSharingConflict: an explicit (or previously held) address is used by
	// another service and the two may not share it. The error is a
	// *SharingConflictError carrying the details.
	ErrSharingConflict = errors.New("address sharing conflict")
	// ErrUnknownPool: a candidate pool name is not in the current pool set.
	ErrUnknownPool = errors.New("unknown address pool")
	// ErrFamilyUnavailable: a candidate pool has no range of a wanted family.
	ErrFamilyUnavailable = errors.New("IP family not available in pool")
	// ErrDifferentPools: explicit addresses come from more than one pool.
	ErrDifferentPools = errors.New("addresses from different pools")
	// ErrNoPool: the request names no candidate pool at all (no pool's
	// serviceAllocation matches the service and no autoAssign pool exists).
	ErrNoPool = errors.New("no address pool available")
	// ErrInvalidRequest: the request itself is malformed (no service key,
	// no family, two addresses of one family, an address of a family the
	// service does not have, Claim addresses differing from Request.IPs, ...).
	// A controller bug or a Service the API server should have rejected.
	ErrInvalidRequest = errors.New("invalid allocation request")
)

// reasonError is a sentinel plus a human-readable message.
type reasonError struct {
	kind error
	msg  string
}

func (e *reasonError) Error() string { return e.msg }
func (e *reasonError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &reasonError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// poolsError is returned when several candidate pools were tried and all
// failed. Its message lists each pool's reason in the order tried;
// errors.Is matches every reason that applied (e.g. both ErrPoolExhausted and
// ErrFamilyUnavailable when one pool was full and another had no IPv6 range).
type poolsError struct{ errs []error }

func (e *poolsError) Error() string {
	parts := make([]string, len(e.errs))
	for i, err := range e.errs {
		parts[i] = err.Error()
	}
	return "no candidate pool could serve the service: " + strings.Join(parts, "; ")
}

func (e *poolsError) Unwrap() []error { return e.errs }

func combine(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return &poolsError{errs: errs}
}

// ConflictReason says why two services may not share an address.
type ConflictReason int

const (
	// ConflictNotShared: one of the two services sets no sharing key
	// (metallb.io/allow-shared-ip).
	ConflictNotShared ConflictReason = iota + 1
	// ConflictSharingKey: both set a sharing key but the keys differ.
	ConflictSharingKey
	// ConflictBackend: the BackendKeys differ (externalTrafficPolicy Local
	// services must select the same pods; see Service.BackendKey).
	ConflictBackend
	// ConflictPort: both use the same protocol and port.
	ConflictPort
)

// SharingConflictError describes why Service may not use IP, which Holder
// is using it. errors.Is(err, ErrSharingConflict) is true.
type SharingConflictError struct {
	IP      netip.Addr
	Service string // the service asking
	Holder  string // a service already using IP (the lowest key that conflicts)
	Reason  ConflictReason
	Port    Port      // the clashing port when Reason == ConflictPort
	Keys    [2]string // [asking, holder] sharing keys (ConflictNotShared/ConflictSharingKey) or backend keys (ConflictBackend)
}

func (e *SharingConflictError) Unwrap() error { return ErrSharingConflict }

func (e *SharingConflictError) Error() string {
	switch e.Reason {
	case ConflictNotShared:
		if e.Keys[0] == "" {
			return fmt.Sprintf("%s is already used by %s and %s does not allow sharing (no metallb.io/allow-shared-ip)", e.IP, e.Holder, e.Service)
		}
		return fmt.Sprintf("%s is already used by %s, which does not allow sharing (no metallb.io/allow-shared-ip)", e.IP, e.Holder)
	case ConflictSharingKey:
		return fmt.Sprintf("%s is already used by %s with sharing key %q; %s has sharing key %q", e.IP, e.Holder, e.Keys[1], e.Service, e.Keys[0])
	case ConflictBackend:
		return fmt.Sprintf("%s is already used by %s with different backends (%q vs %q); services sharing an address with externalTrafficPolicy Local must have identical selectors", e.IP, e.Holder, e.Keys[1], e.Keys[0])
	case ConflictPort:
		return fmt.Sprintf("%s is already used by %s on port %s/%d, which %s also uses", e.IP, e.Holder, e.Port.Protocol, e.Port.Port, e.Service)
	}
	return fmt.Sprintf("%s is already used by %s", e.IP, e.Holder)
}
