package platform

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestOwnDeployment(t *testing.T) {
	const ns = "metallb-system"
	ctrl := func(kind, name string, uid types.UID) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: ptrTo(true)}}
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lbstack-operator", UID: "d-1"}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lbstack-operator-abc", UID: "rs-1", OwnerReferences: ctrl("Deployment", "lbstack-operator", "d-1")}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "lbstack-operator-abc-xyz", OwnerReferences: ctrl("ReplicaSet", "lbstack-operator-abc", "rs-1")}}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"}}
	orphanRS := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan", UID: "rs-2"}}
	orphanPod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan-pod", OwnerReferences: ctrl("ReplicaSet", "orphan", "rs-2")}}
	staleRS := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stale", UID: "rs-3", OwnerReferences: ctrl("Deployment", "lbstack-operator", "d-old")}}
	stalePod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "stale-pod", OwnerReferences: ctrl("ReplicaSet", "stale", "rs-3")}}
	s := runtime.NewScheme()
	_ = corev1.AddToScheme(s)
	_ = appsv1.AddToScheme(s)
	objs := []client.Object{deploy, rs, pod, bare, orphanRS, orphanPod, staleRS, stalePod}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	for _, tc := range []struct {
		pod, wantErr string
	}{
		{pod: pod.Name},
		{pod: "", wantErr: "POD_NAME is not set"},
		{pod: "missing", wantErr: `pod metallb-system/missing: pods "missing" not found`},
		{pod: "bare", wantErr: "not controlled by a ReplicaSet"},
		{pod: "orphan-pod", wantErr: "ReplicaSet metallb-system/orphan: not controlled by a Deployment"},
		{pod: "stale-pod", wantErr: "replaced since the ReplicaSet was made"},
	} {
		t.Run(tc.pod, func(t *testing.T) {
			ref, err := OwnDeployment(context.Background(), c, ns, tc.pod)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.Kind != "Deployment" || ref.Name != "lbstack-operator" || ref.UID != "d-1" || ref.Controller == nil || !*ref.Controller || ref.BlockOwnerDeletion != nil {
				t.Errorf("owner %+v", ref)
			}
		})
	}
}
