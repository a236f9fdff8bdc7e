package webhook

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lbstack/lbstack/api/v1beta1"
)

// metalLBHandler admits the MetalLB object: one per cluster, in the
// operator's namespace, with a spec whose every value can be rendered into
// the stack's workloads as what it claims to be.
type metalLBHandler struct {
	v       *Validator
	decoder admission.Decoder
}

func (h *metalLBHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	var ml v1beta1.MetalLB
	if err := h.decoder.Decode(req, &ml); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("metallb %s/%s: %w", req.Namespace, req.Name, err))
	}
	ns := ml.Namespace
	if ns == "" {
		ns = req.Namespace
	}
	ref := fmt.Sprintf("metallb %s/%s", ns, ml.Name)
	if ns != h.v.Namespace {
		return admission.Denied(fmt.Sprintf("%s: metadata.namespace: the MetalLB object must be created in the operator's namespace %q", ref, h.v.Namespace))
	}
	switch ml.Spec.BGPType {
	case v1beta1.BGPTypeFRRK8s, v1beta1.BGPTypeFRRK8sExternal:
		return admission.Denied(fmt.Sprintf("%s: spec.bgpBackend: %q is not supported by lbstack; use \"native\" (embedded GoBGP), \"frr\" (FRR sidecar, needed for BFD and VRFs) or \"calico\" (Calico's nodes announce)", ref, ml.Spec.BGPType))
	}
	if errs := ValidateMetalLBSpec(&ml.Spec); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return admission.Denied(ref + ": " + strings.Join(msgs, "; "))
	}
	if req.Operation == admissionv1.Create {
		var all v1beta1.MetalLBList
		if err := h.v.Reader.List(ctx, &all); err != nil {
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: listing MetalLB objects: %w", ref, err))
		}
		var others []string
		for _, o := range all.Items {
			if o.Namespace != ns || o.Name != ml.Name {
				others = append(others, o.Namespace+"/"+o.Name)
			}
		}
		sort.Strings(others)
		if len(others) > 0 {
			return admission.Denied(fmt.Sprintf("%s: only one MetalLB object may exist per cluster and %s already does; edit it instead", ref, strings.Join(others, ", ")))
		}
	}
	if (req.DryRun == nil || !*req.DryRun) && ml.DeletionTimestamp == nil {
		// Its spec.bgpBackend decides the peer rules: the peers of the
		// same apply must be checked against it, before the watch shows it.
		// Not an object on its way out: the operator's finalizer removal
		// may be refused by the API server as the object goes, and must
		// not leave it in the view.
		w := h.v.view()
		w.mu.Lock()
		w.admit(kindMetalLB, &ml, ml.GetResourceVersion())
		w.mu.Unlock()
	}
	return admission.Allowed("")
}

// ValidateMetalLBSpec checks every value of a MetalLB spec that ends up in
// the rendered workloads against what Kubernetes accepts there, so that a
// bad value is refused naming its field instead of failing (or, worse,
// meaning something else) in the DaemonSet or Deployment: the
// loadBalancerClass is a Service's spec.loadBalancerClass (a qualified
// name), node selectors are labels, annotations are annotations, priority
// and runtime class names are object names, tolerations are tolerations.
// The CRD's schema checks some of these too; this is the complete check.
func ValidateMetalLBSpec(s *v1beta1.MetalLBSpec) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if c := s.LoadBalancerClass; c != "" {
		for _, msg := range validation.IsQualifiedName(c) {
			errs = append(errs, field.Invalid(spec.Child("loadBalancerClass"), c, msg))
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(s.NodeSelector, spec.Child("nodeSelector"))...)
	errs = append(errs, metav1validation.ValidateLabels(s.ControllerNodeSelector, spec.Child("controllerNodeSelector"))...)
	errs = append(errs, validateTolerations(s.SpeakerTolerations, spec.Child("speakerTolerations"))...)
	errs = append(errs, validateTolerations(s.ControllerTolerations, spec.Child("controllerTolerations"))...)
	errs = append(errs, validateComponentConfig(s.SpeakerConfig, spec.Child("speakerConfig"))...)
	errs = append(errs, validateComponentConfig(s.ControllerConfig, spec.Child("controllerConfig"))...)
	return errs
}

func validateComponentConfig(c *v1beta1.Config, path *field.Path) field.ErrorList {
	if c == nil {
		return nil
	}
	var errs field.ErrorList
	for name, v := range map[string]string{"priorityClassName": c.PriorityClassName, "runtimeClassName": c.RuntimeClassName} {
		if v == "" {
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(v) {
			errs = append(errs, field.Invalid(path.Child(name), v, msg))
		}
	}
	errs = append(errs, apivalidation.ValidateAnnotations(c.Annotations, path.Child("annotations"))...)
	sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// validateTolerations follows the rules of a pod's spec.tolerations.
func validateTolerations(tols []corev1.Toleration, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, t := range tols {
		p := path.Index(i)
		if t.Key != "" {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, p.Child("key"))...)
		}
		switch t.Operator {
		case corev1.TolerationOpEqual, "":
			for _, msg := range validation.IsValidLabelValue(t.Value) {
				errs = append(errs, field.Invalid(p.Child("value"), t.Value, msg))
			}
		case corev1.TolerationOpExists:
			if t.Value != "" {
				errs = append(errs, field.Invalid(p.Child("value"), t.Value, "must be empty when operator is Exists"))
			}
		default:
			errs = append(errs, field.NotSupported(p.Child("operator"), t.Operator, []string{string(corev1.TolerationOpEqual), string(corev1.TolerationOpExists)}))
		}
		if t.Key == "" && t.Operator != corev1.TolerationOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), t.Operator, "operator must be Exists when key is empty (to tolerate every taint)"))
		}
		switch t.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			errs = append(errs, field.NotSupported(p.Child("effect"), t.Effect, []string{
				string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule), string(corev1.TaintEffectNoExecute)}))
		}
		if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
			errs = append(errs, field.Invalid(p.Child("effect"), t.Effect, "tolerationSeconds applies only to the NoExecute effect"))
		}
	}
	return errs
}
