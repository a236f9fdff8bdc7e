package speaker

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// StatusSyncer is the per-node status writer, for the status benchmark
// (package speaker_test, which can start an API server).
type StatusSyncer struct{ s nodeStatus }

// NewStatusSyncer is the writer of node's objects in namespace; off is
// StatusOff.
func NewStatusSyncer(c client.Client, rec record.EventRecorder, node string, uid types.UID, namespace string, off bool) *StatusSyncer {
	return &StatusSyncer{nodeStatus{client: c, recorder: rec, node: node, namespace: namespace, off: off, nodeUID: uid}}
}

// SyncBGP is the full sync of the node's ServiceBGPStatus objects.
func (s *StatusSyncer) SyncBGP(ctx context.Context, announced map[string][]string) error {
	return s.s.sync(ctx, bgpStatus, announced, anyService)
}

// SyncBGPKeys is the sync of the objects of keys only.
func (s *StatusSyncer) SyncBGPKeys(ctx context.Context, keys []string, announced map[string][]string) error {
	return s.s.syncKeys(ctx, bgpStatus, keys, announced, anyService)
}

// SyncL2 is the full sync of the node's ServiceL2Status objects.
func (s *StatusSyncer) SyncL2(ctx context.Context, announced map[string][]string) error {
	return s.s.sync(ctx, l2Status, announced, anyService)
}

// anyService stands for every Service, so that events are emitted.
func anyService(key string) *corev1.Service {
	ns, name, _ := strings.Cut(key, "/")
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}
