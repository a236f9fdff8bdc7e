package frr

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

func TestRouteDelta(t *testing.T) {
	s := bgp.Session{Name: "p", MyASN: 64512, PeerASN: 64513, PeerAddr: addr("198.18.0.254"), Port: 179, RouterID: addr("198.18.0.1")}
	render := func(t *testing.T, routes ...bgp.Route) string {
		t.Helper()
		c, err := Render(bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": routes}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	comms := []config.Community{std(65535, 120)}
	plain := func(p string) bgp.Route { return bgp.Route{Prefix: pfx(p)} }
	tagged := func(p string) bgp.Route { return bgp.Route{Prefix: pfx(p), Communities: comms} }
	// The tags of the two announcement sets of session p.
	tagOf := func(r bgp.Route) string {
		key := appendSetEntry(setKeyStart(r.Prefix), "p", r)
		return tagMap(homeTag(string(key)))
	}
	plainMap, taggedMap := tagOf(plain("203.0.113.1/32")), tagOf(tagged("203.0.113.1/32"))
	taggedTag := homeTag(string(appendSetEntry(setKeyStart(pfx("203.0.113.1/32")), "p", tagged("203.0.113.1/32"))))
	taggedOut := fmt.Sprintf("route-map lbs-p-out permit %d", homeEntrySeq(taggedTag))
	for _, tc := range []struct {
		name     string
		old, new []bgp.Route
		ok       bool
		cmds     []string
	}{
		{name: "identical", old: []bgp.Route{plain("203.0.113.1/32")}, new: []bgp.Route{plain("203.0.113.1/32")}, ok: true},
		{
			name: "a prefix added",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32"), plain("203.0.113.3/32")}, ok: true,
			cmds: []string{"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.2/32 route-map " + plainMap, "exit-address-family", "exit"},
		},
		{
			name: "a prefix removed",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.3/32")}, ok: true,
			cmds: []string{"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.2/32", "exit-address-family", "exit"},
		},
		{
			name: "a prefix replaced by a new one",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.5/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.6/32")}, ok: true,
			cmds: []string{
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.6/32 route-map " + plainMap, "exit-address-family", "exit",
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.5/32", "exit-address-family", "exit",
			},
		},
		{
			// Written again with its new route-map, never removed first.
			name: "a prefix moving to another set in use",
			old:  []bgp.Route{plain("203.0.113.1/32"), tagged("203.0.113.2/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), tagged("203.0.113.2/32"), tagged("203.0.113.3/32")}, ok: true,
			cmds: []string{"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.3/32 route-map " + taggedMap, "exit-address-family", "exit"},
		},
		{
			// The tag's entries first, then the statement naming it.
			name: "a new announcement set",
			old:  []bgp.Route{plain("203.0.113.1/32")}, new: []bgp.Route{plain("203.0.113.1/32"), tagged("203.0.113.2/32")}, ok: true,
			cmds: []string{
				taggedOut, fmt.Sprintf(" match tag %d", taggedTag), " set community 65535:120 additive", "exit",
				"route-map " + taggedMap + " permit 10", fmt.Sprintf(" set tag %d", taggedTag), "exit",
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.2/32 route-map " + taggedMap, "exit-address-family", "exit",
			},
		},
		{
			// The statement first, then the tag's entries.
			name: "the last prefix of a set going",
			old:  []bgp.Route{plain("203.0.113.1/32"), tagged("203.0.113.2/32")}, new: []bgp.Route{plain("203.0.113.1/32")}, ok: true,
			cmds: []string{
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.2/32", "exit-address-family", "exit",
				"no " + taggedOut, "no route-map " + taggedMap + " permit 10",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, ok := routeDelta(render(t, tc.old...), render(t, tc.new...))
			if ok != tc.ok || !reflect.DeepEqual(cmds, tc.cmds) {
				t.Errorf("routeDelta = %q, %v; want %q, %v", cmds, ok, tc.cmds, tc.ok)
			}
		})
	}
	// A session change is never route-only.
	other := s
	other.HoldTime = dur(9e9)
	a := render(t, plain("203.0.113.1/32"))
	b, _ := Render(bgp.DesiredState{Sessions: []bgp.Session{other}, Routes: map[string][]bgp.Route{"p": {plain("203.0.113.1/32")}}}, Options{})
	if _, ok := routeDelta(a, b); ok {
		t.Errorf("a timer change went the fast path")
	}
	// Nor an entry of a tag in use changing (a next hop): rewritten, it
	// would match nothing for a moment.
	nh := s
	nh.NextHopIPv4 = addr("198.18.0.9")
	c, _ := Render(bgp.DesiredState{Sessions: []bgp.Session{nh}, Routes: map[string][]bgp.Route{"p": {plain("203.0.113.1/32")}}}, Options{})
	if cmds, ok := routeDelta(a, c); ok {
		t.Errorf("a next hop change went the fast path: %q", cmds)
	}
	// Nor an old configuration's prefix lists going (an upgrade).
	old := strings.Replace(a, "route-map lbs-p-in deny 10", "ip prefix-list lbs-p-10 seq 5 permit 203.0.113.1/32\nroute-map lbs-p-in deny 10", 1)
	if _, ok := routeDelta(old, a); ok {
		t.Errorf("prefix lists going went the fast path")
	}
}

// crowdedTags makes homeTag pick one of n numbers (the last n/2 and the
// first: probes wrap) until the test ends, so that announcement sets
// collide.
func crowdedTags(t *testing.T, n uint32) {
	homeTag = func(key string) uint32 {
		s := uint64(maxTag - n/2 + 1)
		s += uint64(fnvTag(key) % n)
		if s > maxTag {
			s -= maxTag
		}
		return uint32(s)
	}
	t.Cleanup(func() { homeTag = fnvTag })
}

// TestTagNumbers: tags and route-map entries keep their numbers when
// another set comes or goes, unless a collision moved them; numbers stay
// in FRR's ranges and probes wrap.
func TestTagNumbers(t *testing.T) {
	for _, k := range []string{"", "4", "6\x00p\x00\x000", strings.Repeat("x", 100)} {
		if tg := homeTag(k); tg < minTag || tg > maxTag {
			t.Errorf("homeTag(%q) = %d, outside FRR's range", k, tg)
		}
	}
	for _, tg := range []uint32{minTag, maxEntrySeq - 1, maxEntrySeq, maxEntrySeq + 1, maxTag} {
		if s := homeEntrySeq(tg); s < 1 || s > maxEntrySeq {
			t.Errorf("homeEntrySeq(%d) = %d, outside 1..%d", tg, s, maxEntrySeq)
		}
	}
	var keys []string
	for i := range 300 {
		keys = append(keys, fmt.Sprintf("4\x00p\x0065000:%d\x000", i))
	}
	all := numberTags(slices.Clone(keys))
	for i := range keys {
		without := numberTags(slices.Delete(slices.Clone(keys), i, i+1))
		for k, tg := range without {
			if all[k] != tg {
				t.Fatalf("removing set %d moved another's tag", i)
			}
		}
	}
	tags := make([]uint32, 0, len(all))
	for _, tg := range all {
		tags = append(tags, tg)
	}
	slices.Sort(tags)
	seqs := entrySeqs(tags)
	for i := range tags {
		without := entrySeqs(slices.Delete(slices.Clone(tags), i, i+1))
		if !slices.Equal(without, slices.Delete(slices.Clone(seqs), i, i+1)) {
			t.Fatalf("removing tag %d moved other entries", tags[i])
		}
	}

	// Crowded: every number distinct and in range; probes wrap.
	crowdedTags(t, 4)
	got := numberTags(slices.Clone(keys[:6]))
	var nums []uint32
	for _, tg := range got {
		nums = append(nums, tg)
	}
	slices.Sort(nums)
	if want := []uint32{1, 2, 3, 4, maxTag - 1, maxTag}; !slices.Equal(nums, want) {
		t.Errorf("six sets on four homes: %v, want %v", nums, want)
	}
	if got := entrySeqs([]uint32{maxEntrySeq - 1, 2*maxEntrySeq - 1, 3*maxEntrySeq - 1}); !slices.Equal(got, []int{maxEntrySeq, 1, 2}) {
		t.Errorf("three entries on one home: %v", got)
	}
}

// TestRetagFirst: before a full reload, prefixes that stay announced but
// change tag are written again with their new route-map, after the
// route-map entries the new configuration adds; nothing else.
func TestRetagFirst(t *testing.T) {
	a, b := v4("a", "198.18.0.254"), v4("b", "198.18.0.253")
	render := func(d bgp.DesiredState) string {
		t.Helper()
		c, err := Render(d, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rs := []bgp.Route{{Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("203.0.113.2/32")}}
	alone := render(bgp.DesiredState{Sessions: []bgp.Session{a, b}, Routes: map[string][]bgp.Route{"a": rs}})
	both := render(bgp.DesiredState{Sessions: []bgp.Session{a, b}, Routes: map[string][]bgp.Route{"a": rs, "b": rs[:1]}})
	if got := retagFirst(alone, alone); got != nil {
		t.Errorf("nothing changed: %q", got)
	}
	// b joins 203.0.113.1: a new tag for it; 203.0.113.2 keeps its own.
	key := func(names ...string) uint32 {
		k := setKeyStart(pfx("203.0.113.1/32"))
		for _, n := range names {
			k = appendSetEntry(k, n, bgp.Route{})
		}
		return homeTag(string(k))
	}
	ta, tab := key("a"), key("a", "b")
	got := retagFirst(alone, both)
	want := []string{
		"route-map " + tagMap(tab) + " permit 10", fmt.Sprintf(" set tag %d", tab), "exit",
		fmt.Sprintf("route-map lbs-a-out permit %d", homeEntrySeq(tab)), fmt.Sprintf(" match tag %d", tab), "exit",
		fmt.Sprintf("route-map lbs-b-out permit %d", homeEntrySeq(tab)), fmt.Sprintf(" match tag %d", tab), "exit",
		"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.1/32 route-map " + tagMap(tab), "exit-address-family", "exit",
	}
	if !slices.Equal(got, want) {
		t.Errorf("retagFirst:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(alone, "network 203.0.113.1/32 route-map "+tagMap(ta)) {
		t.Errorf("203.0.113.1 alone is not at tag %d:\n%s", ta, alone)
	}
	// Back: the old tag is gone, so nothing to add first but the move.
	if got := retagFirst(both, alone); !slices.Contains(got, "network 203.0.113.1/32 route-map "+tagMap(ta)) {
		t.Errorf("retagFirst back: %q", got)
	}
}
