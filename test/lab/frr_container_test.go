package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestFRRImageCommands(t *testing.T) {
	const labBin = "/repo/bin/lab"
	images := map[string]Image{
		LbstackImageName: {Binary: "/repo/bin/lbstack", Entrypoint: "/usr/bin/lbstack"},
		FRRImageName:     frrImage(labBin),
	}
	for ref, want := range map[string]bool{
		"quay.io/frrouting/frr:8.4.4":         true,
		"frr":                                 true,
		"frr:dev":                             true,
		"localhost:5000/mirror/frr@sha256:ab": true,
		"quay.io/frrouting/frr-exporter:v1":   false,
		"quay.io/lbstack/lbstack-frr:v1":      false,
		"registry.example/notfrr:frr":         false,
	} {
		img, ok := resolveImage(images, ref)
		if ok != want || (ok && !img.frr) {
			t.Errorf("%s: %+v %v, want FRR image %v", ref, img, ok, want)
		}
	}
	standIn := []string{labBin, FRRContainerCommand}
	img := images[FRRImageName]
	for _, tc := range []struct{ command, args, want []string }{
		// The speaker's frr container.
		{[]string{"/sbin/tini", "--", "/usr/lib/frr/docker-start"}, nil, standIn},
		// The image's own entrypoint and command.
		{nil, nil, standIn},
		{nil, []string{"/usr/lib/frr/docker-start"}, standIn},
		{[]string{"/usr/lib/frr/docker-start"}, nil, standIn},
		{[]string{"docker-start"}, nil, standIn},
		{[]string{"tini", "-s", "-p", "SIGTERM", "--", "docker-start"}, nil, standIn},
		{[]string{"/sbin/tini", "-g", "/usr/lib/frr/docker-start"}, nil, standIn},
		// The cp-frr-files init container, as given.
		{[]string{"/bin/sh", "-c", "cp -rLf /tmp/frr/* /etc/frr/"}, nil, []string{"/bin/sh", "-c", "cp -rLf /tmp/frr/* /etc/frr/"}},
		// tini around anything else: that command, without tini.
		{[]string{"/sbin/tini", "--"}, []string{"/bin/sh", "-c", "true"}, []string{"/bin/sh", "-c", "true"}},
		{nil, []string{"vtysh", "-c", "show version"}, []string{"vtysh", "-c", "show version"}},
		// tini with nothing to run: an empty command, refused at start.
		{[]string{"/sbin/tini", "--"}, nil, nil},
	} {
		if got := containerArgv(img, tc.command, tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("command %q args %q: argv %q, want %q", tc.command, tc.args, got, tc.want)
		}
	}
	// The lbstack image is untouched by the FRR rules.
	if got := containerArgv(images[LbstackImageName], []string{"/usr/lib/frr/docker-start"}, nil); got[0] != "/usr/lib/frr/docker-start" {
		t.Errorf("lbstack image: argv %q", got)
	}
}

func TestFRRDaemonsFile(t *testing.T) {
	// bindata/speaker/30-frr-startup.yaml's daemons file, plus the shell
	// forms FRR's own file uses.
	daemons := `# comment
bgpd=yes
ospfd=no
ospf6d=no
ripd=0
isisd=
pimd=no
bfdd=yes
vrrpd=yes # enabled, not run by the lab
staticd=no
vtysh_enable=yes
zebra_options="  -A 127.0.0.1 -s 90000000"
bgpd_options="   -A 127.0.0.1 -p 0"
bfdd_options='   -A 127.0.0.1'
frr_global_options="--limit-fds 4096"
not an assignment
`
	cmds, skipped := frrDaemons([]byte(daemons))
	var got []string
	for _, c := range cmds {
		got = append(got, strings.Join(c.Argv, " "))
	}
	common := " -u frr -g frr --log stdout --limit-fds 4096"
	want := []string{
		"/usr/lib/frr/zebra" + common + " -A 127.0.0.1 -s 90000000",
		"/usr/lib/frr/bgpd" + common + " -A 127.0.0.1 -p 0",
		// staticd runs whatever the file says, as with frrcommon.sh.
		"/usr/lib/frr/staticd" + common,
		"/usr/lib/frr/bfdd" + common + " -A 127.0.0.1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("daemons:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(skipped, []string{"vrrpd"}) {
		t.Errorf("skipped %q, want vrrpd", skipped)
	}

	// zebra is implied; bfdd off.
	cmds, skipped = frrDaemons([]byte("bgpd=yes\nbfdd=no\n"))
	var names []string
	for _, c := range cmds {
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"zebra", "bgpd", "staticd"}) || len(skipped) != 0 {
		t.Errorf("bgpd only: %q (skipped %q)", names, skipped)
	}

	vars := parseShellVars([]byte("a=\"x y\" \nexport b='q'\nc=plain;d=ignored\n1x=bad\nunterminated=\"x\n"))
	if vars["a"] != "x y" || vars["b"] != "q" || vars["c"] != "plain" || len(vars) != 3 {
		t.Errorf("shell vars %q", vars)
	}
}
