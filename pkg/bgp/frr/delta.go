package frr

import (
	"maps"
	"slices"
	"strings"
)

// routeDelta is the fast path of a reload: when two rendered
// configurations differ only in their `network` statements and in which
// tags exist - what a Service coming or going, or moving to another
// announcement set, changes - the difference is applied with a handful
// of commands to bgpd (and, for the route-maps of a tag appearing or
// going, zebra) instead of frr-reload.py, whose two `show
// running-config` passes cost most of a second of CPU. Anything else
// (sessions, a route-map entry of a tag that stays, BFD) goes the full
// way.
//
// The commands leave no gap: the route-map entries of new tags (the
// tag's route-map, the sessions' entries matching it) come first, then
// the network statements, then the entries of tags gone. A statement
// whose prefix stays but whose route-map (tag) changes is written again
// with the new route-map: FRR 8.4 replaces the route-map of an existing
// statement and re-announces the route in place, where `no network`
// first would withdraw it for a moment. Statements of prefixes gone are
// removed with `no network P`. No soft refresh is needed: each statement
// written re-evaluates its own route, and the entries added or removed
// match no route already announced.
func routeDelta(oldConf, newConf string) (cmds []string, ok bool) {
	o, n := splitRouteLines(oldConf), splitRouteLines(newConf)
	if o.skeleton != n.skeleton {
		return nil, false
	}
	var added, gone []string
	for _, h := range slices.Sorted(maps.Keys(n.tagEntries)) {
		old, had := o.tagEntries[h]
		switch {
		case !had:
			added = append(added, n.tagEntries[h]...)
		case !slices.Equal(old, n.tagEntries[h]):
			// An entry of a tag in use changed (a session's next hop):
			// rewriting it would leave its routes unmatched a moment.
			return nil, false
		}
	}
	for _, h := range slices.Sorted(maps.Keys(o.tagEntries)) {
		if _, keep := n.tagEntries[h]; !keep {
			gone = append(gone, "no "+h)
		}
	}
	cmds = append(cmds, added...)
	cmds = append(cmds, networkCmds(n.networks, o.networks, false)...)
	cmds = append(cmds, networkCmds(o.networks, n.networks, true)...)
	return append(cmds, gone...), true
}

// routeLines is a configuration split into what routeDelta may change
// and everything else.
type routeLines struct {
	skeleton string
	// networks are the network statements by "router line\naf line",
	// then by prefix.
	networks map[string]map[string]string
	// tagEntries are the route-map entries of tags (a tag's route-map,
	// the sessions' entries matching a tag) by their first line, each
	// its lines up to its exit.
	tagEntries map[string][]string
}

// isTagEntry tells the route-map entries of a tag, which come and go with
// it: a tag's own route-map, and the entries of the sessions' route-maps
// OUT that match a tag (an OUT entry's second line).
func isTagEntry(block []string) bool {
	if strings.HasPrefix(block[0], "route-map "+tagMapPrefix) {
		return true
	}
	return strings.HasPrefix(block[0], "route-map lbs-") && strings.Contains(block[0], "-out permit ") &&
		len(block) > 1 && strings.HasPrefix(block[1], " match tag ")
}

func splitRouteLines(conf string) routeLines {
	rl := routeLines{networks: map[string]map[string]string{}, tagEntries: map[string][]string{}}
	var skel strings.Builder
	var router, af string
	// entry is the route-map entry being read; afterTag is true on the
	// line after a tag's entry, whose "!" goes with it.
	var entry []string
	afterTag := false
	for _, line := range strings.Split(conf, "\n") {
		if afterTag {
			afterTag = false
			if line == "!" {
				continue
			}
		}
		if strings.HasPrefix(line, "route-map ") {
			entry = []string{line}
			continue
		}
		if entry != nil {
			entry = append(entry, line)
			if line != "exit" {
				continue
			}
			if isTagEntry(entry) {
				rl.tagEntries[entry[0]] = entry
				afterTag = strings.HasPrefix(entry[0], "route-map "+tagMapPrefix)
			} else {
				for _, l := range entry {
					skel.WriteString(l)
					skel.WriteByte('\n')
				}
			}
			entry = nil
			continue
		}
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
		if router != "" && af != "" && strings.HasPrefix(trimmed, "network ") {
			ctx := router + "\n" + af
			if rl.networks[ctx] == nil {
				rl.networks[ctx] = map[string]string{}
			}
			p, _, _ := strings.Cut(strings.TrimPrefix(trimmed, "network "), " ")
			rl.networks[ctx][p] = trimmed
			continue
		}
		skel.WriteString(line)
		skel.WriteByte('\n')
	}
	for _, l := range entry {
		// An entry without its exit (extra configuration) stays.
		skel.WriteString(l)
		skel.WriteByte('\n')
	}
	rl.skeleton = skel.String()
	return rl
}

// networkCmds returns the commands, under their router and address
// family, that take the network statements of b to those of a: with
// remove false, every statement of a that b does not have as is (new
// prefixes and new route-maps; a = new, b = old); with remove true, `no
// network P` for every prefix of a that b lacks (a = old, b = new).
func networkCmds(a, b map[string]map[string]string, remove bool) []string {
	var cmds []string
	for _, ctx := range slices.Sorted(maps.Keys(a)) {
		var lines []string
		for p, l := range a[ctx] {
			other, has := b[ctx][p]
			switch {
			case remove && !has:
				lines = append(lines, "no network "+p)
			case !remove && other != l:
				lines = append(lines, l)
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

// retagFirst is what a full reload from prev to conf runs before
// frr-reload.py so that prefixes announced by both keep being announced
// when their tag changes (a session joins or leaves an announcement set,
// a set's attributes change: a new tag). frr-reload.py deletes a changed
// line before it adds the new one, and deleting a network statement
// withdraws its route from every peer until the add, for every such
// prefix at once (a BGPPeer added to the sessions of every Service would
// blink every route). Written again with the new route-map, a statement
// moves in place (routeDelta). So first the route-map entries conf has
// and prev lacks (the new tags', and the sessions' entries matching
// them), then every network statement whose prefix stays and whose
// route-map changes; frr-reload.py then finds those done and only
// removes what is gone. nil when no statement changes its route-map.
func retagFirst(prev, conf string) []string {
	o, n := splitRouteLines(prev), splitRouteLines(conf)
	moved := map[string]map[string]string{}
	for ctx, lines := range n.networks {
		for p, l := range lines {
			if old, ok := o.networks[ctx][p]; ok && old != l {
				if moved[ctx] == nil {
					moved[ctx] = map[string]string{}
				}
				moved[ctx][p] = l
			}
		}
	}
	if len(moved) == 0 {
		return nil
	}
	had := map[string]bool{}
	for _, b := range routeMapBlocks(prev) {
		had[strings.Join(b, "\n")] = true
	}
	var cmds []string
	for _, b := range routeMapBlocks(conf) {
		if !had[strings.Join(b, "\n")] {
			cmds = append(cmds, b...)
		}
	}
	return append(cmds, networkCmds(moved, nil, false)...)
}

// routeMapBlocks are the route-map entries of conf, each its lines from
// `route-map NAME permit|deny SEQ` to its `exit`.
func routeMapBlocks(conf string) [][]string {
	var out [][]string
	var cur []string
	for _, line := range strings.Split(conf, "\n") {
		switch {
		case strings.HasPrefix(line, "route-map "):
			cur = []string{line}
		case cur != nil:
			cur = append(cur, line)
			if line == "exit" {
				out = append(out, cur)
				cur = nil
			}
		}
	}
	return out
}
