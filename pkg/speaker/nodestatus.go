package speaker

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
)

// Labels of the ServiceBGPStatus and ServiceL2Status objects, as MetalLB
// sets them.
const (
	labelStatusNode      = "metallb.io/node"
	labelStatusService   = "metallb.io/service-name"
	labelStatusNamespace = "metallb.io/service-namespace"
)

// nodeStatus writes the per-Service status objects of one node: a
// ServiceBGPStatus per Service announced over BGP, listing the peers whose
// sessions carry it, and a ServiceL2Status per Service this node answers
// for in layer 2, listing the interfaces. Creating or deleting one is this
// node joining or leaving the Service's announcing set, and only then does
// the Service get an event (nodeAssigned / nodeUnassigned): MetalLB emits
// nodeAssigned on every reconcile, which floods busy clusters. The objects
// survive a speaker restart, so a restart that announces the same is
// silent too; an object already as wanted is not written.
type nodeStatus struct {
	client    client.Client
	recorder  record.EventRecorder
	node      string
	namespace string
	// off: write no status object, delete the node's (StatusOff).
	off bool
	// nodeUID, when known, makes the Node the owner of the objects
	// created: deleting the Node deletes them (garbage collector), where
	// its speaker no longer runs to.
	nodeUID types.UID
}

// statusKind is what differs between ServiceBGPStatus and ServiceL2Status.
type statusKind struct {
	kind string
	// prefix of the object names, so the two kinds never share one.
	prefix  string
	newList func() client.ObjectList
	newObj  func() client.Object
	// set makes obj's status say that node announces Service ns/name
	// with detail (peers or interfaces); false when it already did.
	set func(obj client.Object, node, ns, name string, detail []string) bool
	// assigned and unassigned are the messages of the Service's events.
	assigned   func(node string, detail []string) string
	unassigned string
}

var bgpStatus = statusKind{
	kind:    "ServiceBGPStatus",
	newList: func() client.ObjectList { return &v1beta1.ServiceBGPStatusList{} },
	newObj:  func() client.Object { return &v1beta1.ServiceBGPStatus{} },
	set: func(obj client.Object, node, ns, name string, peers []string) bool {
		cur := obj.(*v1beta1.ServiceBGPStatus)
		st := v1beta1.MetalLBServiceBGPStatus{Node: node, ServiceName: name, ServiceNamespace: ns, Peers: peers}
		if cur.Status.Node == st.Node && cur.Status.ServiceName == st.ServiceName && cur.Status.ServiceNamespace == st.ServiceNamespace && slices.Equal(cur.Status.Peers, st.Peers) {
			return false
		}
		cur.Status = st
		return true
	},
	assigned: func(node string, peers []string) string {
		return fmt.Sprintf("announcing from node %q with protocol \"bgp\" to peers %s", node, strings.Join(peers, ", "))
	},
	unassigned: "node %q stopped announcing the service (no eligible advertisement, peer or local endpoint on it)",
}

var l2Status = statusKind{
	kind:    "ServiceL2Status",
	prefix:  "l2-",
	newList: func() client.ObjectList { return &v1beta1.ServiceL2StatusList{} },
	newObj:  func() client.Object { return &v1beta1.ServiceL2Status{} },
	set: func(obj client.Object, node, ns, name string, ifaces []string) bool {
		cur := obj.(*v1beta1.ServiceL2Status)
		st := v1beta1.MetalLBServiceL2Status{Node: node, ServiceName: name, ServiceNamespace: ns}
		for _, i := range ifaces {
			st.Interfaces = append(st.Interfaces, v1beta1.InterfaceInfo{Name: i})
		}
		if cur.Status.Node == st.Node && cur.Status.ServiceName == st.ServiceName && cur.Status.ServiceNamespace == st.ServiceNamespace && slices.Equal(cur.Status.Interfaces, st.Interfaces) {
			return false
		}
		cur.Status = st
		return true
	},
	assigned: func(node string, ifaces []string) string {
		return fmt.Sprintf("announcing from node %q with protocol \"layer2\" on %s", node, strings.Join(ifaces, ", "))
	},
	unassigned: "node %q stopped announcing the service in layer 2 (another node was elected, or none is eligible)",
}

// statusName is the status object name for (node, Service): stable and
// within the name length limit whatever the lengths of the parts.
func statusName(node, ns, name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(node + "/" + ns + "/" + name))
	prefix := node
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return fmt.Sprintf("%s-%x", strings.TrimRight(prefix, ".-"), h.Sum64())
}

// StatusMode says which per-Service status objects the speaker writes.
type StatusMode string

// The status modes (Options.ServiceStatus, env LBSTACK_SERVICE_STATUS).
const (
	// StatusPerNode is MetalLB's: one ServiceBGPStatus per (Service,
	// node announcing it over BGP) and one ServiceL2Status per Service
	// on the node answering for it in layer 2.
	StatusPerNode StatusMode = "per-node"
	// StatusOff writes none, and deletes the node's: for clusters where
	// Services × nodes objects are too many. Events on the Services and
	// ConfigurationState still report.
	StatusOff StatusMode = "off"
)

// statusEnv is the environment variable that sets the status mode when
// Options.ServiceStatus is empty.
const statusEnv = "LBSTACK_SERVICE_STATUS"

// sync makes this node's objects of kind match announced ("namespace/name"
// → peers or interfaces): one per announced Service, none for the others.
// It reads every object of the node (from the cache); syncKeys is the
// same for a few Services.
func (s *nodeStatus) sync(ctx context.Context, kind statusKind, announced map[string][]string, svcByKey func(string) *corev1.Service) error {
	if s.off {
		announced = nil
	}
	list := kind.newList()
	if err := s.client.List(ctx, list, client.InNamespace(s.namespace), client.MatchingLabels{labelStatusNode: s.node}); err != nil {
		return fmt.Errorf("list %s: %w", kind.kind, err)
	}
	items, err := apimeta.ExtractList(list)
	if err != nil {
		return fmt.Errorf("list %s: %w", kind.kind, err)
	}
	byName := map[string]client.Object{}
	for _, it := range items {
		o := it.(client.Object)
		byName[o.GetName()] = o
	}
	var errs []error
	want := map[string]bool{}
	for key, detail := range announced {
		ns, name, _ := strings.Cut(key, "/")
		objName := kind.prefix + statusName(s.node, ns, name)
		want[objName] = true
		errs = append(errs, s.syncOne(ctx, kind, key, detail, true, byName[objName], svcByKey))
	}
	for name, obj := range byName {
		if want[name] {
			continue
		}
		labels := obj.GetLabels()
		errs = append(errs, s.syncOne(ctx, kind, labels[labelStatusNamespace]+"/"+labels[labelStatusService], nil, false, obj, svcByKey))
	}
	return errors.Join(errs...)
}

// syncKeys is sync for the Services keys only: each one's object is read
// (from the cache) and written when it differs from announced.
func (s *nodeStatus) syncKeys(ctx context.Context, kind statusKind, keys []string, announced map[string][]string, svcByKey func(string) *corev1.Service) error {
	if s.off {
		return nil
	}
	var errs []error
	for _, key := range keys {
		ns, name, _ := strings.Cut(key, "/")
		cur := kind.newObj()
		err := s.client.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: kind.prefix + statusName(s.node, ns, name)}, cur)
		switch {
		case apierrors.IsNotFound(err):
			cur = nil
		case err != nil:
			errs = append(errs, fmt.Errorf("get %s of %s: %w", kind.kind, key, err))
			continue
		}
		detail, ok := announced[key]
		errs = append(errs, s.syncOne(ctx, kind, key, detail, ok, cur, svcByKey))
	}
	return errors.Join(errs...)
}

// syncOne makes the object of Service key (cur, nil when there is none)
// say detail when want, and deletes it otherwise, with the Service's
// events.
func (s *nodeStatus) syncOne(ctx context.Context, kind statusKind, key string, detail []string, want bool, cur client.Object, svcByKey func(string) *corev1.Service) error {
	ns, name, _ := strings.Cut(key, "/")
	if !want {
		if cur == nil {
			return nil
		}
		err := s.client.Delete(ctx, cur)
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s: %w", kind.kind, cur.GetName(), err)
		}
		if err != nil || s.off {
			// Already gone: a reconcile before this one deleted it
			// (the cache had not caught up) and said so. Or statuses
			// are off: the node did not stop announcing.
			return nil
		}
		if svc := svcByKey(key); svc != nil {
			s.recorder.Eventf(svc, corev1.EventTypeNormal, "nodeUnassigned", kind.unassigned, s.node)
		}
		return nil
	}
	if cur == nil {
		objName := kind.prefix + statusName(s.node, ns, name)
		cur = kind.newObj()
		cur.SetNamespace(s.namespace)
		cur.SetName(objName)
		cur.SetLabels(map[string]string{labelStatusNode: s.node, labelStatusService: name, labelStatusNamespace: ns})
		if s.nodeUID != "" {
			cur.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: s.node, UID: s.nodeUID}})
		}
		err := s.client.Create(ctx, cur)
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s: %w", kind.kind, objName, err)
		}
		if svc := svcByKey(key); err == nil && svc != nil {
			s.recorder.Event(svc, corev1.EventTypeNormal, "nodeAssigned", kind.assigned(s.node, detail))
		}
	}
	orig := cur.DeepCopyObject().(client.Object)
	if !kind.set(cur, s.node, ns, name, detail) {
		return nil
	}
	if err := s.client.Status().Patch(ctx, cur, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("update %s %s: %w", kind.kind, cur.GetName(), err)
	}
	return nil
}
