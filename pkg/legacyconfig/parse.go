package legacyconfig

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	yamlv2 "go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ConfigKey is the ConfigMap data key MetalLB read its configuration from.
const ConfigKey = "config"

// Source is a parsed legacy configuration and where it came from.
type Source struct {
	// Config is the decoded configuration.
	Config Config
	// FromConfigMap is true when the input was a ConfigMap manifest; then
	// ConfigMapNamespace and ConfigMapName name it (either may be empty).
	FromConfigMap      bool
	ConfigMapNamespace string
	ConfigMapName      string
	// Warnings are about the input as a whole (for example ConfigMap keys
	// that are not MetalLB configuration).
	Warnings []Warning
}

// Parse reads MetalLB's legacy configuration: either a v1 ConfigMap
// manifest whose data.config holds it, or the bare configuration text. The
// configuration is decoded strictly, as MetalLB v0.12 did: an unknown or
// repeated field is an error naming it, and so is a value of the wrong type.
// Parse also refuses what cannot be converted without guessing (a pool
// without name or protocol, a bgp-advertisements list in a layer2 pool, a
// BFD profile without name, a timer that is not a duration); everything else
// that MetalLB or admission would refuse is converted as written and
// reported by Convert as a warning.
func Parse(data []byte) (*Source, error) {
	doc, err := singleDocument(data, "the input")
	if err != nil {
		return nil, err
	}
	if doc == nil {
		return nil, errors.New("the input holds no configuration: give a MetalLB ConfigMap manifest or the text of its data.config")
	}
	top, ok := doc.value.(map[any]any)
	if !ok {
		return nil, fmt.Errorf("the input is a YAML %s: give a MetalLB ConfigMap manifest or the text of its data.config (a mapping)", yamlKind(doc.value))
	}
	_, hasKind := top["kind"]
	_, hasAPIVersion := top["apiVersion"]
	if !hasKind && !hasAPIVersion {
		cfg, err := decodeConfig(doc.raw, "")
		if err != nil {
			return nil, err
		}
		src := &Source{Config: *cfg}
		return src, checkStructure(&src.Config)
	}
	return parseConfigMap(doc.raw)
}

func parseConfigMap(raw []byte) (*Source, error) {
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		return nil, fmt.Errorf("reading the ConfigMap manifest: %w", err)
	}
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		return nil, fmt.Errorf("the input is apiVersion %q kind %q: give a v1 ConfigMap (MetalLB's legacy configuration) or the text of its data.config", cm.APIVersion, cm.Kind)
	}
	src := &Source{FromConfigMap: true, ConfigMapNamespace: cm.Namespace, ConfigMapName: cm.Name}
	text, ok := cm.Data[ConfigKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s has no data.%s: MetalLB read its configuration from that key", cmRef(src), ConfigKey)
	}
	var others []string
	for k := range cm.Data {
		if k != ConfigKey {
			others = append(others, "data."+k)
		}
	}
	for k := range cm.BinaryData {
		others = append(others, "binaryData."+k)
	}
	sort.Strings(others)
	for _, k := range others {
		src.Warnings = append(src.Warnings, Warning{Message: fmt.Sprintf(
			"ConfigMap %s: %s is not MetalLB configuration (MetalLB read only data.%s) and is not converted", cmRef(src), k, ConfigKey)})
	}
	cfg, err := decodeConfig([]byte(text), "data."+ConfigKey+": ")
	if err != nil {
		return nil, err
	}
	src.Config = *cfg
	if isEmpty(&src.Config) {
		src.Warnings = append(src.Warnings, Warning{Message: fmt.Sprintf(
			"ConfigMap %s: data.%s is empty: there is nothing to convert", cmRef(src), ConfigKey)})
	}
	return src, checkStructure(&src.Config)
}

func cmRef(src *Source) string {
	ns := src.ConfigMapNamespace
	if ns == "" {
		ns = "<no namespace>"
	}
	return ns + "/" + src.ConfigMapName
}

func isEmpty(c *Config) bool {
	return len(c.Peers) == 0 && len(c.Pools) == 0 && len(c.BFDProfiles) == 0 && len(c.BGPCommunities) == 0
}

type document struct {
	raw   []byte
	value any
}

// singleDocument splits data into YAML documents and returns the only one
// that is not empty (nil when all are). More than one is an error: MetalLB
// read the first and silently ignored the rest, which is not something to
// convert without asking.
func singleDocument(data []byte, what string) (*document, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []document
	for {
		raw, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", what, err)
		}
		var v any
		if err := yamlv2.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("%s is not valid YAML: %s", what, yamlMessage(err))
		}
		if v != nil {
			docs = append(docs, document{raw: raw, value: v})
		}
	}
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
		return &docs[0], nil
	default:
		return nil, fmt.Errorf("%s holds %d YAML documents: give exactly one (MetalLB read only the first and ignored the others)", what, len(docs))
	}
}

func yamlKind(v any) string {
	switch v.(type) {
	case []any:
		return "list"
	case map[any]any:
		return "mapping"
	default:
		return "scalar"
	}
}

// decodeConfig decodes the configuration text strictly, with yaml.v2 as
// MetalLB did, so values mean exactly what they meant to MetalLB (YAML 1.1
// booleans, a number given for a string field kept as written).
func decodeConfig(text []byte, where string) (*Config, error) {
	what := strings.TrimSuffix(where, ": ")
	if what == "" {
		what = "the configuration"
	}
	doc, err := singleDocument(text, what)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	if doc == nil {
		return cfg, nil
	}
	if _, ok := doc.value.(map[any]any); !ok {
		return nil, fmt.Errorf("%sthe configuration is a YAML %s, want a mapping with peers, address-pools, bgp-communities and bfd-profiles", where, yamlKind(doc.value))
	}
	if err := yamlv2.UnmarshalStrict(doc.raw, cfg); err != nil {
		return nil, fmt.Errorf("%s%s", where, yamlMessage(err))
	}
	return cfg, nil
}

var (
	fieldNotFound = regexp.MustCompile(`^(line \d+: )field (.*) not found in type legacyconfig\.(\w+)$`)
	fieldRepeated = regexp.MustCompile(`^(line \d+: )field (.*) already set in type legacyconfig\.(\w+)$`)
	sections      = map[string]string{
		"Config":              "the configuration",
		"Peer":                "a peers entry",
		"NodeSelector":        "a node-selectors entry",
		"SelectorRequirement": "a match-expressions entry",
		"AddressPool":         "an address-pools entry",
		"BGPAdvertisement":    "a bgp-advertisements entry",
		"BFDProfile":          "a bfd-profiles entry",
	}
	sectionTypes = map[string]reflect.Type{
		"Config":              reflect.TypeFor[Config](),
		"Peer":                reflect.TypeFor[Peer](),
		"NodeSelector":        reflect.TypeFor[NodeSelector](),
		"SelectorRequirement": reflect.TypeFor[SelectorRequirement](),
		"AddressPool":         reflect.TypeFor[AddressPool](),
		"BGPAdvertisement":    reflect.TypeFor[BGPAdvertisement](),
		"BFDProfile":          reflect.TypeFor[BFDProfile](),
	}
)

// yamlMessage rewrites yaml.v2's errors for people: an unknown field is
// named with the section it appeared in and the fields that section has.
func yamlMessage(err error) string {
	var te *yamlv2.TypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "yaml: ")
	}
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		if m := fieldRepeated.FindStringSubmatch(e); m != nil {
			msgs = append(msgs, fmt.Sprintf("%sfield %q is repeated in %s", m[1], m[2], sections[m[3]]))
			continue
		}
		m := fieldNotFound.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		line, field, typ := m[1], m[2], m[3]
		msg := fmt.Sprintf("%sunknown field %q in %s (known fields: %s)", line, field, sections[typ], strings.Join(knownFields(sectionTypes[typ]), ", "))
		if typ == "Config" && (field == "data" || field == "metadata" || field == "config") {
			msg += "; a ConfigMap manifest needs apiVersion: v1 and kind: ConfigMap"
		}
		msgs = append(msgs, msg)
	}
	return strings.Join(msgs, "; ")
}

func knownFields(t reflect.Type) []string {
	if t == nil {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		out = append(out, name)
	}
	return out
}

// checkStructure refuses what cannot be converted without guessing.
func checkStructure(c *Config) error {
	var errs []error
	for i, p := range c.Pools {
		where := fmt.Sprintf("address-pools[%d]", i)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("%s: missing name (MetalLB refused a pool without one)", where))
		} else {
			where += fmt.Sprintf(" (%q)", p.Name)
		}
		switch p.Protocol {
		case ProtocolBGP:
		case ProtocolLayer2:
			if len(p.BGPAdvertisements) > 0 {
				errs = append(errs, fmt.Errorf("%s: bgp-advertisements in a layer2 pool (MetalLB refused this; converting it would either drop the advertisements or announce the pool over BGP)", where))
			}
		case "":
			errs = append(errs, fmt.Errorf("%s: missing protocol (bgp or layer2)", where))
		default:
			errs = append(errs, fmt.Errorf("%s: unknown protocol %q (bgp or layer2)", where, p.Protocol))
		}
	}
	for i, b := range c.BFDProfiles {
		if b.Name == "" {
			errs = append(errs, fmt.Errorf("bfd-profiles[%d]: missing name (MetalLB refused a profile without one)", i))
		}
	}
	for i, p := range c.Peers {
		for _, t := range []struct{ field, value string }{{"hold-time", p.HoldTime}, {"keepalive-time", p.KeepaliveTime}} {
			if t.value == "" {
				continue
			}
			if _, err := time.ParseDuration(t.value); err != nil {
				errs = append(errs, fmt.Errorf("peers[%d]: %s %q is not a duration such as 90s or 1m30s", i, t.field, t.value))
			}
		}
	}
	return errors.Join(errs...)
}
