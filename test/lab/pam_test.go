package lab

import (
	"slices"
	"testing"

	"github.com/lbstack/lbstack/test/lab/oci"
)

func TestPAMProblems(t *testing.T) {
	const permit = "usr/lib/x86_64-linux-gnu/security/pam_permit.so"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"every include and module present",
			map[string]string{
				"etc/pam.d/frr":         "auth sufficient pam_permit.so\n# a comment\n",
				"etc/pam.d/other":       "@include common-auth\naccount required pam_permit.so debug\n",
				"etc/pam.d/common-auth": "auth [success=1 default=ignore] pam_permit.so\n",
			}, nil},
		{"other includes a file no maintainer script wrote (Debian's unpacked)",
			map[string]string{
				"etc/pam.d/frr":   "auth sufficient pam_permit.so\n",
				"etc/pam.d/other": "@include common-auth\n",
			}, []string{
				"PAM service frr: /etc/pam.d/common-auth is missing",
			}},
		{"no other at all",
			map[string]string{"etc/pam.d/frr": "auth sufficient pam_permit.so\n"},
			[]string{"PAM service frr: /etc/pam.d/other is missing"}},
		{"no file for the service",
			map[string]string{"etc/pam.d/other": "auth required pam_permit.so\n"},
			[]string{"PAM service frr: /etc/pam.d/frr is missing"}},
		{"a missing module; one optional with '-'; an absolute path",
			map[string]string{
				"etc/pam.d/frr":   "auth required pam_permit.so\n",
				"etc/pam.d/other": "auth required pam_nowhere.so\n-session optional pam_systemd.so\naccount required /" + permit + "\n",
			}, []string{"PAM service frr: /etc/pam.d/other line 1: module /usr/lib/x86_64-linux-gnu/security/pam_nowhere.so is missing"}},
		{"an include loop and a line without a module",
			map[string]string{
				"etc/pam.d/frr":   "@include frr\nauth required\n",
				"etc/pam.d/other": "auth required pam_permit.so\n",
			}, []string{
				"PAM service frr: /etc/pam.d/frr includes itself",
				"PAM service frr: /etc/pam.d/frr line 2: no module in \"auth required\"",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := oci.NewLayer()
			l.File(permit, []byte("\x7fELF"), 0o644, 0, 0)
			for p, data := range tc.files {
				l.File(p, []byte(data), 0o644, 0, 0)
			}
			got := PAMProblems([]*oci.Layer{l}, "frr")
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
}
