package mustgather

import (
	"strings"
	"testing"
	"time"
)

func TestWriteSummary(t *testing.T) {
	var b strings.Builder
	r := &Result{Namespace: "metallb-system", Found: "the MetalLB object"}
	if err := r.WriteSummary(&b, "must-gather.local"); err != nil {
		t.Fatal(err)
	}
	want := "must-gather: wrote must-gather.local (stack namespace metallb-system, found by the MetalLB object)\n" +
		"must-gather: the lbstack operator is not installed in this cluster\n"
	if b.String() != want {
		t.Errorf("summary %q, want %q", b.String(), want)
	}
	b.Reset()
	r.OperatorInstalled = true
	if err := r.WriteSummary(&b, "d"); err != nil || strings.Contains(b.String(), "not installed") {
		t.Errorf("summary with the operator installed: %q, %v", b.String(), err)
	}
}

func TestSinceFromEnv(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		flagSince time.Duration
		sinceSet  bool
		sinceTime string
		env       map[string]string
		since     time.Duration
		sinceAt   *time.Time
		err       string
	}{
		{name: "nothing set"},
		{name: "environment since", env: map[string]string{EnvSince: "2h"}, since: 2 * time.Hour},
		{name: "flag wins over environment", flagSince: time.Hour, sinceSet: true, env: map[string]string{EnvSince: "2h"}, since: time.Hour},
		{name: "environment since-time", env: map[string]string{EnvSinceTime: "2026-12-01T10:00:00Z"}, sinceAt: &at},
		{name: "flag since-time wins", sinceTime: "2026-12-01T10:00:00Z", env: map[string]string{EnvSinceTime: "2020-01-01T00:00:00Z"}, sinceAt: &at},
		{name: "bad environment duration", env: map[string]string{EnvSince: "two hours"}, err: `$MUST_GATHER_SINCE="two hours": time: invalid duration "two hours"`},
		{name: "bad time", sinceTime: "yesterday", err: `--since-time "yesterday": want RFC 3339`},
		{name: "negative", flagSince: -time.Minute, sinceSet: true, err: "--since -1m0s: must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Since: tc.flagSince}
			err := o.SinceFromEnv(tc.sinceSet, tc.sinceTime, func(k string) string { return tc.env[k] })
			if tc.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("err = %v, want prefix %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Since != tc.since || (o.SinceTime == nil) != (tc.sinceAt == nil) || (o.SinceTime != nil && !o.SinceTime.Equal(*tc.sinceAt)) {
				t.Errorf("got since %v at %v", o.Since, o.SinceTime)
			}
		})
	}
}
