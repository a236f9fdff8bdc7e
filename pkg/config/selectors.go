package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// parseSelectors parses the label selectors of obj's field (e.g.
// "spec.nodeSelectors"). Invalid selectors, selectors listed twice and
// match expressions repeating a value or an expression are errors, as in
// MetalLB. The valid selectors are returned in spec order.
func parseSelectors(c *collector, obj ObjectRef, field string, sels []metav1.LabelSelector) []labels.Selector {
	if len(sels) == 0 {
		return nil
	}
	out := make([]labels.Selector, 0, len(sels))
	seen := make(map[string]int, len(sels))
	for i := range sels {
		f := fmt.Sprintf("%s[%d]", field, i)
		sel, ok := parseSelector(c, obj, f, &sels[i])
		if !ok {
			continue
		}
		key := sel.String()
		if j, dup := seen[key]; dup {
			c.errorf(obj, f, nil, "duplicates %s[%d] (%s)", field, j, describeSelector(sel))
			continue
		}
		seen[key] = i
		out = append(out, sel)
	}
	return out
}

// parseSelector parses one label selector at field f.
func parseSelector(c *collector, obj ObjectRef, f string, ls *metav1.LabelSelector) (labels.Selector, bool) {
	ok := true
	exprs := make(map[string]int, len(ls.MatchExpressions))
	for j, e := range ls.MatchExpressions {
		ef := fmt.Sprintf("%s.matchExpressions[%d]", f, j)
		vals := make(map[string]int, len(e.Values))
		for k, v := range e.Values {
			if m, dup := vals[v]; dup {
				c.errorf(obj, fmt.Sprintf("%s.values[%d]", ef, k), nil, "value %q is listed twice (also values[%d])", v, m)
				ok = false
				continue
			}
			vals[v] = k
		}
		sorted := slices.Clone(e.Values)
		slices.Sort(sorted)
		key := e.Key + "\x00" + string(e.Operator) + "\x00" + strings.Join(sorted, "\x00")
		if m, dup := exprs[key]; dup {
			c.errorf(obj, ef, nil, "duplicates matchExpressions[%d]", m)
			ok = false
			continue
		}
		exprs[key] = j
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		c.errorf(obj, f, nil, "invalid label selector: %v", err)
		return nil, false
	}
	return sel, ok
}

func describeSelector(s labels.Selector) string {
	if s.Empty() {
		return "selects everything"
	}
	return s.String()
}

// selectorsKey identifies a selector list regardless of order.
func selectorsKey(sels []labels.Selector) string {
	s := make([]string, len(sels))
	for i, sel := range sels {
		s[i] = sel.String()
	}
	slices.Sort(s)
	return strings.Join(s, "\x00")
}

// mayShareNode reports whether two node selector lists (empty = every
// node) can select a common node: both select every node, or they are the
// same selectors, or one of the known nodes matches both. With no known
// node, only the first two cases count, so Build does not refuse what it
// cannot show to conflict.
func mayShareNode(a, b []labels.Selector, nodes []labels.Set) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	if len(a) == len(b) && selectorsKey(a) == selectorsKey(b) {
		return true
	}
	for _, n := range nodes {
		if matchesSet(a, n) && matchesSet(b, n) {
			return true
		}
	}
	return false
}

func matchesSet(sels []labels.Selector, l labels.Set) bool {
	if len(sels) == 0 {
		return true
	}
	for _, s := range sels {
		if s.Matches(l) {
			return true
		}
	}
	return false
}

// checkObjectName reports why name cannot be the name of an object
// referred to (a DNS-1123 subdomain), or "" when it can.
func checkObjectName(name string) string {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Sprintf("%q is not a valid object name: %s", name, strings.Join(errs, "; "))
	}
	return ""
}

// checkLinkName reports why name cannot be a Linux network device name
// (an interface or a VRF), or "" when it can: at most 15 bytes, not empty,
// not "." or "..", no '/', no whitespace or control character.
func checkLinkName(name string) string {
	switch {
	case name == "":
		return "must not be empty"
	case name == "." || name == "..":
		return fmt.Sprintf("%q is not a valid device name", name)
	case !utf8.ValidString(name):
		return fmt.Sprintf("%q is not valid UTF-8", name)
	}
	for _, r := range name {
		// Linux's dev_valid_name refuses '/', ':' and whitespace.
		if r == '/' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Sprintf("%q contains %q, which device names cannot", name, r)
		}
	}
	if len(name) > 15 {
		return fmt.Sprintf("%q is longer than 15 bytes, the Linux limit for device names", name)
	}
	return ""
}

// containsSorted reports whether the sorted list s holds v.
func containsSorted(s []string, v string) bool {
	_, ok := slices.BinarySearch(s, v)
	return ok
}
