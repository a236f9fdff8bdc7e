package bundle

import "testing"

func TestDisplayName(t *testing.T) {
	for field, want := range map[string]string{
		"peerASN":           "Peer ASN",
		"myASN":             "My ASN",
		"ipAddressPools":    "IP Address Pools",
		"bgpBackend":        "BGP Backend",
		"bfdProfile":        "BFD Profile",
		"localPref":         "Local Pref",
		"vrf":               "VRF",
		"l2Interfaces":      "L2 Interfaces",
		"mainTableNetworks": "Main Table Networks",
		"sourceIPBy":        "Source IP By",
		"addresses":         "Addresses",
	} {
		if got := displayName(field); got != want {
			t.Errorf("displayName(%q) = %q, want %q", field, got, want)
		}
	}
}

func TestFirstSentence(t *testing.T) {
	for in, want := range map[string]string{
		"":                                     "",
		"One sentence":                         "One sentence",
		"First one. Second one.":               "First one.",
		"Wrapped\n  over lines. And more":      "Wrapped over lines.",
		"Version 1.2 is not a sentence end. X": "Version 1.2 is not a sentence end.",
	} {
		if got := firstSentence(in); got != want {
			t.Errorf("firstSentence(%q) = %q, want %q", in, got, want)
		}
	}
}
