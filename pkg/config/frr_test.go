package config

import (
	"strings"
	"testing"
)

func TestFRRPasswordProblem(t *testing.T) {
	tests := []struct {
		pw, want string
	}{
		{"simple", ""},
		{`a!b#c"d'e\f`, ""},
		{"!leading", ""},
		{"ünïcödé", ""},
		{strings.Repeat("x", 80), ""},
		{strings.Repeat("x", 81), "at most 80"},
		{"a b", "whitespace"},
		{"a\tb", "control"},
		{"a\rb", "control"},
		{"a\x7fb", "control"},
		{"\xff", "UTF-8"},
	}
	for _, tc := range tests {
		got := FRRPasswordProblem(tc.pw)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("FRRPasswordProblem(%q) = %q, want %q", tc.pw, got, tc.want)
		}
	}
}

func TestVRFNameProblem(t *testing.T) {
	tests := []struct {
		name, want string
	}{
		{"red", ""},
		{"vrf-130.a_b", ""},
		{strings.Repeat("v", 15), ""},
		{"default", "default VRF"},
		{"red:1", "':'"},
		{"red/1", "'/'"},
		{"red 1", "' '"},
		{strings.Repeat("v", 16), "15 bytes"},
		{".", "not a valid device name"},
		{"rød", "printable ASCII"},
		{"!red", "comment"},
		{"#red", "comment"},
	}
	for _, tc := range tests {
		got := VRFNameProblem(tc.name)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("VRFNameProblem(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestBFDProfileProblem(t *testing.T) {
	ok := &BFDProfile{Name: "p", ReceiveInterval: 25, TransmitInterval: 25, DetectMultiplier: 3, EchoInterval: 50, MinimumTTL: 254}
	if why := BFDProfileProblem(ok); why != "" {
		t.Errorf("%+v: %s", ok, why)
	}
	for _, p := range []*BFDProfile{
		{ReceiveInterval: 9}, {TransmitInterval: 60001}, {DetectMultiplier: 1}, {EchoInterval: 5}, {MinimumTTL: 255},
	} {
		if why := BFDProfileProblem(p); !strings.Contains(why, "out of range") {
			t.Errorf("%+v: %q", p, why)
		}
	}
}
