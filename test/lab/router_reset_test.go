package lab

import "testing"

func TestNeighborResetString(t *testing.T) {
	for _, tc := range []struct {
		in   neighborResetJSON
		want string
	}{
		{neighborResetJSON{}, ""},
		{neighborResetJSON{LastResetDueTo: "Peer closed the session"}, "Peer closed the session"},
		// A hold timer expiry is a NOTIFICATION the router sends: only
		// the reason says which.
		{neighborResetJSON{LastResetDueTo: "BGP Notification send", LastNotificationReason: "Hold Timer Expired/Unspecific"},
			"BGP Notification send (Hold Timer Expired/Unspecific)"},
		{neighborResetJSON{LastResetDueTo: "BGP Notification received", LastNotificationReason: "Cease/Administrative Shutdown"},
			"BGP Notification received (Cease/Administrative Shutdown)"},
		// A reason left from an earlier NOTIFICATION does not describe
		// a later reset of another kind.
		{neighborResetJSON{LastResetDueTo: "BFD down received", LastNotificationReason: "Cease/Administrative Shutdown"}, "BFD down received"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}
