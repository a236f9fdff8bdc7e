package frr

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// routeDelta is the fast path of a reload: when two rendered
// configurations differ only in which prefixes are announced - prefix-list
// entries and `network` statements, what a Service coming or going changes
// when its advertisement's attributes are already in use - the difference
// is applied with a handful of vtysh commands instead of frr-reload.py,
// whose two `show running-config` passes cost most of a second of CPU.
// Anything else (sessions, route-map entries, BFD, a new group of
// attributes) goes the full way.
//
// Only entries added or removed at their own sequence numbers qualify
// (a Service whose address sorts last, or the last one going); a list
// whose entries shift (an address inserted or removed before others)
// takes the full path, since FRR refuses an entry duplicating another's
// prefix and a shift cannot be rewritten entry by entry without leaving
// a prefix out for a moment. The commands leave no gap: prefix-list
// entries are added before the `network` statements they permit, and
// removed after the ones they permit are gone.
func routeDelta(oldConf, newConf string) (cmds []string, ok bool) {
	o, n := splitRouteLines(oldConf), splitRouteLines(newConf)
	if o.skeleton != n.skeleton {
		return nil, false
	}
	// Prefix lists: written in descending sequence order per list, then
	// entries gone from the new text deleted.
	// What each list permits, before and after.
	oldVals, newVals := map[string]bool{}, map[string]bool{}
	for _, e := range o.prefix {
		oldVals[e.list+" "+e.value()] = true
	}
	for _, e := range n.prefix {
		newVals[e.list+" "+e.value()] = true
	}
	var writes []prefixEntry
	for key, e := range n.prefix {
		old, had := o.prefix[key]
		if had && old.line == e.line {
			continue
		}
		// An entry written where another prefix was may only replace a
		// prefix that is going away by a prefix that is new: an entry
		// moving between sequence numbers (the list shifted) would
		// duplicate itself for a moment, which FRR refuses, or be missing
		// for a moment. frr-reload.py does those.
		if oldVals[e.list+" "+e.value()] || (had && newVals[old.list+" "+old.value()]) {
			return nil, false
		}
		writes = append(writes, e)
	}
	slices.SortFunc(writes, func(a, b prefixEntry) int {
		if c := cmp.Compare(a.list, b.list); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	var deletes []prefixEntry
	for key, e := range o.prefix {
		if _, keep := n.prefix[key]; !keep {
			deletes = append(deletes, e)
		}
	}
	slices.SortFunc(deletes, func(a, b prefixEntry) int {
		if c := cmp.Compare(a.list, b.list); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, e := range writes {
		cmds = append(cmds, e.line)
	}
	cmds = append(cmds, networkCmds(n.networks, o.networks, "")...)
	cmds = append(cmds, networkCmds(o.networks, n.networks, "no ")...)
	for _, e := range deletes {
		cmds = append(cmds, "no "+e.line)
	}
	return cmds, true
}

type prefixEntry struct {
	list string // "ip prefix-list NAME" / "ipv6 prefix-list NAME"
	seq  int
	line string
}

// value is what the entry permits: the line after its sequence number.
func (e prefixEntry) value() string {
	_, v, _ := strings.Cut(e.line, " seq "+strconv.Itoa(e.seq)+" ")
	return v
}

// routeLines is a configuration split into what routeDelta may change
// and everything else.
type routeLines struct {
	skeleton string
	prefix   map[string]prefixEntry     // "list seq" → entry
	networks map[string]map[string]bool // "router line\naf line" → network lines
}

var prefixLine = regexp.MustCompile(`^(ip(?:v6)? prefix-list \S+) seq ([0-9]+) `)

func splitRouteLines(conf string) routeLines {
	rl := routeLines{prefix: map[string]prefixEntry{}, networks: map[string]map[string]bool{}}
	var skel strings.Builder
	var router, af string
	for _, line := range strings.Split(conf, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "router bgp "):
			router, af = line, ""
		case strings.HasPrefix(trimmed, "address-family "):
			af = trimmed
		case trimmed == "exit-address-family":
			af = ""
		case line == "exit":
			router, af = "", ""
		}
		if m := prefixLine.FindStringSubmatch(line); m != nil {
			seq, _ := strconv.Atoi(m[2])
			rl.prefix[m[1]+" "+m[2]] = prefixEntry{list: m[1], seq: seq, line: line}
			continue
		}
		if router != "" && af != "" && strings.HasPrefix(trimmed, "network ") {
			ctx := router + "\n" + af
			if rl.networks[ctx] == nil {
				rl.networks[ctx] = map[string]bool{}
			}
			rl.networks[ctx][trimmed] = true
			continue
		}
		skel.WriteString(line)
		skel.WriteByte('\n')
	}
	rl.skeleton = skel.String()
	return rl
}

// networkCmds returns, for every network statement in a but not in b,
// the command prefix+statement under its router and address family:
// additions with prefix "" (a = new, b = old), removals with "no " (a =
// old, b = new).
func networkCmds(a, b map[string]map[string]bool, prefix string) []string {
	ctxs := make([]string, 0, len(a))
	for ctx := range a {
		ctxs = append(ctxs, ctx)
	}
	slices.Sort(ctxs)
	var cmds []string
	for _, ctx := range ctxs {
		var lines []string
		for l := range a[ctx] {
			if !b[ctx][l] {
				lines = append(lines, prefix+l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		slices.Sort(lines)
		router, af, _ := strings.Cut(ctx, "\n")
		cmds = append(cmds, router, af)
		cmds = append(cmds, lines...)
		cmds = append(cmds, "exit-address-family", "exit")
	}
	return cmds
}
