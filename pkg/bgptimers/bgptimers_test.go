package bgptimers

import (
	"testing"
	"time"
)

func TestHoldTimeAllowed(t *testing.T) {
	for _, tc := range []struct {
		hold time.Duration
		want bool
	}{
		{0, true},
		{time.Nanosecond, false},
		{time.Second, false},
		{2999 * time.Millisecond, false},
		{3 * time.Second, true},
		{90 * time.Second, true},
		{Max, true},
		{-time.Second, false},
	} {
		if got := HoldTimeAllowed(tc.hold); got != tc.want {
			t.Errorf("HoldTimeAllowed(%s) = %v, want %v", tc.hold, got, tc.want)
		}
	}
}

func TestKeepaliveAllowed(t *testing.T) {
	for _, tc := range []struct {
		keepalive, hold time.Duration
		want            bool
	}{
		{0, 0, true},
		{time.Second, 0, false}, // keepalives are off with a zero hold time
		{30 * time.Second, 90 * time.Second, true},
		{0, 90 * time.Second, true},
		{89 * time.Second, 90 * time.Second, true},
		{90 * time.Second, 90 * time.Second, false},
		{91 * time.Second, 90 * time.Second, false},
	} {
		if got := KeepaliveAllowed(tc.keepalive, tc.hold); got != tc.want {
			t.Errorf("KeepaliveAllowed(%s, %s) = %v, want %v", tc.keepalive, tc.hold, got, tc.want)
		}
	}
}

func TestDerive(t *testing.T) {
	d := func(s string) *time.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	for _, tc := range []struct {
		name            string
		hold, keepalive *time.Duration
		h, k            time.Duration
		set             bool
	}{
		{name: "neither: backend defaults"},
		{name: "both as given", hold: d("90s"), keepalive: d("60s"), h: 90 * time.Second, k: 60 * time.Second, set: true},
		{name: "hold only: keepalive a third", hold: d("90s"), h: 90 * time.Second, k: 30 * time.Second, set: true},
		{name: "hold only, not a multiple of 3", hold: d("10s"), h: 10 * time.Second, k: 10 * time.Second / 3, set: true},
		{name: "hold 0 only: keepalive 0", hold: d("0s"), set: true},
		{name: "keepalive only: hold three times", keepalive: d("20s"), h: 60 * time.Second, k: 20 * time.Second, set: true},
	} {
		h, k, set := Derive(tc.hold, tc.keepalive)
		if h != tc.h || k != tc.k || set != tc.set {
			t.Errorf("%s: Derive = %s, %s, %v; want %s, %s, %v", tc.name, h, k, set, tc.h, tc.k, tc.set)
		}
	}
}
