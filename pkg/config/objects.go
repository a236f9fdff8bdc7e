package config

import (
	"github.com/lbstack/lbstack/api/v1beta1"
)

// bfdRange is the accepted range of one BFDProfile field (FRR's).
type bfdRange struct {
	field    string
	min, max uint32
	unit     string
}

var (
	bfdReceive    = bfdRange{"receiveInterval", 10, 60000, " ms"}
	bfdTransmit   = bfdRange{"transmitInterval", 10, 60000, " ms"}
	bfdEcho       = bfdRange{"echoInterval", 10, 60000, " ms"}
	bfdMultiplier = bfdRange{"detectMultiplier", 2, 255, ""}
	bfdMinTTL     = bfdRange{"minimumTtl", 1, 254, ""}
)

func (b *builder) buildBFDProfiles(objs []*v1beta1.BFDProfile) {
	b.bfd = make(map[string]*BFDProfile, len(objs))
	for _, obj := range objs {
		ref := ObjectRef{Kind: KindBFDProfile, Name: obj.Name}
		s := obj.Spec
		p := &BFDProfile{
			Name:             obj.Name,
			ReceiveInterval:  b.bfdValue(ref, bfdReceive, s.ReceiveInterval, DefaultBFDReceiveInterval),
			TransmitInterval: b.bfdValue(ref, bfdTransmit, s.TransmitInterval, DefaultBFDTransmitInterval),
			DetectMultiplier: b.bfdValue(ref, bfdMultiplier, s.DetectMultiplier, DefaultBFDDetectMultiplier),
			EchoInterval:     b.bfdValue(ref, bfdEcho, s.EchoInterval, DefaultBFDEchoInterval),
			MinimumTTL:       b.bfdValue(ref, bfdMinTTL, s.MinimumTTL, DefaultBFDMinimumTTL),
			EchoMode:         s.EchoMode != nil && *s.EchoMode,
			PassiveMode:      s.PassiveMode != nil && *s.PassiveMode,
		}
		b.bfd[p.Name] = p
	}
}

func (b *builder) bfdValue(ref ObjectRef, r bfdRange, v *uint32, def uint32) uint32 {
	if v == nil {
		return def
	}
	if *v < r.min || *v > r.max {
		b.c.errorf(ref, "spec."+r.field, nil, "%s %d%s is out of range %d..%d", r.field, *v, r.unit, r.min, r.max)
		return def
	}
	return *v
}

// buildCommunities collects the aliases of every Community object. Alias
// names are unique across all Community objects, values must parse, and a
// name must not itself read as a community value (an advertisement could
// not tell which one it means).
func (b *builder) buildCommunities(objs []*v1beta1.Community) {
	b.aliases = make(map[string]Community)
	b.aliasOwners = make(map[string]ObjectRef)
	type where struct {
		obj   ObjectRef
		index int
	}
	first := make(map[string]where)
	for _, obj := range objs {
		ref := ObjectRef{Kind: KindCommunity, Name: obj.Name}
		for i, a := range obj.Spec.Communities {
			f := field("spec.communities[%d]", i)
			if a.Name == "" {
				b.c.errorf(ref, f+".name", nil, "an alias needs a name")
				continue
			}
			if _, err := ParseCommunity(a.Name); err == nil {
				b.c.errorf(ref, f+".name", nil, "alias name %q reads as a community value; choose a name that does not", a.Name)
				continue
			}
			if w, dup := first[a.Name]; dup {
				if w.obj == ref {
					b.c.errorf(ref, f+".name", nil, "alias %q is defined twice (also spec.communities[%d])", a.Name, w.index)
				} else {
					b.c.errorf(ref, f+".name", []ObjectRef{w.obj}, "alias %q is also defined by %s; alias names are unique across Community objects", a.Name, w.obj)
				}
				continue
			}
			first[a.Name] = where{ref, i}
			b.aliasOwners[a.Name] = ref
			v, err := ParseCommunity(a.Value)
			if err != nil {
				b.c.errorf(ref, f+".value", nil, "alias %q: %v", a.Name, err)
				continue
			}
			b.aliases[a.Name] = v
		}
	}
}
