package legacyconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// YAML renders the objects as one multi-document YAML stream, ready for
// `kubectl apply -f`: a header comment naming the source and listing the
// warnings about the input as a whole, then one document per object, each
// preceded by the warnings about it as comments. Objects carry apiVersion,
// kind and namespace, and no status or creationTimestamp.
func (r *Result) YAML() ([]byte, error) {
	var b bytes.Buffer
	if err := r.WriteYAML(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteYAML writes what YAML returns to w.
func (r *Result) WriteYAML(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# metallb.io objects converted by `lbstack config convert` from %s.\n", oneLine(r.From))
	byObject := map[[2]string][]string{}
	for _, wn := range r.Warnings {
		if wn.Kind == "" {
			fmt.Fprintf(&b, "# warning: %s\n", oneLine(wn.Message))
			continue
		}
		k := [2]string{wn.Kind, wn.Name}
		byObject[k] = append(byObject[k], wn.Message)
	}
	objs := r.Objects()
	if len(objs) == 0 {
		b.WriteString("# (no objects)\n")
	}
	for _, o := range objs {
		body, err := MarshalObject(o)
		if err != nil {
			return err
		}
		b.WriteString("---\n")
		for _, m := range byObject[[2]string{o.GetObjectKind().GroupVersionKind().Kind, o.GetName()}] {
			fmt.Fprintf(&b, "# warning: %s\n", oneLine(m))
		}
		b.Write(body)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// MarshalObject renders one object as YAML without the fields a manifest
// should not carry: status, metadata.creationTimestamp, and an empty
// BGPPeer passwordSecret (a struct that encoding/json cannot omit).
func MarshalObject(o client.Object) ([]byte, error) {
	j, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", o.GetObjectKind().GroupVersionKind().Kind, o.GetName(), err)
	}
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	if spec, ok := m["spec"].(map[string]any); ok {
		if ps, ok := spec["passwordSecret"].(map[string]any); ok && len(ps) == 0 {
			delete(spec, "passwordSecret")
		}
	}
	return yaml.Marshal(m)
}

// oneLine keeps a comment on one line whatever the input held.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}
