package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Object kinds as they appear in ObjectRef.Kind and in messages: the
// lower-case kind, like kubectl's resource names.
const (
	KindIPAddressPool    = "ipaddresspool"
	KindBGPPeer          = "bgppeer"
	KindBGPAdvertisement = "bgpadvertisement"
	KindL2Advertisement  = "l2advertisement"
	KindBFDProfile       = "bfdprofile"
	KindCommunity        = "community"
	KindSecret           = "secret"
)

// kindRank orders problems by kind in the order users usually write their
// manifests: addresses first, then sessions, then announcements.
var kindRank = map[string]int{
	KindIPAddressPool:    0,
	KindBGPPeer:          1,
	KindBFDProfile:       2,
	KindSecret:           3,
	KindCommunity:        4,
	KindBGPAdvertisement: 5,
	KindL2Advertisement:  6,
}

// ObjectRef names one object of the stack's namespace.
type ObjectRef struct{ Kind, Name string }

// String returns the reference as messages print it: `ipaddresspool "a"`.
func (r ObjectRef) String() string { return fmt.Sprintf("%s %q", r.Kind, r.Name) }

func compareRefs(a, b ObjectRef) int {
	ra, oka := kindRank[a.Kind]
	rb, okb := kindRank[b.Kind]
	if !oka {
		ra = len(kindRank)
	}
	if !okb {
		rb = len(kindRank)
	}
	if c := cmp.Compare(ra, rb); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// Problem is one error or warning, tied to the object (and field) at fault
// and to the other objects involved.
type Problem struct {
	// Object is the object at fault: the one whose field is wrong, or the
	// later of two conflicting objects in the order Build received them.
	Object ObjectRef
	// Field is the JSON path inside Object, e.g. "spec.addresses[1]" or
	// "spec.aggregationLength"; empty when the whole object is concerned.
	Field string
	// Message is the human text, without the object and field prefix.
	Message string
	// Related lists the other objects involved (the other pool of an
	// overlap, the peers using a profile, the pool an advertisement names
	// but that does not exist yet, ...), sorted, without Object.
	Related []ObjectRef
}

// Error returns the problem as one line:
// `ipaddresspool "b": spec.addresses[0]: 203.0.113.0/24 overlaps 203.0.113.128/25 of ipaddresspool "a"`.
func (p Problem) Error() string {
	if p.Field == "" {
		return p.Object.String() + ": " + p.Message
	}
	return p.Object.String() + ": " + p.Field + ": " + p.Message
}

// Involves reports whether r is the problem's object or one of the related
// objects. Webhooks use it to tell the problems an object under admission
// causes (or fixes) from the others.
func (p Problem) Involves(r ObjectRef) bool {
	return p.Object == r || slices.Contains(p.Related, r)
}

func compareProblems(a, b Problem) int {
	if c := compareRefs(a.Object, b.Object); c != 0 {
		return c
	}
	if c := compareFields(a.Field, b.Field); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Message, b.Message); c != 0 {
		return c
	}
	return slices.CompareFunc(a.Related, b.Related, compareRefs)
}

// compareFields orders field paths so that "spec.addresses[2]" comes before
// "spec.addresses[10]": runs of digits compare as numbers.
func compareFields(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// Result is what Build returns.
type Result struct {
	// Config is the validated configuration. It is nil when an error
	// concerns anything but a BGPPeer; when every error is a BGPPeer's
	// own, Config is the configuration without those peers
	// (DisabledPeers), each replaced by its version in Options.Previous
	// when there is one (RetainedPeers).
	Config *Config
	// Errors are the problems admission refuses, sorted by object kind,
	// object name, field and message.
	Errors []Problem
	// DisabledPeers are the BGPPeers whose current objects are refused
	// while the rest of the configuration is valid, sorted.
	DisabledPeers []string
	// RetainedPeers are the DisabledPeers that run their version from
	// Options.Previous, sorted.
	RetainedPeers []string
	// Warnings are admission warnings and ConfigurationState notes:
	// references that do not resolve yet, aggregates that cover addresses
	// beyond their pool, deprecated or ignored settings. Sorted like Errors.
	Warnings []Problem
}

// Err returns the errors joined into one error (one line per problem), or
// nil when there are none. An error does not mean Config is nil: see
// Config.
func (r Result) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return ProblemList(r.Errors)
}

// ProblemList is a list of problems usable as an error.
type ProblemList []Problem

// Error prints one problem per line.
func (l ProblemList) Error() string {
	s := make([]string, len(l))
	for i, p := range l {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns each problem, for errors.As.
func (l ProblemList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, p := range l {
		errs[i] = p
	}
	return errs
}

// collector gathers problems while Build runs.
type collector struct {
	errs, warns []Problem
}

func newProblem(obj ObjectRef, field string, related []ObjectRef, format string, args ...any) Problem {
	var rel []ObjectRef
	for _, r := range related {
		if r != obj && !slices.Contains(rel, r) {
			rel = append(rel, r)
		}
	}
	slices.SortFunc(rel, compareRefs)
	return Problem{Object: obj, Field: field, Message: fmt.Sprintf(format, args...), Related: rel}
}

func (c *collector) errorf(obj ObjectRef, field string, related []ObjectRef, format string, args ...any) {
	c.errs = append(c.errs, newProblem(obj, field, related, format, args...))
}

func (c *collector) warnf(obj ObjectRef, field string, related []ObjectRef, format string, args ...any) {
	c.warns = append(c.warns, newProblem(obj, field, related, format, args...))
}

// sorted returns problems sorted and without exact duplicates.
func sortedProblems(ps []Problem) []Problem {
	slices.SortFunc(ps, compareProblems)
	return slices.CompactFunc(ps, func(a, b Problem) bool { return compareProblems(a, b) == 0 })
}
