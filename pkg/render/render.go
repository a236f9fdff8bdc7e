// Package render executes the bindata templates (text/template, missingkey=error)
// with a typed Params struct into unstructured objects. No Helm, no sprig, no
// untyped value maps: everything a template can read is a field of Params.
package render

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Labels every rendered object carries, so the operator can find (prune,
// clean up) what it made.
const (
	// ManagedByLabel marks objects the operator owns.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of ManagedByLabel; it is also the
	// server-side apply field manager.
	ManagedByValue = "lbstack-operator"
	// OwnerLabel names the MetalLB object (<namespace>.<name>) an object
	// was rendered for; cluster-scoped objects are deleted by it.
	OwnerLabel = "lbstack.metallb.io/owner"
	// PartOfLabel groups the stack's objects.
	PartOfLabel = "app.kubernetes.io/part-of"
)

// Params is everything a template may read.
type Params struct {
	// Namespace of the stack (the MetalLB object's namespace).
	Namespace string
	// OwnerName is the MetalLB object's name.
	OwnerName string
	// Images of the components.
	Images Images
	// LogLevel: all|debug|info|warn|error|none.
	LogLevel string
	// LoadBalancerClass served by the stack; empty serves class-less Services.
	LoadBalancerClass string
	// BGPBackend: native, frr or calico (no BGP sessions in the speakers,
	// no FRR sidecar).
	BGPBackend string
	// OpenShift renders the SCC bindings and leaves UIDs to the platform.
	OpenShift bool
	// ServiceMonitors renders Prometheus Operator ServiceMonitors (and the
	// metrics Services they select); only when the CRD is served.
	ServiceMonitors bool
	// MemberlistSecretKey is the memberlist encryption key (base64 text as
	// MetalLB's speakers read it); kept stable across reconciles.
	MemberlistSecretKey string
	// Controller and Speaker tune the two workloads.
	Controller Component
	Speaker    Component
}

// Images are the container images of the stack.
type Images struct {
	Controller, Speaker, FRR string
}

// Component tunes the pods of one workload.
type Component struct {
	NodeSelector      map[string]string
	Tolerations       []corev1.Toleration
	PriorityClassName string
	RuntimeClassName  string
	Affinity          *corev1.Affinity
	Annotations       map[string]string
	Resources         *corev1.ResourceRequirements
}

// Companion is the image published beside image under the repository
// name image's + "-" + name, with the same tag or digest:
// quay.io/lbstack/lbstack:v1 → quay.io/lbstack/lbstack-frr:v1. lbstack
// publishes its FRR image (the Dockerfile's frr target) and its
// must-gather image so, and derives their names from its own.
func Companion(image, name string) string {
	repo, ref := image, ""
	if i := strings.Index(image, "@"); i >= 0 {
		repo, ref = image[:i], image[i:]
	} else if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo, ref = image[:i], image[i:]
	}
	return repo + "-" + name + ref
}

// FRR reports whether the FRR sidecar layout is rendered.
func (p Params) FRR() bool { return p.BGPBackend == "frr" }

// OwnerLabelValue is the value of OwnerLabel for these parameters.
func (p Params) OwnerLabelValue() string { return OwnerLabelValue(p.Namespace, p.OwnerName) }

// OwnerLabelValue is the OwnerLabel value for a MetalLB object.
func OwnerLabelValue(namespace, name string) string { return namespace + "." + name }

func (p Params) validate() error {
	var missing []string
	for name, v := range map[string]string{
		"Namespace": p.Namespace, "OwnerName": p.OwnerName, "Images.Controller": p.Images.Controller,
		"Images.Speaker": p.Images.Speaker, "LogLevel": p.LogLevel, "MemberlistSecretKey": p.MemberlistSecretKey,
	} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if p.FRR() && p.Images.FRR == "" {
		missing = append(missing, "Images.FRR")
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("render parameters missing: %s", strings.Join(missing, ", "))
	}
	switch p.BGPBackend {
	case "native", "frr", "calico":
	default:
		return fmt.Errorf("render: bgpBackend %q: want native, frr or calico", p.BGPBackend)
	}
	return nil
}

// funcs are the only helpers templates get.
var funcs = template.FuncMap{
	// yaml renders a value (through its JSON tags) as YAML, without the
	// trailing newline.
	"yaml": func(v any) (string, error) {
		b, err := yaml.Marshal(v)
		if err != nil {
			return "", err
		}
		return strings.TrimSuffix(string(b), "\n"), nil
	},
	// indent prefixes every line with n spaces.
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
	},
	// quote renders a string as a double-quoted YAML (JSON) scalar.
	"quote": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
	"b64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
}

// Render executes every *.yaml template under the directories of fsys
// (sorted by path) and returns the objects, in template order. Documents
// that render empty (a conditional that is off) are skipped. Every object
// gets the managed-by, part-of and owner labels.
func Render(fsys fs.FS, p Params) ([]*unstructured.Unstructured, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && path.Ext(p) == ".yaml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []*unstructured.Unstructured
	for _, f := range files {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		tmpl, err := template.New(f).Option("missingkey=error").Funcs(funcs).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", f, err)
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, p); err != nil {
			return nil, fmt.Errorf("template %s: %w", f, err)
		}
		objs, err := decode(buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("template %s rendered invalid YAML: %w\n%s", f, err, buf.String())
		}
		for _, o := range objs {
			if o.GetKind() == "" || o.GetAPIVersion() == "" || o.GetName() == "" {
				return nil, fmt.Errorf("template %s rendered an object without apiVersion, kind or name", f)
			}
			labels := o.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			labels[ManagedByLabel] = ManagedByValue
			labels[PartOfLabel] = "lbstack"
			labels[OwnerLabel] = p.OwnerLabelValue()
			o.SetLabels(labels)
			out = append(out, o)
		}
	}
	return out, nil
}

func decode(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue
		}
		// UnmarshalJSON keeps integers as int64, as the API machinery expects.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
}

// ToYAML renders objects as one multi-document YAML stream (golden files,
// debugging).
func ToYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		buf.WriteString("---\n")
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
