// Package finding is the shape of what lbstack's consistency checks
// report (symmetric routing, the Calico announcement mode): a graded
// finding naming the objects involved and the field, with a message that
// says what to do. The checks keep their own ids and kinds; events,
// conditions, admission warnings and must-gather print them alike.
package finding

import "fmt"

// Severity grades a Finding.
type Severity string

const (
	// Error: the configuration does not work as written.
	Error Severity = "Error"
	// Warning: it works, but is fragile, ignored in part or unexpected.
	Warning Severity = "Warning"
	// Unknown: the check could not be made; the message says what is missing.
	Unknown Severity = "Unknown"
)

// ObjectRef names one object. Namespace is empty for cluster-scoped
// objects. Kind is lower-case, like kubectl's resource names, with its
// group when another project's kind has the same name.
type ObjectRef struct{ Kind, Namespace, Name string }

// String returns the reference as messages print it:
// `bgppeer "metallb-system/frrviavrf"`,
// `bgpconfiguration.crd.projectcalico.org "default"`.
func (r ObjectRef) String() string {
	switch {
	case r.Name == "":
		return r.Kind
	case r.Namespace == "":
		return fmt.Sprintf("%s %q", r.Kind, r.Name)
	default:
		return fmt.Sprintf("%s %q", r.Kind, r.Namespace+"/"+r.Name)
	}
}

// Finding is one inconsistency (or one thing that could not be checked).
type Finding struct {
	// Check is the stable CamelCase id of the check.
	Check string
	// Severity grades the finding.
	Severity Severity
	// Objects are the objects involved, the one to change first.
	Objects []ObjectRef
	// Field is the field (of Objects[0], unless the message says otherwise)
	// the finding is about.
	Field string
	// Message names the objects and the field, says what is inconsistent
	// and what to do.
	Message string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s", f.Severity, f.Check, f.Message)
}
