package speaker

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Each event records what the reconcile must do again, and events that
// change nothing the speaker reads (Node heartbeats, Secret metadata) do
// not wake it at all.
func TestChanges(t *testing.T) {
	n := node("n1")
	beat := n.DeepCopy()
	beat.ResourceVersion = "2"
	beat.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	relabelled := n.DeepCopy()
	relabelled.Labels["zone"] = "b"
	excluded := n.DeepCopy()
	excluded.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}}
	moved := n.DeepCopy()
	moved.Status.Addresses = moved.Status.Addresses[:1]
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns}, Data: map[string][]byte{"password": []byte("a")}}
	secMeta := sec.DeepCopy()
	secMeta.Annotations = map[string]string{"x": "y"}
	secData := sec.DeepCopy()
	secData.Data["password"] = []byte("b")
	sl := slice("web")
	relinked := sl.DeepCopy()
	relinked.Labels[discoveryv1.LabelServiceName] = "api"

	var c changes
	tests := []struct {
		name     string
		mark     func(obj, old client.Object) bool
		obj, old client.Object
		want     changeSet
		wake     bool
	}{
		{"node heartbeat", c.nodeChanged, beat, n, changeSet{}, false},
		{"node labels", c.nodeChanged, relabelled, n, changeSet{full: true}, true},
		{"node excluded", c.nodeChanged, excluded, n, changeSet{full: true}, true},
		{"node addresses", c.nodeChanged, moved, n, changeSet{full: true}, true},
		{"node created", c.nodeChanged, n, nil, changeSet{full: true}, true},
		{"secret metadata", c.secretChanged, secMeta, sec, changeSet{}, false},
		{"secret data", c.secretChanged, secData, sec, changeSet{full: true}, true},
		{"pool", c.configChanged, sec, nil, changeSet{full: true}, true},
		{"service", c.serviceChanged, lbSvc("web", ""), nil, changeSet{services: []string{"default/web"}}, true},
		{"slice", c.sliceChanged, sl, nil, changeSet{services: []string{"default/web"}}, true},
		{"slice moved to another Service", c.sliceChanged, relinked, sl, changeSet{services: []string{"default/api", "default/web"}}, true},
		{"slice without a Service", c.sliceChanged, &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "default"}}, nil, changeSet{services: []string{}}, true},
		{"speaker pod", c.l2Changed, &corev1.Pod{}, nil, changeSet{l2: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if wake := tt.mark(tt.obj, tt.old); wake != tt.wake {
				t.Errorf("wakes the reconcile: %v, want %v", wake, tt.wake)
			}
			got := c.take()
			if got.services == nil {
				got.services = []string{}
			}
			if tt.want.services == nil {
				tt.want.services = []string{}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changes %+v, want %+v", got, tt.want)
			}
		})
	}
	if got := indexSliceService(sl); !reflect.DeepEqual(got, []string{"default/web"}) {
		t.Errorf("index %v", got)
	}
}
