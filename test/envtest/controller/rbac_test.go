package controller_test

import (
	"context"
	"fmt"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	assigner "github.com/lbstack/lbstack/pkg/assigner"
	"github.com/lbstack/lbstack/pkg/configstate"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/test/envtest"
)

// controllerSA is the controller's service account as the operator renders it.
const controllerSA = "lbstack-controller"

// installControllerRBAC creates the controller's ServiceAccount, Roles and
// bindings exactly as the operator renders them, and returns a rest.Config
// that acts as that service account.
func installControllerRBAC(t *testing.T) *rest.Config {
	t.Helper()
	return envtest.As(restCfg, envtest.RenderedRBAC(t, k8s, controllerSA))
}

// allowed asks the API server whether the controller's service account
// may do verb on resource (subresource) in namespace ns.
func allowed(t *testing.T, verb, resource, subresource, ns string) bool {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + stackNS + ":" + controllerSA,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + stackNS, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Resource: resource, Subresource: subresource, Namespace: ns},
	}}
	if err := k8s.Create(context.Background(), sar); err != nil {
		t.Fatal(err)
	}
	return sar.Status.Allowed
}

// TestControllerRunsWithItsRenderedRBAC runs the controller as its own
// service account with exactly the RBAC the operator renders: it assigns,
// annotates, reports and releases, and it cannot write any Service's spec
// or metadata outside the status subresource (issue 17: the controller
// could update and patch every Service in the cluster).
func TestControllerRunsWithItsRenderedRBAC(t *testing.T) {
	cleanConfig(t)
	cfg := installControllerRBAC(t)
	for _, verb := range []string{"update", "patch", "create", "delete"} {
		if allowed(t, verb, "services", "", "default") {
			t.Errorf("the controller may %s Services", verb)
		}
	}
	if !allowed(t, "patch", "services", "status", "default") {
		t.Error("the controller may not patch Services' status")
	}

	ns := newNamespace(t, nil)
	startControllerAs(t, cfg, assigner.Options{})
	create(t, mkPool("rbac", "203.0.113.64/30"))
	create(t, mkSvc(ns, "web"))
	svc := waitIngress(t, ns, "web", "rbac", "203.0.113.64")
	waitEvent(t, ns, "web", assigner.ReasonIPAllocated)

	// No longer a LoadBalancer: released, annotation removed, through the
	// status subresource.
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.Ports[0].NodePort = 0
	if err := k8s.Update(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, func() error {
		s := getSvc(t, ns, "web")
		if _, ok := s.Annotations[lbservice.AnnotationIPAllocatedFromPool]; ok {
			return fmt.Errorf("pool annotation still there: %v", s.Annotations)
		}
		return nil
	})
	waitEvent(t, ns, "web", assigner.ReasonClearAssignment)

	eventually(t, waitTimeout, func() error {
		cs := configurationState(t)
		if cs == nil || !meta.IsStatusConditionTrue(cs.Status.Conditions, configstate.ConditionValid) {
			return fmt.Errorf("ConfigurationState %+v", cs)
		}
		var pool v1beta1.IPAddressPool
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: stackNS, Name: "rbac"}, &pool); err != nil {
			return err
		}
		if pool.Status.AvailableIPv4 != 4 {
			return fmt.Errorf("pool status %+v", pool.Status)
		}
		return nil
	})
}
