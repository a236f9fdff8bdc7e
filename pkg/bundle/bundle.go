package bundle

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/pkg/render"
)

//go:embed icon.svg
var icon []byte

// Package and channel of the bundle.
const (
	Package        = "lbstack"
	Channel        = "candidate"
	OperatorName   = "lbstack-operator"
	SuggestedNS    = "metallb-system"
	MinKubeVersion = "1.27.0"
	// ScorecardImage runs the scorecard's basic and OLM tests: the
	// scorecard-test of the operator-sdk the Makefile pins (test/olm holds
	// the tags equal), which `make olm-tools` builds for the lab.
	ScorecardImage = "quay.io/operator-framework/scorecard-test:v1.42.2"
)

// Options of one bundle.
type Options struct {
	// Root is the repository root (config/ is read from there).
	Root string
	// Version of the operator (semver, no leading v).
	Version string
	// Image of the operator (and so of every lbstack component).
	Image string
	// MustGatherImage is the must-gather image (Dockerfile target
	// must-gather); empty derives it from Image (MustGatherImageFor).
	MustGatherImage string
	// Replaces names the CSV this version upgrades (lbstack.v0.1.0): OLM
	// follows the chain from the installed CSV to the channel head. Empty
	// for the first version.
	Replaces string
	// SkipRange (olm.skipRange, a semver range such as ">=0.1.0 <0.2.0")
	// lets OLM upgrade straight from any version in it, so that a cluster
	// that missed a release need not walk every step.
	SkipRange string
}

// MustGatherImageFor is the must-gather image published beside image:
// the repository gets a -must-gather suffix, the tag stays
// (quay.io/lbstack/lbstack:v0.1.0 -> quay.io/lbstack/lbstack-must-gather:v0.1.0).
func MustGatherImageFor(image string) string { return render.Companion(image, "must-gather") }

// crdInfo is what the CSV says about each owned kind.
var crdInfo = map[string]struct{ display, description string }{
	"MetalLB":            {"MetalLB", "The one object that runs the stack: the controller, the speakers (native GoBGP or FRR sidecar), RBAC and NetworkPolicies. Create one, named metallb, in the operator's namespace."},
	"IPAddressPool":      {"IP Address Pool", "Addresses the controller assigns to Services of type LoadBalancer."},
	"BGPPeer":            {"BGP Peer", "A BGP router the speakers open sessions with."},
	"BGPAdvertisement":   {"BGP Advertisement", "How addresses of selected pools are announced over BGP: aggregation, communities, local preference, peers and nodes."},
	"L2Advertisement":    {"L2 Advertisement", "Announces addresses of selected pools with ARP (IPv4) and NDP (IPv6) from selected nodes and interfaces."},
	"BFDProfile":         {"BFD Profile", "Bidirectional Forwarding Detection timers for BGP peers (FRR backend)."},
	"Community":          {"Community", "Names for BGP community values, usable in BGP advertisements."},
	"ConfigurationState": {"Configuration State", "Whether each component accepted the current configuration, with the errors when not."},
	"ServiceL2Status":    {"Service L2 Status", "Which node announces a Service's address over layer 2."},
	"ServiceBGPStatus":   {"Service BGP Status", "Which peers a node announces a Service's address to."},
	"SymmetricRouting":   {"Symmetric Routing", "One declaration for Services whose return traffic must leave through the VRF it came in on: the operator generates and checks the NMState policy, VRF-bound BGP peer, pools, advertisements and OVN EgressServices."},
}

// Generate returns the bundle's files, keyed by path relative to Root.
func Generate(o Options) (map[string][]byte, error) {
	if _, err := semver.Parse(o.Version); err != nil {
		return nil, fmt.Errorf("bundle version %q: %w", o.Version, err)
	}
	if o.Image == "" {
		return nil, fmt.Errorf("bundle: no operator image")
	}
	if o.Replaces != "" && !strings.HasPrefix(o.Replaces, Package+".v") {
		return nil, fmt.Errorf("bundle replaces %q: want a CSV name of this package (%s.v<version>)", o.Replaces, Package)
	}
	if o.SkipRange != "" {
		if _, err := semver.ParseRange(o.SkipRange); err != nil {
			return nil, fmt.Errorf("bundle skip range %q: %w", o.SkipRange, err)
		}
	}
	objs, err := Kustomize(filepath.Join(o.Root, "config", "default"))
	if err != nil {
		return nil, err
	}
	samples, err := Kustomize(filepath.Join(o.Root, "config", "samples"))
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	csv := &olmv1alpha1.ClusterServiceVersion{
		TypeMeta:   metav1.TypeMeta{APIVersion: olmv1alpha1.SchemeGroupVersion.String(), Kind: olmv1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{Name: Package + ".v" + o.Version},
	}
	var (
		deployments []olmv1alpha1.StrategyDeploymentSpec
		cluster     []olmv1alpha1.StrategyDeploymentPermissions
		namespaced  []olmv1alpha1.StrategyDeploymentPermissions
		owned       []olmv1alpha1.CRDDescription
		webhooks    []olmv1alpha1.WebhookDescription
		frrImage    string
		sa          string
	)
	for _, u := range objs {
		switch u.GetKind() {
		case "ServiceAccount":
			sa = u.GetName()
		}
	}
	for _, u := range objs {
		switch u.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRoleBinding", "RoleBinding":
			// OLM creates the namespace's service account and binds the
			// CSV's permissions to it.
		case "Service":
			// OLM creates the webhook Service (<deployment>-service).
		case "CustomResourceDefinition":
			var crd apiextensionsv1.CustomResourceDefinition
			if err := fromUnstructured(u, &crd); err != nil {
				return nil, err
			}
			info, ok := crdInfo[crd.Spec.Names.Kind]
			if !ok {
				return nil, fmt.Errorf("no display name and description for %s: add it to crdInfo", crd.Spec.Names.Kind)
			}
			for _, v := range crd.Spec.Versions {
				if !v.Served {
					continue
				}
				owned = append(owned, olmv1alpha1.CRDDescription{
					Name: crd.Name, Version: v.Name, Kind: crd.Spec.Names.Kind,
					DisplayName: info.display, Description: info.description,
					SpecDescriptors: specDescriptors(v.Schema),
				})
			}
			// OLM points the conversion at its own webhook Service.
			crd.Spec.Conversion = nil
			crd.Status = apiextensionsv1.CustomResourceDefinitionStatus{}
			b, err := marshal(&crd, "status")
			if err != nil {
				return nil, err
			}
			files[filepath.Join("bundle", "manifests", crd.Spec.Group+"_"+crd.Spec.Names.Plural+".yaml")] = b
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			if err := fromUnstructured(u, &cr); err != nil {
				return nil, err
			}
			cluster = append(cluster, olmv1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sa, Rules: withoutCertInjection(cr.Rules)})
		case "Role":
			var r rbacv1.Role
			if err := fromUnstructured(u, &r); err != nil {
				return nil, err
			}
			if len(namespaced) == 0 {
				namespaced = append(namespaced, olmv1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sa})
			}
			namespaced[0].Rules = append(namespaced[0].Rules, r.Rules...)
		case "Deployment":
			var d appsv1.Deployment
			if err := fromUnstructured(u, &d); err != nil {
				return nil, err
			}
			img, err := olmDeployment(&d.Spec, o.Image)
			if err != nil {
				return nil, err
			}
			frrImage = img
			deployments = append(deployments, olmv1alpha1.StrategyDeploymentSpec{Name: d.Name, Spec: d.Spec, Label: d.Labels})
		case "ValidatingWebhookConfiguration":
			var vwc admissionregistrationv1.ValidatingWebhookConfiguration
			if err := fromUnstructured(u, &vwc); err != nil {
				return nil, err
			}
			for _, w := range vwc.Webhooks {
				webhooks = append(webhooks, olmv1alpha1.WebhookDescription{
					GenerateName: w.Name, Type: olmv1alpha1.ValidatingAdmissionWebhook, DeploymentName: OperatorName,
					ContainerPort: 443, TargetPort: ptr(intstr.FromInt32(9443)), Rules: w.Rules, FailurePolicy: w.FailurePolicy,
					SideEffects: w.SideEffects, AdmissionReviewVersions: w.AdmissionReviewVersions, WebhookPath: w.ClientConfig.Service.Path,
				})
			}
		case "NetworkPolicy":
			b, err := marshal(u.Object)
			if err != nil {
				return nil, err
			}
			u.SetNamespace("")
			b, err = marshal(u.Object)
			if err != nil {
				return nil, err
			}
			files[filepath.Join("bundle", "manifests", u.GetName()+"_networking.k8s.io_v1_networkpolicy.yaml")] = b
		default:
			return nil, fmt.Errorf("config/default renders a %s the bundle does not know how to carry", u.GetKind())
		}
	}
	sort.Slice(owned, func(i, j int) bool {
		if owned[i].Name != owned[j].Name {
			return owned[i].Name < owned[j].Name
		}
		return owned[i].Version < owned[j].Version
	})
	for _, d := range owned {
		if d.Kind == "BGPPeer" {
			webhooks = append(webhooks, olmv1alpha1.WebhookDescription{
				GenerateName: "cbgppeers.metallb.io", Type: olmv1alpha1.ConversionWebhook, DeploymentName: OperatorName,
				ContainerPort: 443, TargetPort: ptr(intstr.FromInt32(9443)), SideEffects: ptr(admissionregistrationv1.SideEffectClassNone),
				AdmissionReviewVersions: []string{"v1"}, WebhookPath: ptr("/convert"), ConversionCRDs: []string{d.Name},
			})
			break
		}
	}
	if len(deployments) != 1 || sa == "" {
		return nil, fmt.Errorf("config/default must render one operator Deployment and its ServiceAccount (got %d deployments, service account %q)", len(deployments), sa)
	}

	examples, initialization, err := almExamples(samples)
	if err != nil {
		return nil, err
	}
	v, _ := semver.Parse(o.Version)
	mustGather := o.MustGatherImage
	if mustGather == "" {
		mustGather = MustGatherImageFor(o.Image)
	}
	csv.Annotations = map[string]string{
		// `oc adm must-gather --all-images` runs the image this names.
		"operators.openshift.io/must-gather-image": mustGather,
		"alm-examples": examples,
		"operatorframework.io/initialization-resource": initialization,
		"operatorframework.io/suggested-namespace":     SuggestedNS,
		// The console creates the suggested namespace from this template:
		// the speakers need host networking and NET_RAW, which only the
		// privileged Pod Security level admits; on a cluster enforcing
		// restricted by default they would be refused.
		"operatorframework.io/suggested-namespace-template": suggestedNamespaceTemplate(),
		"capabilities":                           "Seamless Upgrades",
		"categories":                             "Networking",
		"containerImage":                         o.Image,
		"description":                            "Bare-metal load balancing for Services of type LoadBalancer, speaking MetalLB's metallb.io API.",
		"repository":                             "https://github.com/lbstack/lbstack",
		"support":                                "lbstack",
		"operators.operatorframework.io/builder": "lbstack hack/bundle",
		// Not claimed: the images (ours, FRR's) are named by tag, not by
		// digest, and no digest can be verified where the bundle is built.
		"features.operators.openshift.io/disconnected":     "false",
		"features.operators.openshift.io/fips-compliant":   "false",
		"features.operators.openshift.io/proxy-aware":      "false",
		"features.operators.openshift.io/tls-profiles":     "false",
		"features.operators.openshift.io/token-auth-aws":   "false",
		"features.operators.openshift.io/token-auth-azure": "false",
		"features.operators.openshift.io/token-auth-gcp":   "false",
		"features.operators.openshift.io/cnf":              "false",
		"features.operators.openshift.io/cni":              "false",
		"features.operators.openshift.io/csi":              "false",
	}
	if o.SkipRange != "" {
		csv.Annotations["olm.skipRange"] = o.SkipRange
	}
	csv.Spec = olmv1alpha1.ClusterServiceVersionSpec{
		Replaces:       o.Replaces,
		DisplayName:    "lbstack",
		Description:    description,
		Version:        version.OperatorVersion{Version: v},
		Maturity:       Channel,
		MinKubeVersion: MinKubeVersion,
		Keywords:       []string{"load balancer", "metallb", "bgp", "bfd", "arp", "ndp", "bare metal", "networking"},
		Maintainers:    []olmv1alpha1.Maintainer{{Name: "lbstack maintainers", Email: "maintainers@lbstack.io"}},
		Provider:       olmv1alpha1.AppLink{Name: "lbstack", URL: "https://github.com/lbstack/lbstack"},
		Links: []olmv1alpha1.AppLink{
			{Name: "Source", URL: "https://github.com/lbstack/lbstack"},
			{Name: "Install", URL: "https://github.com/lbstack/lbstack/blob/main/docs/install.md"},
		},
		Icon: []olmv1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString(icon), MediaType: "image/svg+xml"}},
		InstallModes: []olmv1alpha1.InstallMode{
			// A conversion webhook makes OLM accept AllNamespaces only.
			{Type: olmv1alpha1.InstallModeTypeOwnNamespace, Supported: false},
			{Type: olmv1alpha1.InstallModeTypeSingleNamespace, Supported: false},
			{Type: olmv1alpha1.InstallModeTypeMultiNamespace, Supported: false},
			{Type: olmv1alpha1.InstallModeTypeAllNamespaces, Supported: true},
		},
		CustomResourceDefinitions: olmv1alpha1.CustomResourceDefinitions{Owned: owned},
		WebhookDefinitions:        webhooks,
		RelatedImages: []olmv1alpha1.RelatedImage{
			{Name: "lbstack", Image: o.Image},
			{Name: "frr", Image: frrImage},
			{Name: "must-gather", Image: mustGather},
		},
		InstallStrategy: olmv1alpha1.NamedInstallStrategy{
			StrategyName: olmv1alpha1.InstallStrategyNameDeployment,
			StrategySpec: olmv1alpha1.StrategyDetailsDeployment{
				DeploymentSpecs: deployments, Permissions: namespaced, ClusterPermissions: cluster,
			},
		},
	}
	b, err := marshal(csv, "status")
	if err != nil {
		return nil, err
	}
	files[filepath.Join("bundle", "manifests", Package+".clusterserviceversion.yaml")] = b
	files[filepath.Join("bundle", "metadata", "annotations.yaml")] = []byte(annotationsYAML())
	files[filepath.Join("bundle", "tests", "scorecard", "config.yaml")] = []byte(scorecardYAML)
	files[filepath.Join("bundle", "bundle.Dockerfile")] = []byte(dockerfile())
	return files, nil
}

const description = `lbstack runs the bare-metal load-balancer stack and speaks MetalLB's ` + "`metallb.io`" + ` API,
so existing IPAddressPool, BGPPeer, BGPAdvertisement, L2Advertisement, BFDProfile and
Community objects keep working.

After installing, create one MetalLB object (named ` + "`metallb`" + ` in the operator's namespace).
The operator then runs the controller, which assigns addresses to Services of type
LoadBalancer, and a speaker on every selected node, which announces them over BGP
(embedded GoBGP, or FRR for BFD and VRFs) or with ARP/NDP.

The operator serves the admission webhooks for every metallb.io kind from the start,
so no pool or peer is created unchecked, and the BGPPeer v1beta1/v1beta2 conversion.
`

// olmDeployment adapts the operator Deployment to OLM: OLM provides the
// webhook serving certificate (mounted at the controller-runtime default
// directory) and injects the CA, so the operator does not rotate its own;
// the image is the bundle's. It returns the FRR image the operator
// defaults to.
func olmDeployment(spec *appsv1.DeploymentSpec, image string) (string, error) {
	ps := &spec.Template.Spec
	var vols []corev1.Volume
	for _, v := range ps.Volumes {
		if v.Name != "cert" {
			vols = append(vols, v)
		}
	}
	ps.Volumes = vols
	frr := ""
	found := false
	for i := range ps.Containers {
		c := &ps.Containers[i]
		if c.Name != "operator" {
			continue
		}
		found = true
		c.Image = image
		c.Args = append(c.Args, "--cert-mode=external")
		var mounts []corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if m.Name != "cert" {
				mounts = append(mounts, m)
			}
		}
		c.VolumeMounts = mounts
		// FRR's image is published beside the operator's (the
		// Dockerfile's frr target); named here so that OLM lists it and
		// mirroring tools find it.
		frr = render.Companion(image, "frr")
		var env []corev1.EnvVar
		for _, e := range c.Env {
			if e.Name != "FRR_IMAGE" {
				env = append(env, e)
			}
		}
		c.Env = append(env, corev1.EnvVar{Name: "FRR_IMAGE", Value: frr})
	}
	if !found {
		return "", fmt.Errorf("the operator Deployment needs a container named operator")
	}
	return frr, nil
}

// PodSecurityLabels are the labels of the stack's namespace: Pod Security
// admission at the privileged level (the speakers run on the host network
// with NET_RAW). The kustomize install (config/manager) sets the same.
var PodSecurityLabels = map[string]string{
	"pod-security.kubernetes.io/enforce": "privileged",
	"pod-security.kubernetes.io/audit":   "privileged",
	"pod-security.kubernetes.io/warn":    "privileged",
}

// suggestedNamespaceTemplate is the Namespace OperatorHub's console creates
// for the operator, as JSON.
func suggestedNamespaceTemplate() string {
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": SuggestedNS, "labels": PodSecurityLabels}}
	b, _ := json.Marshal(ns)
	return string(b)
}

// withoutCertInjection drops the permissions the operator needs only to
// inject its own CA (webhook configurations, CRD conversion): under OLM,
// OLM provides the certificate and injects it.
func withoutCertInjection(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		if len(r.APIGroups) == 1 && (r.APIGroups[0] == "apiextensions.k8s.io" || r.APIGroups[0] == "admissionregistration.k8s.io") {
			continue
		}
		out = append(out, r)
	}
	return out
}

// almExamples returns the samples as the alm-examples JSON array (without
// namespaces: the console creates them where the user is) and the MetalLB
// sample as the initialization resource.
func almExamples(samples []*unstructured.Unstructured) (string, string, error) {
	var list []map[string]any
	init := ""
	for _, s := range samples {
		s = s.DeepCopy()
		if s.GetKind() == "MetalLB" {
			b, err := json.Marshal(s.Object)
			if err != nil {
				return "", "", err
			}
			init = string(b)
		}
		s.SetNamespace("")
		list = append(list, s.Object)
		if s.GetKind() == "BGPPeer" && s.GetAPIVersion() == "metallb.io/v1beta2" {
			// The deprecated v1beta1 is still served; the sample's fields
			// mean the same there.
			old := s.DeepCopy()
			old.SetAPIVersion("metallb.io/v1beta1")
			list = append(list, old.Object)
		}
	}
	if init == "" {
		return "", "", fmt.Errorf("config/samples has no MetalLB object")
	}
	b, err := json.MarshalIndent(list, "", "  ")
	return string(b), init, err
}

func annotationsYAML() string {
	var b strings.Builder
	b.WriteString("annotations:\n")
	for _, kv := range bundleAnnotations() {
		fmt.Fprintf(&b, "  %s: %s\n", kv[0], kv[1])
	}
	return b.String()
}

func bundleAnnotations() [][2]string {
	return [][2]string{
		{"operators.operatorframework.io.bundle.mediatype.v1", "registry+v1"},
		{"operators.operatorframework.io.bundle.manifests.v1", "manifests/"},
		{"operators.operatorframework.io.bundle.metadata.v1", "metadata/"},
		{"operators.operatorframework.io.bundle.package.v1", Package},
		{"operators.operatorframework.io.bundle.channels.v1", Channel},
		{"operators.operatorframework.io.bundle.channel.default.v1", Channel},
		{"operators.operatorframework.io.test.mediatype.v1", "scorecard+v1"},
		{"operators.operatorframework.io.test.config.v1", "tests/scorecard/"},
	}
}

func dockerfile() string {
	var b strings.Builder
	b.WriteString("# Generated by `make bundle` (hack/bundle); build from bundle/:\n")
	b.WriteString("#   docker build -f bundle/bundle.Dockerfile -t $BUNDLE_IMG bundle\n")
	b.WriteString("FROM scratch\n\n")
	for _, kv := range bundleAnnotations() {
		fmt.Fprintf(&b, "LABEL %s=%s\n", kv[0], kv[1])
	}
	b.WriteString("\nCOPY manifests /manifests/\nCOPY metadata /metadata/\nCOPY tests/scorecard /tests/scorecard/\n")
	return b.String()
}

const scorecardYAML = `apiVersion: scorecard.operatorframework.io/v1alpha3
kind: Configuration
metadata:
  name: config
stages:
- parallel: true
  tests:
  - entrypoint:
    - scorecard-test
    - basic-check-spec
    image: ` + ScorecardImage + `
    labels:
      suite: basic
      test: basic-check-spec-test
  - entrypoint:
    - scorecard-test
    - olm-bundle-validation
    image: ` + ScorecardImage + `
    labels:
      suite: olm
      test: olm-bundle-validation-test
  - entrypoint:
    - scorecard-test
    - olm-crds-have-validation
    image: ` + ScorecardImage + `
    labels:
      suite: olm
      test: olm-crds-have-validation-test
  - entrypoint:
    - scorecard-test
    - olm-spec-descriptors
    image: ` + ScorecardImage + `
    labels:
      suite: olm
      test: olm-spec-descriptors-test
  - entrypoint:
    - scorecard-test
    - olm-status-descriptors
    image: ` + ScorecardImage + `
    labels:
      suite: olm
      test: olm-status-descriptors-test
`

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

// marshal renders v as YAML without the named top-level fields and without
// metadata.creationTimestamp (no timestamps: the bundle is reproducible).
func marshal(v any, drop ...string) ([]byte, error) {
	js, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	for _, d := range drop {
		delete(m, d)
	}
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	stripNullTimestamps(m)
	var buf bytes.Buffer
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	buf.Write(b)
	return buf.Bytes(), nil
}

// stripNullTimestamps removes the `creationTimestamp: null` typed
// templates carry.
func stripNullTimestamps(v any) {
	switch t := v.(type) {
	case map[string]any:
		if ts, ok := t["creationTimestamp"]; ok && ts == nil {
			delete(t, "creationTimestamp")
		}
		for _, x := range t {
			stripNullTimestamps(x)
		}
	case []any:
		for _, x := range t {
			stripNullTimestamps(x)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// specDescriptors describes every top-level spec field of a CRD version's
// schema, so that the console labels the form's fields and scorecard's
// olm-spec-descriptors test (every spec field of alm-examples described)
// passes. Each takes its description's first sentence from the schema.
func specDescriptors(schema *apiextensionsv1.CustomResourceValidation) []olmv1alpha1.SpecDescriptor {
	if schema == nil || schema.OpenAPIV3Schema == nil {
		return nil
	}
	spec, ok := schema.OpenAPIV3Schema.Properties["spec"]
	if !ok {
		return nil
	}
	names := make([]string, 0, len(spec.Properties))
	for name := range spec.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []olmv1alpha1.SpecDescriptor
	for _, name := range names {
		out = append(out, olmv1alpha1.SpecDescriptor{
			Path:        name,
			DisplayName: displayName(name),
			Description: firstSentence(spec.Properties[name].Description),
		})
	}
	return out
}

// acronyms are written in capitals in display names.
var acronyms = map[string]string{"ip": "IP", "ips": "IPs", "bgp": "BGP", "bfd": "BFD", "asn": "ASN", "vrf": "VRF", "l2": "L2", "ebgp": "eBGP", "id": "ID", "tcp": "TCP"}

// displayName turns a field name into words: peerASN → "Peer ASN",
// ipAddressPools → "IP Address Pools".
func displayName(field string) string {
	var words []string
	start := 0
	for i := 1; i < len(field); i++ {
		lowerToUpper := unicode.IsLower(rune(field[i-1])) && unicode.IsUpper(rune(field[i]))
		digitToUpper := unicode.IsDigit(rune(field[i-1])) && unicode.IsUpper(rune(field[i]))
		acronymEnd := i+1 < len(field) && unicode.IsUpper(rune(field[i-1])) && unicode.IsUpper(rune(field[i])) && unicode.IsLower(rune(field[i+1]))
		if lowerToUpper || digitToUpper || acronymEnd {
			words = append(words, field[start:i])
			start = i
		}
	}
	words = append(words, field[start:])
	for i, w := range words {
		if a, ok := acronyms[strings.ToLower(w)]; ok {
			words[i] = a
			continue
		}
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// firstSentence is a description's first sentence, on one line.
func firstSentence(d string) string {
	d = strings.Join(strings.Fields(d), " ")
	if i := strings.Index(d, ". "); i >= 0 {
		d = d[:i+1]
	}
	return d
}

// Write writes the files Generate returned into the bundle directory dir
// (the repository's bundle/, or another version's bundle elsewhere), after
// removing what an earlier run generated there, so that a file no longer
// generated does not linger (bundle/README.md is not generated and stays).
// It returns the paths written, sorted.
func Write(dir string, files map[string][]byte) ([]string, error) {
	for _, d := range []string{"manifests", "metadata", "tests"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return nil, fmt.Errorf("clean %s: %w", dir, err)
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var written []string
	for _, n := range names {
		// Generate names files as the repository holds them (bundle/...).
		rel, ok := strings.CutPrefix(filepath.ToSlash(n), "bundle/")
		if !ok {
			return nil, fmt.Errorf("generated file %s is outside bundle/", n)
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}

// CopyWithEveryInstallMode copies the bundle in src (its manifests and
// metadata) to dst with every install mode of its CSV supported: a bundle
// the validators must refuse, since lbstack's BGPPeer CRD has a conversion
// webhook, which OLM allows only with AllNamespaces. The tests of both
// validators (operator-framework/api's and operator-sdk's) use it to show
// that they can fail.
func CopyWithEveryInstallMode(src, dst string) error {
	for _, sub := range []string{"manifests", "metadata"} {
		if err := os.CopyFS(filepath.Join(dst, sub), os.DirFS(filepath.Join(src, sub))); err != nil {
			return err
		}
	}
	path := filepath.Join(dst, "manifests", Package+".clusterserviceversion.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var csv olmv1alpha1.ClusterServiceVersion
	if err := yaml.Unmarshal(data, &csv); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i := range csv.Spec.InstallModes {
		csv.Spec.InstallModes[i].Supported = true
	}
	out, err := yaml.Marshal(csv)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}
