package assigner

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configload"
	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// reconcileConfig rebuilds the configuration from the metallb.io objects
// (pkg/config.Build, the rules the webhooks apply), hands a valid one to
// the allocator, and reports the result in the ConfigurationState. An
// invalid configuration is reported and otherwise ignored: the controller
// keeps allocating with the last valid one, as MetalLB does.
func (c *Controller) reconcileConfig(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	res, opts, err := c.load(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	result := config.Build(res, opts)
	if result.Config != nil {
		if err := c.applyConfig(ctx, result.Config); err != nil {
			return reconcile.Result{}, err
		}
	}
	c.mu.RLock()
	serving := c.idx != nil // the current configuration, or the last valid one
	c.mu.RUnlock()
	if serving {
		configLoaded.Set(1)
	}
	if result.Config == nil {
		configStale.Set(1)
		logf.FromContext(ctx).Info("configuration invalid; keeping the last valid one", "errors", config.ProblemList(result.Errors).Error())
	} else {
		configStale.Set(0)
	}
	c.reportRefusedPeers(res.Peers, result)
	c.pools.markAll()
	return reconcile.Result{}, c.writeConfigurationState(ctx, result, serving)
}

// reportRefusedPeers puts a Warning event on each BGPPeer that Build
// refuses while the rest of the configuration is in use (a Secret whose
// value cannot be its password, a field admission would refuse), once
// per new reason. The controller reports it once for the cluster; each
// speaker's ConfigurationState says what its node does about it.
func (c *Controller) reportRefusedPeers(peers []v1beta2.BGPPeer, result config.Result) {
	now := map[string]string{}
	if result.Config != nil {
		for _, p := range result.Errors {
			if p.Object.Kind == config.KindBGPPeer {
				now[p.Object.Name] = strings.TrimPrefix(now[p.Object.Name]+"; "+p.Error(), "; ")
			}
		}
	}
	c.smu.Lock()
	defer c.smu.Unlock()
	for i := range peers {
		p := &peers[i]
		msg, ok := now[p.Name]
		if !ok || c.refusedPeers[p.Name] == msg {
			continue
		}
		what := "its sessions are left out"
		if slices.Contains(result.RetainedPeers, p.Name) {
			what = "the speakers keep its last valid version"
		}
		c.recorder.Eventf(p, corev1.EventTypeWarning, "PeerRefused", "%s; %s, every other session keeps announcing", truncate(msg, 800), what)
	}
	c.refusedPeers = now
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// load reads every object Build needs from the cache. Nodes and Namespaces
// are not read: they only refine checks that concern the speakers (peers
// that may share a node) and the informational MatchedNamespaces; pool
// choice reads namespace labels live.
func (c *Controller) load(ctx context.Context) (config.Resources, config.Options, error) {
	opts := config.Options{Namespace: c.opts.Namespace, BGPBackend: c.opts.BGPBackend}
	res, err := configload.Load(ctx, c.client, configload.Options{Namespace: c.opts.Namespace, L2Advertisements: true})
	if err != nil {
		return res, opts, fmt.Errorf("read configuration: %w", err)
	}
	if opts.BGPBackend == "" {
		if opts.BGPBackend, err = configload.BGPBackend(ctx, c.client, c.opts.Namespace); err != nil {
			return res, opts, fmt.Errorf("read configuration: %w", err)
		}
	}
	return res, opts, nil
}

// applyConfig makes cfg the configuration the allocator works with. The
// first time, every existing assignment is claimed before any Service is
// reconciled. Services are queued when allocation may change for them.
func (c *Controller) applyConfig(ctx context.Context, cfg *config.Config) error {
	x := newPoolIndex(cfg)
	c.mu.Lock()
	old := c.idx
	evicted := c.alloc.SetPools(ipamPools(cfg))
	c.idx = x
	if old == nil {
		if err := c.claimAll(ctx, x); err != nil {
			c.idx = nil
			c.mu.Unlock()
			return err
		}
	}
	c.mu.Unlock()
	if old == nil {
		close(c.ready)
	}
	if old != nil && len(evicted) == 0 && !allocationChanged(old.cfg, cfg) {
		return nil
	}
	if len(evicted) > 0 {
		logf.FromContext(ctx).Info("addresses no longer in any pool", "services", len(evicted))
	}
	return c.enqueueAll(ctx)
}

// claimAll gives every served Service the addresses its status shows, when
// it may keep them, before anything is allocated: a restart (or a new
// leader) never moves an address (claimHeld).
func (c *Controller) claimAll(ctx context.Context, x *poolIndex) error {
	// From the API server, not the cache: a controller that just became
	// leader must see every address its predecessor wrote before it gave
	// the Lease up, or it could hand one out again.
	var list corev1.ServiceList
	if err := c.reader.List(ctx, &list); err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	svcs := make([]*corev1.Service, 0, len(list.Items))
	for i := range list.Items {
		s := &list.Items[i]
		if lbservice.Served(s, c.opts.LBClass) && len(s.Status.LoadBalancer.Ingress) > 0 {
			svcs = append(svcs, s)
		}
	}
	claimed, err := claimHeld(c.alloc, x, svcs, func(ns string) (map[string]string, error) {
		return c.namespaceLabels(ctx, x, ns)
	})
	if err != nil {
		return err
	}
	logf.FromContext(ctx).Info("claimed existing assignments", "services", claimed, "withAddresses", len(svcs))
	return nil
}

// claimHeld gives each of svcs (served, with addresses) the addresses its
// status shows, when it may keep them. Oldest Services first, so that when
// two show the same address without being allowed to share it, the older
// one keeps it. It returns how many were claimed.
func claimHeld(alloc *ipam.Allocator, x *poolIndex, svcs []*corev1.Service, nsLabels func(ns string) (map[string]string, error)) (int, error) {
	slices.SortFunc(svcs, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Time.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	claimed := 0
	for _, s := range svcs {
		in, err := parseIntent(s)
		if err != nil {
			continue
		}
		labels, err := nsLabels(s.Namespace)
		if err != nil {
			return claimed, err
		}
		ch, err := x.choose(&in, labels)
		if err != nil {
			continue
		}
		keep := lbservice.IngressAddrs(s)
		if len(in.IPs) == 0 {
			keep = keepable(keep, &in)
		}
		if len(keep) == 0 {
			continue
		}
		if _, err := x.claim(alloc, &in, ch.Pinned, labels, keep); err == nil {
			claimed++
		}
	}
	return claimed, nil
}

// enqueueAll queues every Service the controller serves, and those it
// served (they carry the pool annotation).
func (c *Controller) enqueueAll(ctx context.Context) error {
	var list corev1.ServiceList
	if err := c.client.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	keys := make([]types.NamespacedName, 0, len(list.Items))
	for i := range list.Items {
		s := &list.Items[i]
		if _, ours := s.Annotations[lbservice.AnnotationIPAllocatedFromPool]; ours || lbservice.Served(s, c.opts.LBClass) {
			keys = append(keys, client.ObjectKeyFromObject(s))
		}
	}
	go c.send(ctx, keys)
	return nil
}

// writeConfigurationState creates or updates the ConfigurationState named
// "controller", writing only when its status changes.
func (c *Controller) writeConfigurationState(ctx context.Context, result config.Result, serving bool) error {
	key := types.NamespacedName{Namespace: c.opts.Namespace, Name: ConfigurationStateName}
	var cs v1beta1.ConfigurationState
	if err := c.reader.Get(ctx, key, &cs); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("read configurationstate %s: %w", key, err)
		}
		cs = v1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		if err := c.client.Create(ctx, &cs); err != nil {
			return fmt.Errorf("create configurationstate %s: %w", key, err)
		}
	}
	status := configurationStatus(cs.Status, result, serving, metav1.Now())
	if equality.Semantic.DeepEqual(cs.Status, status) {
		return nil
	}
	orig := cs.DeepCopy()
	cs.Status = status
	if err := c.client.Status().Patch(ctx, &cs, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("write configurationstate %s status: %w", key, err)
	}
	return nil
}

// Condition types of the controller's ConfigurationState.
const (
	// ConditionValid: the current metallb.io objects form a valid
	// configuration.
	ConditionValid = "Valid"
	// ConditionStale: the controller is not using the current
	// configuration (it is invalid): it keeps the last valid one, or has
	// none yet.
	ConditionStale = "Stale"
	// ConditionWarnings: the configuration has warnings, such as references
	// to objects that do not exist yet.
	ConditionWarnings = "Warnings"
)

// maxListed is how many problems a summary lists.
const maxListed = 10

// configurationStatus is the ConfigurationState status for a Build result.
// serving says whether a valid configuration is in use (the current one,
// or the last valid one when the current one is invalid). Conditions keep
// their transition time while their status does not change.
func configurationStatus(prev v1beta1.ConfigurationStateStatus, result config.Result, serving bool, now metav1.Time) v1beta1.ConfigurationStateStatus {
	st := v1beta1.ConfigurationStateStatus{Conditions: slices.Clone(prev.Conditions)}
	set := func(typ string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, LastTransitionTime: now})
	}
	if result.Config != nil && len(result.Errors) > 0 {
		// Only BGPPeers are refused: addresses are assigned with the
		// current configuration, and the speakers leave those peers out
		// (or keep their last valid version).
		st.Result = v1beta1.ConfigurationInvalid
		set(ConditionValid, false, "PeersRefused", summarize(result.Errors, 100))
		set(ConditionStale, false, "Current", "the controller uses the current configuration; the speakers leave the refused BGPPeers out or keep their last valid version")
		st.ErrorSummary = summarize(result.Errors, maxListed) + fmt.Sprintf(" (bgppeer %s refused; every other object is in use)", strings.Join(result.DisabledPeers, ", "))
	} else if result.Config != nil {
		st.Result = v1beta1.ConfigurationValid
		set(ConditionValid, true, "Valid", "the configuration is valid and in use")
		set(ConditionStale, false, "Current", "the controller uses the current configuration")
		if len(result.Warnings) > 0 {
			st.ErrorSummary = "warnings: " + summarize(result.Warnings, maxListed)
		}
	} else {
		st.Result = v1beta1.ConfigurationInvalid
		set(ConditionValid, false, "Invalid", summarize(result.Errors, 100))
		if serving {
			st.ErrorSummary = summarize(result.Errors, maxListed) + " (the controller keeps using the last valid configuration until this is fixed)"
			set(ConditionStale, true, "LastValidConfigurationInUse", "the current configuration is invalid; addresses are assigned with the last valid configuration")
		} else {
			st.ErrorSummary = summarize(result.Errors, maxListed) + " (there is no valid configuration yet: no address is assigned until this is fixed)"
			set(ConditionStale, true, "NoValidConfiguration", "no valid configuration has been loaded; no address is assigned")
		}
	}
	if len(result.Warnings) > 0 {
		set(ConditionWarnings, true, "Warnings", summarize(result.Warnings, 100))
	} else {
		set(ConditionWarnings, false, "NoWarnings", "")
	}
	return st
}

// summarize joins problems into one line, listing at most max of them.
func summarize(ps []config.Problem, max int) string {
	s := make([]string, 0, min(len(ps), max))
	for i, p := range ps {
		if i == max {
			break
		}
		s = append(s, p.Error())
	}
	out := strings.Join(s, "; ")
	if len(ps) > max {
		out += fmt.Sprintf("; and %d more", len(ps)-max)
	}
	return out
}
