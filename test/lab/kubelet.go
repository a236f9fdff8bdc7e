package lab

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// K8sVersion is the Kubernetes release the lab's control plane is built
// from; the kubelet reports it as its own version.
const K8sVersion = "v1.34.4"

// Timings of the lab kubelet. Heartbeats follow the real kubelet's
// defaults; crash back-off starts at 1 s and stops growing at 60 s (the
// real kubelet's 10 s start would make every crash test wait).
const (
	leaseDuration     = 40 * time.Second
	heartbeatInterval = 10 * time.Second
	backoffInitial    = 1 * time.Second
	backoffMax        = 60 * time.Second
	// A container that ran this long without crashing starts its
	// back-off afresh.
	backoffReset = 10 * time.Minute
	// resyncInterval re-reads secrets and config maps into volumes. A
	// real kubelet takes up to a minute or so; the lab is quicker, so a
	// certificate a component writes into its own secret (webhook
	// bootstrap) reaches it in seconds.
	resyncInterval = 10 * time.Second
)

// kubelet is the lab kubelet: one process serving every lab node, each with
// its own node identity (system:node:<name>).
type kubelet struct {
	st    *State
	log   *log.Logger
	exe   string
	ctx   context.Context
	nodes []*node
}

// RunKubelet runs the lab kubelet for the lab in stateDir until ctx ends,
// then stops every container it started.
func RunKubelet(ctx context.Context, stateDir string) error {
	st, err := LoadState(stateDir)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("kubelet: own executable: %w", err)
	}
	k := &kubelet{st: st, log: log.New(os.Stdout, "", log.LstdFlags|log.Lmicroseconds), exe: exe, ctx: ctx}
	// Containers of a previous kubelet (killed, or replaced by a new
	// build) are stopped: this kubelet starts them afresh, as a real one
	// does after its runtime lost them.
	if err := stopRecordedContainers(st.containerRunDir()); err != nil {
		return err
	}
	// So are the pod namespaces it made; pods that still exist get new ones.
	names, err := LabNetns()
	if err != nil {
		return err
	}
	for _, ns := range names {
		if strings.HasPrefix(ns, NetnsPrefix+"pod-") {
			if err := deletePodNetns(ctx, ns); err != nil {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, st.Nodes)
	for i := 1; i <= st.Nodes; i++ {
		n, err := k.newNode(i)
		if err != nil {
			return err
		}
		k.nodes = append(k.nodes, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("node %s: %w", n.name, err)
			}
		}()
	}
	k.log.Printf("lab kubelet serving %d nodes (pid %d)", st.Nodes, os.Getpid())
	select {
	case <-ctx.Done():
	case err = <-errc:
		k.log.Printf("stopping: %v", err)
	}
	wg.Wait()
	k.log.Printf("lab kubelet stopped")
	return err
}

// stopRecordedContainers stops container processes recorded in dir (by
// PID and start time) and forgets them.
func stopRecordedContainers(dir string) error {
	procs, err := readProcs(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range procs {
		if err := p.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
		_ = os.Remove(filepath.Join(dir, p.Name+".pid"))
	}
	return errors.Join(errs...)
}

// node is one lab node as served by the kubelet.
type node struct {
	k       *kubelet
	index   int
	name    string
	cs      kubernetes.Interface
	rec     record.EventRecorder
	podCIDR netip.Prefix

	mu   sync.Mutex
	pods map[types.UID]*podWorker
	ips  map[netip.Addr]types.UID
}

func (k *kubelet) newNode(i int) (*node, error) {
	name := NodeName(i)
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(k.st.pkiDir(), kubeletKubeconfig(name)))
	if err != nil {
		return nil, fmt.Errorf("kubelet %s: kubeconfig: %w", name, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "lbstack-lab-kubelet/" + name
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	b := record.NewBroadcaster(record.WithContext(k.ctx))
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	return &node{
		k: k, index: i, name: name, cs: cs,
		rec:     b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: name}),
		podCIDR: netip.MustParsePrefix(NodePodCIDR(i)),
		pods:    map[types.UID]*podWorker{},
		ips:     map[netip.Addr]types.UID{},
	}, nil
}

func (n *node) logf(format string, a ...any) {
	n.k.log.Printf(n.name+": "+format, a...)
}

func (n *node) run(ctx context.Context) error {
	// The kubelet API first: the Node it registers points the API
	// server at it.
	apiCtx, stopAPI := context.WithCancel(ctx)
	apiDone := make(chan struct{})
	go func() { defer close(apiDone); n.serveAPI(apiCtx) }()
	defer func() { stopAPI(); <-apiDone }()
	if err := n.register(ctx); err != nil {
		return err
	}
	go n.heartbeat(ctx)

	// The Node authorizer only lets a node list the pods bound to it, by
	// this very field selector.
	f := informers.NewSharedInformerFactoryWithOptions(n.cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + n.name
	}))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.podChanged(obj) },
		UpdateFunc: func(_, obj any) { n.podChanged(obj) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				n.podGone(pod.UID)
			}
		},
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	<-ctx.Done()
	f.Shutdown()
	// Stop every container before returning: nothing outlives the kubelet.
	n.mu.Lock()
	workers := make([]*podWorker, 0, len(n.pods))
	for _, w := range n.pods {
		workers = append(workers, w)
	}
	n.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); <-w.done }()
	}
	wg.Wait()
	return nil
}

func (n *node) podChanged(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	n.mu.Lock()
	w := n.pods[pod.UID]
	if w == nil {
		w = newPodWorker(n, pod)
		n.pods[pod.UID] = w
		go func() {
			w.run(n.k.ctx)
			n.mu.Lock()
			delete(n.pods, pod.UID)
			n.mu.Unlock()
		}()
	}
	n.mu.Unlock()
	w.update(pod)
}

func (n *node) podGone(uid types.UID) {
	n.mu.Lock()
	w := n.pods[uid]
	n.mu.Unlock()
	if w != nil {
		w.markGone()
	}
}

// allocIP gives a pod an address of the node's pod range; prefer is the
// address the pod already has (after a kubelet restart), kept if free.
func (n *node) allocIP(uid types.UID, prefer string) (netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if a, err := netip.ParseAddr(prefer); err == nil && n.podCIDR.Contains(a) {
		if owner, taken := n.ips[a]; !taken || owner == uid {
			n.ips[a] = uid
			return a, nil
		}
	}
	// .0 is the network, .1 is left for a gateway as on a CNI bridge.
	a := n.podCIDR.Addr().Next().Next()
	for ; n.podCIDR.Contains(a); a = a.Next() {
		if _, taken := n.ips[a]; !taken && a != lastAddr(n.podCIDR) {
			n.ips[a] = uid
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("node %s: pod range %s exhausted", n.name, n.podCIDR)
}

func (n *node) releaseIP(a netip.Addr, uid types.UID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ips[a] == uid {
		delete(n.ips, a)
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// register creates (or refreshes) the Node object as the node itself.
func (n *node) register(ctx context.Context) error {
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				corev1.LabelHostname:   n.name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: runtime.GOARCH,
				// Labels outside kubernetes.io may be set by a kubelet
				// (NodeRestriction): this one lets tests select lab nodes.
				"lab.lbstack.io/node": "true",
			},
		},
		Spec: corev1.NodeSpec{
			// Fixed per node so routes can be static (see addr.go).
			PodCIDR:  n.podCIDR.String(),
			PodCIDRs: []string{n.podCIDR.String()},
		},
		Status: n.status(nil),
	}
	var got *corev1.Node
	var err error
	for attempt := 0; ; attempt++ {
		got, err = n.cs.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
		if err == nil || apierrors.IsAlreadyExists(err) || attempt > 50 || ctx.Err() != nil {
			break
		}
		// Right after the API server starts, the Node authorizer's
		// graph may not be ready yet.
		time.Sleep(200 * time.Millisecond)
	}
	if apierrors.IsAlreadyExists(err) {
		got, err = n.cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node: %w", err)
		}
		for k, v := range want.Labels {
			if got.Labels == nil {
				got.Labels = map[string]string{}
			}
			got.Labels[k] = v
		}
		if got, err = n.cs.CoreV1().Nodes().Update(ctx, got, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update node: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("register node: %w", err)
	}
	got.Status = n.status(got.Status.Conditions)
	if _, err := n.cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("node status: %w", err)
	}
	n.logf("registered (pod range %s)", n.podCIDR)
	return nil
}

// status is the node's status as the kubelet reports it: Ready, with the
// node's lab addresses and a fixed capacity.
func (n *node) status(old []corev1.NodeCondition) corev1.NodeStatus {
	now := metav1.Now().Rfc3339Copy()
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("4"),
		corev1.ResourceMemory:           resource.MustParse("8Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
		for _, o := range old {
			if o.Type == t && o.Status == s {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		return c
	}
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "lab node"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "lab node"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "lab node"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "lab kubelet is posting ready status"),
		},
		// Where the API server reaches this node's kubelet API (logs,
		// exec): kubelet_server.go.
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: KubeletPort}},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: NodeAddr(n.index)},
			{Type: corev1.NodeInternalIP, Address: NodeAddr6(n.index)},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          K8sVersion,
			OperatingSystem:         "linux",
			Architecture:            runtime.GOARCH,
			ContainerRuntimeVersion: "lbstack-lab://1",
			OSImage:                 "lbstack lab node (network namespace " + n.name + ")",
			KernelVersion:           kernelRelease(),
		},
	}
}

// heartbeat renews the node's Lease and refreshes its status, as the
// kubelet's node-status and lease controllers do.
func (n *node) heartbeat(ctx context.Context) {
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		if err := n.renewLease(ctx); err != nil && ctx.Err() == nil {
			n.logf("lease: %v", err)
		}
		if err := n.updateStatus(ctx); err != nil && ctx.Err() == nil {
			n.logf("node status: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *node) renewLease(ctx context.Context) error {
	leases := n.cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NowMicro()
	l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		nodeObj, err := n.cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name: n.name, Namespace: corev1.NamespaceNodeLease,
				// Owned by the Node, so deleting the Node deletes it.
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.name, UID: nodeObj.UID}},
			},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(n.name),
				LeaseDurationSeconds: ptr.To(int32(leaseDuration.Seconds())),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	l.Spec.HolderIdentity = ptr.To(n.name)
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

func (n *node) updateStatus(ctx context.Context) error {
	got, err := n.cs.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	got.Status = n.status(got.Status.Conditions)
	_, err = n.cs.CoreV1().Nodes().UpdateStatus(ctx, got, metav1.UpdateOptions{})
	return err
}

func kernelRelease() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return string(trimNL(data))
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
