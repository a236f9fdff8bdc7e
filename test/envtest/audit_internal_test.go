package envtest

import "testing"

// TestCountedWrite: which audit lines count as a user's write, and as what.
func TestCountedWrite(t *testing.T) {
	for _, tc := range []struct {
		name, line, user, key, err string
	}{
		{name: "status patch, impersonated: the impersonated user's",
			line: `{"stage":"ResponseComplete","verb":"patch","user":{"username":"admin"},"impersonatedUser":{"username":"system:serviceaccount:ns:lbstack-speaker"},"objectRef":{"resource":"servicebgpstatuses","subresource":"status"}}`,
			user: "system:serviceaccount:ns:lbstack-speaker", key: "PATCH servicebgpstatuses/status"},
		{name: "create by the user itself",
			line: `{"stage":"ResponseComplete","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"events"}}`,
			user: "alice", key: "CREATE events"},
		{name: "delete",
			line: `{"stage":"ResponseComplete","verb":"delete","user":{"username":"alice"},"objectRef":{"resource":"servicel2statuses"}}`,
			user: "alice", key: "DELETE servicel2statuses"},
		{name: "a read is not a write",
			line: `{"stage":"ResponseComplete","verb":"get","user":{"username":"alice"},"objectRef":{"resource":"services"}}`},
		{name: "a watch is not a write",
			line: `{"stage":"ResponseComplete","verb":"watch","user":{"username":"alice"},"objectRef":{"resource":"services"}}`},
		{name: "counted once: only the completed stage",
			line: `{"stage":"RequestReceived","verb":"create","user":{"username":"alice"},"objectRef":{"resource":"events"}}`},
		{name: "no object (a non-resource URL)",
			line: `{"stage":"ResponseComplete","verb":"create","user":{"username":"alice"}}`},
		{name: "not JSON", line: `{"stage":`, err: "audit line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, key, err := countedWrite([]byte(tc.line))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error, want one with %q", tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if key != tc.key || (tc.key != "" && user != tc.user) {
				t.Errorf("got %q %q, want %q %q", user, key, tc.user, tc.key)
			}
		})
	}
}

// TestDiffWrites: the total and each kind that changed.
func TestDiffWrites(t *testing.T) {
	for _, tc := range []struct {
		after, before map[string]int
		want          string
	}{
		{after: map[string]int{"CREATE events": 2}, before: map[string]int{"CREATE events": 2}, want: "none"},
		{after: nil, before: nil, want: "none"},
		{after: map[string]int{"PATCH a/status": 3, "CREATE b": 1, "CREATE events": 5}, before: map[string]int{"CREATE events": 5, "PATCH a/status": 1},
			want: "3 (CREATE b 1, PATCH a/status 2)"},
	} {
		if got := DiffWrites(tc.after, tc.before); got != tc.want {
			t.Errorf("DiffWrites(%v, %v) = %q, want %q", tc.after, tc.before, got, tc.want)
		}
	}
}
