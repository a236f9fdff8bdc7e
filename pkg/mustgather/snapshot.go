package mustgather

import (
	"encoding/json"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lbstack/lbstack/pkg/bgp/frr"
	"github.com/lbstack/lbstack/pkg/calico"
	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/pkg/symrouting"
)

// snapshot is what the run read, kept for summary.txt.
type snapshot struct {
	namespace string

	mu      sync.Mutex
	objects map[string][]unstructured.Unstructured // "group/plural"

	csvs, subscriptions     []unstructured.Unstructured
	deployments, daemonsets []unstructured.Unstructured
	pods                    []corev1.Pod
	services                []corev1.Service
	serviceEvents           map[string][]corev1.Event
	namespaces              []corev1.Namespace
	nodes                   []corev1.Node
	// secrets are the stack namespace's Secrets, for Build only: never
	// written anywhere.
	secrets []corev1.Secret

	// symChecked says the symmetric-routing checks ran; symFindings are
	// their findings.
	symChecked  bool
	symFindings []symrouting.Finding
	// calicoChecked says the Calico mode's checks ran; calicoFindings are
	// their findings.
	calicoChecked  bool
	calicoFindings []calico.Finding

	speakerState   map[string]*speaker.DebugState // by node
	reloaderStatus map[string]*frr.StatusDoc      // by node
}

func (s *snapshot) add(group, plural string, items []unstructured.Unstructured) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objects == nil {
		s.objects = map[string][]unstructured.Unstructured{}
	}
	s.objects[group+"/"+plural] = items
}

func (s *snapshot) get(group, plural string) []unstructured.Unstructured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[group+"/"+plural]
}

func (s *snapshot) setSpeakerState(node string, st *speaker.DebugState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.speakerState == nil {
		s.speakerState = map[string]*speaker.DebugState{}
	}
	s.speakerState[node] = st
}

func (s *snapshot) setReloaderStatus(node string, data []byte) {
	var st frr.StatusDoc
	if json.Unmarshal(data, &st) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reloaderStatus == nil {
		s.reloaderStatus = map[string]*frr.StatusDoc{}
	}
	s.reloaderStatus[node] = &st
}

// typed converts unstructured objects into T; objects that do not convert
// are skipped (they were written as they are).
func typed[T any](items []unstructured.Unstructured) []T {
	out := make([]T, 0, len(items))
	for i := range items {
		var v T
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(items[i].Object, &v); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// workloads converts the dumped Deployments and DaemonSets.
func (s *snapshot) workloads() ([]appsv1.Deployment, []appsv1.DaemonSet) {
	return typed[appsv1.Deployment](s.deployments), typed[appsv1.DaemonSet](s.daemonsets)
}

func (s *snapshot) setServiceEvents(key string, evs []corev1.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serviceEvents == nil {
		s.serviceEvents = map[string][]corev1.Event{}
	}
	s.serviceEvents[key] = evs
}
