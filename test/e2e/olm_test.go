package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/test/lab"
	"github.com/lbstack/lbstack/test/olm"
)

// TestOLM installs, upgrades and removes lbstack through OLM, as a user
// on an OLM cluster does: OLM v0.38.0 from its own manifests, lbstack's
// catalog (0.1.0, and 0.2.0 replacing it) behind a CatalogSource, a
// Subscription; InstallPlan, CSV Succeeded, the operator running, the
// MetalLB object, the stack Available and the client answered; then the
// 0.2.0 InstallPlan approved with a 20 req/s client running, which must
// see at most one failure while no address changes and the MetalLB object
// is not touched; then the Subscription and CSV deleted. The lab's
// kustomize install is removed first and put back at the end.
func TestOLM(t *testing.T) {
	l := requireLab(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()

	start := time.Now()
	if err := l.BuildOLMImages(); err != nil {
		t.Fatalf("OLM's images (make olm-tools olm-catalog): %v", err)
	}
	// 0.2.0 runs a binary that says it is 0.2.0.
	if err := l.State.PushLbstackImage(ctx, olm.OperatorImage("0.2.0"), "0.2.0"); err != nil {
		t.Fatal(err)
	}
	t.Logf("OLM's, the bundles', the catalog's and the scorecard's images built in %s", time.Since(start).Round(100*time.Millisecond))

	// From a cluster without lbstack: the kustomize install goes, and
	// comes back for the tests after this one.
	if err := l.UninstallStack(ctx); err != nil {
		t.Fatalf("remove the kustomize install: %v", err)
	}
	t.Cleanup(func() {
		if err := installStack(l); err != nil {
			t.Errorf("reinstall lbstack with kustomize after the OLM test: %v", err)
		}
	})

	start = time.Now()
	t.Cleanup(func() {
		if err := l.RemoveOLM(context.Background()); err != nil {
			t.Errorf("remove OLM: %v", err)
		}
	})
	if err := l.InstallOLM(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("OLM %s installed (olm-operator, catalog-operator, packageserver Succeeded) in %s", lab.OLMVersion, time.Since(start).Round(100*time.Millisecond))

	// The catalog, then what a user applies.
	applyYAML(t, l, "olm-catalogsource", lab.OLMCatalogSourceYAML())
	eventually(t, 3*time.Minute, "CatalogSource "+lab.OLMCatalogSource+" READY", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.OLMNamespace, "get", "catalogsource", lab.OLMCatalogSource, "-o", "jsonpath={.status.connectionState.lastObservedState}")
		return err == nil && out == "READY", fmt.Sprintf("%q %v", out, err)
	})
	start = time.Now()
	// The lab's Subscription approves by hand, so the test can look at
	// 0.1.0 before it lets OLM move to 0.2.0.
	applyYAML(t, l, "olm-subscription", lab.OLMSubscriptionYAML("Manual", "lbstack.v0.1.0"))
	approveInstallPlan(t, l, "lbstack.v0.1.0")
	if err := l.WaitCSV(ctx, lab.StackNamespace, "lbstack.v0.1.0", "Succeeded", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "rollout", "status", "deployment/lbstack-operator", "--timeout=120s"); err != nil {
		t.Fatal(err)
	}
	t.Logf("Subscription → InstallPlan approved → CSV lbstack.v0.1.0 Succeeded in %s", time.Since(start).Round(100*time.Millisecond))

	// The user's MetalLB object; the stack comes up and answers.
	metallbYAML := scenarioFile("bgp-pools-sharing", "metallb.yaml")
	eventually(t, 2*time.Minute, "the MetalLB object admitted", func() (bool, string) {
		out, err := kubectlCombined(l, "apply", "--server-side", "-f", metallbYAML)
		return err == nil, out
	})
	t.Cleanup(func() {
		// The speakers and controller go with the MetalLB object (its
		// finalizer needs the operator: delete it before OLM removes
		// the operator, and again in case the test stopped early).
		ctx := context.Background()
		if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "delete", "metallb", "metallb", "--ignore-not-found", "--wait=true", "--timeout=120s"); err != nil {
			// No operator left to release the finalizer: release it,
			// or the namespace's deletion would wait forever.
			_, _ = l.Kubectl(ctx, "-n", lab.StackNamespace, "patch", "metallb", "metallb", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
		}
	})
	if err := waitAvailable(l, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	// What the operator rendered is owned by its Deployment, which OLM's
	// CSV owns: removing the CSV removes them (below).
	if refs, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "daemonset", "lbstack-speaker", "-o", "jsonpath={.metadata.ownerReferences[*].kind}/{.metadata.ownerReferences[*].name}"); err != nil || refs != "Deployment/lbstack-operator" {
		t.Errorf("the speaker DaemonSet's owners: %q %v, want the operator's Deployment", refs, err)
	}
	clearConfig(t, l)
	ip := holdTimeSetup(t, l)
	eventually(t, 30*time.Second, "the client's request to "+ip, func() (bool, string) {
		a, err := l.Client.Get(ctx, ip, 80, 3*time.Second)
		if err != nil {
			return false, err.Error()
		}
		t.Logf("installed by OLM: http://%s/ answered by %s on %s", ip, a.Pod, a.Node)
		return true, ""
	})
	before := metallbObject(t, l)
	svcNS := serviceNamespaceOf(t, l, ip)

	// The upgrade: OLM moves to 0.2.0 while the client runs.
	load := l.Client.StartLoad(ip, 80, 20, time.Second)
	start = time.Now()
	approveInstallPlan(t, l, "lbstack.v0.2.0")
	err := l.WaitCSV(ctx, lab.StackNamespace, "lbstack.v0.2.0", "Succeeded", 5*time.Minute)
	if err == nil {
		err = waitImages(l, olm.OperatorImage("0.2.0"), 4*time.Minute)
	}
	if err == nil {
		waitNextHops(t, l, ip+"/32", nodeAddrs(allNodes(l)...), 60*time.Second)
	}
	samples := load.Stop()
	if err != nil {
		t.Fatal(err)
	}
	failures := failedRequests(samples)
	t.Logf("upgrade 0.1.0 → 0.2.0 through OLM in %s; the client sent %d requests, %d failed", time.Since(start).Round(100*time.Millisecond), len(samples), len(failures))
	if len(failures) > 1 {
		t.Errorf("the client saw %d failed requests during the upgrade, want at most one:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	eventually(t, 2*time.Minute, "CSV lbstack.v0.1.0 gone (replaced)", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "csv", "-o", "name")
		return err == nil && !strings.Contains(out, "lbstack.v0.1.0"), out
	})
	if now := ingressIPs(t, l, svcNS, "web", 1)[0]; now != ip {
		t.Errorf("the Service's address changed during the upgrade: %s → %s", ip, now)
	}
	if after := metallbObject(t, l); after.generation != before.generation || after.spec != before.spec {
		t.Errorf("the MetalLB object was touched by the upgrade: generation %s → %s, spec %s → %s", before.generation, after.generation, before.spec, after.spec)
	}

	// The must-gather image, found from the installed CSV as `oc adm
	// must-gather` finds an operator's, gathers what `lbstack
	// must-gather` does.
	olmMustGather(t, l, "lbstack.v0.2.0")

	// Removal: the Subscription and the CSV go, with the MetalLB object
	// and its configuration in place. OLM deletes the operator's
	// Deployment with the CSV; what the operator rendered is owned by that
	// Deployment and goes with it.
	for _, args := range [][]string{
		{"-n", lab.StackNamespace, "delete", "subscription", "lbstack", "--wait=true"},
		{"-n", lab.StackNamespace, "delete", "csv", "lbstack.v0.2.0", "--wait=true"},
	} {
		if out, err := kubectlCombined(l, args...); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	start = time.Now()
	waitNoPods(t, l, lab.StackNamespace, "app=lbstack")
	managed := render.ManagedByLabel + "=" + render.ManagedByValue
	eventually(t, 2*time.Minute, "nothing the operator rendered left in "+lab.StackNamespace, func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "deployments,daemonsets,services,serviceaccounts,configmaps,secrets,roles,rolebindings,networkpolicies", "-l", managed, "-o", "name")
		return err == nil && strings.TrimSpace(out) == "", fmt.Sprintf("%q %v", out, err)
	})
	waitNextHops(t, l, ip+"/32", nil, 60*time.Second)
	t.Logf("Subscription and CSV deleted: operator, controller and speakers gone and the route withdrawn in %s", time.Since(start).Round(100*time.Millisecond))

	// What remains, as docs/olm.md lists it.
	remains, _ := l.Kubectl(ctx, "get", "crd", "-o", "name")
	var crds []string
	for _, c := range strings.Fields(remains) {
		if strings.HasSuffix(c, ".metallb.io") || strings.HasSuffix(c, ".lbstack.io") {
			crds = append(crds, strings.TrimPrefix(c, "customresourcedefinition.apiextensions.k8s.io/"))
		}
	}
	if len(crds) != 11 {
		t.Errorf("after removal, lbstack's CRDs: %v, want all 11 left (OLM's convention)", crds)
	}
	users, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "metallbs,ipaddresspools,bgppeers,bgpadvertisements", "-o", "name")
	if err != nil || strings.Count(users, "\n") != 4 {
		t.Errorf("after removal, the user's objects: %q %v, want the MetalLB object and the pool, peer and advertisement", users, err)
	}
	if now := ingressIPs(t, l, svcNS, "web", 1)[0]; now != ip {
		t.Errorf("after removal the Service's address is %s, was %s", now, ip)
	}
	cluster, _ := l.Kubectl(ctx, "get", "clusterroles,clusterrolebindings", "-l", managed, "-o", "name")
	webhooks, _ := l.Kubectl(ctx, "get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")
	finalizers, _ := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "metallb", "metallb", "-o", "jsonpath={.metadata.finalizers}")
	t.Logf("after removal: CRDs %v; user objects %s; cluster-scoped objects the operator rendered: %s; webhook configurations: %s; the MetalLB object's finalizers: %s",
		crds, strings.Join(strings.Fields(users), " "), strings.Join(strings.Fields(cluster), " "), strings.Join(strings.Fields(webhooks), " "), finalizers)
	if left, _ := l.Kubectl(ctx, "get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-l", "olm.owner.namespace="+lab.StackNamespace, "-o", "name"); strings.TrimSpace(left) != "" {
		t.Errorf("OLM left the CSV's webhook configurations: %s", left)
	}

	// What a user does to remove the rest (docs/olm.md): without the
	// operator, the MetalLB object's finalizer is nobody's to release.
	for _, args := range [][]string{
		{"-n", lab.StackNamespace, "patch", "metallb", "metallb", "--type=merge", "-p", `{"metadata":{"finalizers":null}}`},
		{"-n", lab.StackNamespace, "delete", "metallb", "metallb", "--wait=true", "--timeout=60s"},
		{"delete", "clusterroles,clusterrolebindings", "-l", managed},
	} {
		if out, err := kubectlCombined(l, args...); err != nil {
			t.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// approveInstallPlan waits for the InstallPlan that installs csv and
// approves it, as `kubectl patch installplan … approved=true` does.
func approveInstallPlan(t testing.TB, l *lab.Lab, csv string) {
	t.Helper()
	ctx := context.Background()
	var plan string
	eventually(t, 3*time.Minute, "an InstallPlan for "+csv, func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "installplan", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.clusterServiceVersionNames[*]}{"\n"}{end}`)
		if err != nil {
			return false, err.Error()
		}
		for _, line := range strings.Split(out, "\n") {
			name, csvs, _ := strings.Cut(line, "=")
			if strings.Contains(" "+csvs+" ", " "+csv+" ") {
				plan = name
				return true, ""
			}
		}
		sub, _ := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "subscription", "lbstack", "-o", "jsonpath={.status.conditions}")
		return false, fmt.Sprintf("plans %q; subscription conditions %s", out, sub)
	})
	if out, err := kubectlCombined(l, "-n", lab.StackNamespace, "patch", "installplan", plan, "--type=merge", "-p", `{"spec":{"approved":true}}`); err != nil {
		t.Fatalf("approve InstallPlan %s: %v\n%s", plan, err, out)
	}
	t.Logf("InstallPlan %s for %s approved", plan, csv)
}

type metallbState struct{ generation, spec string }

// serviceNamespaceOf returns the namespace of the Service named web that
// has ip.
func serviceNamespaceOf(t testing.TB, l *lab.Lab, ip string) string {
	t.Helper()
	out, err := l.Kubectl(context.Background(), "get", "svc", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.loadBalancer.ingress[0].ip}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if ns, rest, ok := strings.Cut(line, "/web="); ok && rest == ip {
			return ns
		}
	}
	t.Fatalf("no Service web with %s:\n%s", ip, out)
	return ""
}

func metallbObject(t testing.TB, l *lab.Lab) metallbState {
	t.Helper()
	out, err := l.Kubectl(context.Background(), "-n", lab.StackNamespace, "get", "metallb", "metallb", "-o", "jsonpath={.metadata.generation}|{.spec}")
	if err != nil {
		t.Fatal(err)
	}
	gen, spec, _ := strings.Cut(out, "|")
	return metallbState{generation: gen, spec: spec}
}

// olmMustGather reads the must-gather image from the CSV's
// operators.openshift.io/must-gather-image annotation, checks that the
// CSV's relatedImages name it (what mirroring copies), runs it as `oc adm
// must-gather --image` does, and compares the tree it wrote with the one
// `lbstack must-gather` writes from here: the same files.
func olmMustGather(t testing.TB, l *lab.Lab, csv string) {
	t.Helper()
	ctx := context.Background()
	image, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "csv", csv, "-o", `jsonpath={.metadata.annotations.operators\.openshift\.io/must-gather-image}`)
	if err != nil || image == "" {
		t.Fatalf("CSV %s: no operators.openshift.io/must-gather-image annotation (%v)", csv, err)
	}
	related, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "csv", csv, "-o", `jsonpath={range .spec.relatedImages[*]}{.image}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(related), image) {
		t.Errorf("CSV %s: must-gather image %s is not among its relatedImages %v", csv, image, strings.Fields(related))
	}
	ns := gatherWithImage(t, l, image)
	out, err := l.Kubectl(ctx, "-n", ns, "exec", "must-gather", "-c", "copy", "--", "bash", "-c", "cd /must-gather && find . -type f | sort")
	if err != nil {
		t.Fatal(err)
	}
	fromImage := relPaths(strings.Fields(out))
	dest := filepath.Join(t.TempDir(), "must-gather")
	cmd := exec.Command(l.State.LbstackBinary, "must-gather", "--kubeconfig", l.State.Kubeconfig(), "--dest-dir", dest)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Logf("lbstack must-gather: %v\n%s", err, b)
	}
	var local []string
	if err := filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		local = append(local, rel)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	local = relPaths(local)
	if !slices.Equal(fromImage, local) {
		t.Errorf("the must-gather image (%s, from CSV %s) wrote another tree than lbstack must-gather:\nonly from the image: %v\nonly from lbstack must-gather: %v",
			image, csv, without(fromImage, local), without(local, fromImage))
	}
	t.Logf("must-gather image %s (CSV %s's annotation, in its relatedImages): %d files, the same tree as lbstack must-gather", image, csv, len(fromImage))
}

// relPaths cleans and sorts relative paths ("./a/b" → "a/b").
func relPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Clean(p))
	}
	slices.Sort(out)
	return out
}

// without lists what a holds that b does not.
func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// TestOLMScorecard runs `operator-sdk scorecard` on the checked-in bundle
// as OperatorHub's pipeline does: the basic and OLM suites of
// bundle/tests/scorecard/config.yaml, each test a pod of the
// scorecard-test image (built here from the pinned operator-sdk) in the
// lab. Every test must pass.
func TestOLMScorecard(t *testing.T) {
	l := requireLab(t)
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.BuildOLMImages(); err != nil {
		t.Fatalf("the scorecard's images (make olm-tools olm-catalog): %v", err)
	}
	sdk := os.Getenv("LBSTACK_OPERATOR_SDK")
	if sdk == "" {
		sdk = filepath.Join(root, "bin", "operator-sdk-"+lab.OperatorSDKVersion)
	}
	ns := newNamespace(t, l, "scorecard")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sdk, "scorecard", filepath.Join(root, "bundle"),
		"--kubeconfig", l.State.Kubeconfig(), "--namespace", ns,
		"--untar-image", lab.ScorecardUntarImage, "--wait-time", "180s", "--output", "json")
	out, err := cmd.Output()
	var results struct {
		Items []struct {
			Spec struct {
				Labels map[string]string `json:"labels"`
			} `json:"spec"`
			Status struct {
				Results []struct {
					Name        string   `json:"name"`
					State       string   `json:"state"`
					Errors      []string `json:"errors"`
					Suggestions []string `json:"suggestions"`
				} `json:"results"`
			} `json:"status"`
		} `json:"items"`
	}
	if jerr := json.Unmarshal(out, &results); jerr != nil || len(results.Items) == 0 {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("operator-sdk scorecard: %v (json: %v)\n%s\n%s", err, jerr, out, stderr)
	}
	for _, it := range results.Items {
		for _, r := range it.Status.Results {
			if r.State != "pass" {
				t.Errorf("scorecard %s (suite %s): %s; errors %v; suggestions %v", r.Name, it.Spec.Labels["suite"], r.State, r.Errors, r.Suggestions)
				continue
			}
			t.Logf("scorecard %s (suite %s): pass%s", r.Name, it.Spec.Labels["suite"], suggestions(r.Suggestions))
		}
	}
	if err != nil && !t.Failed() {
		t.Errorf("operator-sdk scorecard exited with %v though every test passed", err)
	}
}

func suggestions(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return "; suggestions: " + strings.Join(s, "; ")
}
