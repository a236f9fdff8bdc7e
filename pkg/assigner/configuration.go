package assigner

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configload"
	"github.com/lbstack/lbstack/pkg/configstate"
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
// reconciled, and every Service and pool status is looked at. After that
// only what the change concerns is (affectedServices): the Services holding
// addresses of a pool whose allocation view changed (added and removed
// pools included), those that lost their addresses, and those waiting for
// one; and the status of the changed pools.
func (c *Controller) applyConfig(ctx context.Context, cfg *config.Config) error {
	x := newPoolIndex(cfg)
	c.mu.Lock()
	old := c.idx
	var (
		changed, evicted []string
		affected         map[string]bool
	)
	if old == nil {
		c.alloc.SetPools(ipamPools(cfg))
	} else {
		changed, affected, evicted = reconfigure(c.alloc, old.cfg, cfg)
	}
	c.idx = x
	c.gen.Add(1) // after this, a failure being recorded is retried (apply)
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
		c.pools.markAll()
		return c.enqueueAll(ctx)
	}
	c.pools.mark(changed...)
	if len(changed) == 0 && len(evicted) == 0 {
		return nil
	}
	if len(evicted) > 0 {
		logf.FromContext(ctx).Info("addresses no longer in any pool", "services", len(evicted))
	}
	logf.FromContext(ctx).V(1).Info("pools changed", "pools", len(changed), "services", len(affected))
	keys := make([]types.NamespacedName, 0, len(affected))
	for _, k := range slices.Sorted(maps.Keys(affected)) {
		ns, name, _ := cutKey(k)
		keys = append(keys, types.NamespacedName{Namespace: ns, Name: name})
	}
	c.retryFailed() // the Services waiting for an address
	go c.send(ctx, keys)
	return nil
}

// reconfigure gives the allocator the pools of cur (it had those of old)
// and returns the pools that changed (changedPools), the Services whose
// decision the change may alter (those holding addresses of a changed pool
// before or after, which includes those that lost their addresses) and
// the Services that lost their addresses. The Services waiting for an
// address are not in affected: the caller retries them too.
func reconfigure(a *ipam.Allocator, old, cur *config.Config) (changed []string, affected map[string]bool, evicted []string) {
	changed = changedPools(old, cur)
	affected = map[string]bool{}
	servicesIn(a, changed, affected) // removed and reshaped pools
	evicted = a.SetPools(ipamPools(cur))
	servicesIn(a, changed, affected) // pools that took addresses over
	for _, k := range evicted {
		affected[k] = true
	}
	return changed, affected, evicted
}

// servicesIn adds to keys the Services holding addresses of the pools.
func servicesIn(a *ipam.Allocator, pools []string, keys map[string]bool) {
	for _, p := range pools {
		for _, k := range a.ServicesIn(p) {
			keys[k] = true
		}
	}
}

// claimAll gives every served Service the addresses its status shows, when
// it may keep them, before anything is allocated: a restart (or a new
// leader) never moves an address (claimHeld).
func (c *Controller) claimAll(ctx context.Context, x *poolIndex) error {
	// From the API server, not the cache: a controller that just became
	// leader must see every address its predecessor wrote before it gave
	// the Lease up, or it could hand one out again. In pages, keeping only
	// what claiming needs: the whole list would double the memory the
	// cache of Services takes, at start.
	var svcs []heldService
	var list corev1.ServiceList
	opts := &client.ListOptions{Limit: claimPage}
	for {
		if err := c.reader.List(ctx, &list, opts); err != nil {
			return fmt.Errorf("list services: %w", err)
		}
		for i := range list.Items {
			s := &list.Items[i]
			if lbservice.Served(s, c.opts.LBClass) && len(s.Status.LoadBalancer.Ingress) > 0 {
				svcs = append(svcs, heldOf(s))
			}
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
		list = corev1.ServiceList{}
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

// claimPage is how many Services a page of claimAll's list holds.
const claimPage = 500

// heldService is what claiming needs of a Service that shows addresses.
type heldService struct {
	created metav1.Time
	name    string
	in      intent
	err     error // from parseIntent: not claimed
	ips     []netip.Addr
}

func heldOf(s *corev1.Service) heldService {
	in, err := parseIntent(s) // in.Key and in.Namespace are set on error too
	return heldService{created: s.CreationTimestamp, name: s.Name, in: in, err: err, ips: lbservice.IngressAddrs(s)}
}

// claimHeld gives each of svcs (served, with addresses) the addresses its
// status shows, when it may keep them. Oldest Services first, so that when
// two show the same address without being allowed to share it, the older
// one keeps it. It returns how many were claimed.
func claimHeld(alloc *ipam.Allocator, x *poolIndex, svcs []heldService, nsLabels func(ns string) (map[string]string, error)) (int, error) {
	slices.SortFunc(svcs, func(a, b heldService) int {
		if c := a.created.Time.Compare(b.created.Time); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(a.in.Namespace, b.in.Namespace), strings.Compare(a.name, b.name))
	})
	claimed := 0
	for i := range svcs {
		s := &svcs[i]
		if s.err != nil {
			continue
		}
		in := &s.in
		labels, err := nsLabels(in.Namespace)
		if err != nil {
			return claimed, err
		}
		ch, err := x.choose(in, labels)
		if err != nil {
			continue
		}
		keep := s.ips
		if len(in.IPs) == 0 {
			keep = keepable(keep, in)
		}
		if len(keep) == 0 {
			continue
		}
		if _, err := x.claim(alloc, in, ch.Pinned, labels, keep); err == nil {
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
	now := metav1.Now()
	_, err := configstate.Write(ctx, c.reader, c.client, key, nil, func(prev v1beta1.ConfigurationStateStatus) v1beta1.ConfigurationStateStatus {
		return configurationStatus(prev, result, serving, now)
	})
	return err
}

// maxListed is how many problems a summary lists.
const maxListed = 10

// configurationStatus is the controller's ConfigurationState status for a
// Build result: the conditions every component reports (configstate), and
// an errorSummary that says what the controller does about the problems.
// serving says whether a valid configuration is in use (the current one,
// or the last valid one when the current one is invalid).
func configurationStatus(prev v1beta1.ConfigurationStateStatus, result config.Result, serving bool, now metav1.Time) v1beta1.ConfigurationStateStatus {
	st := configstate.FromBuild(prev, result, serving, "the controller", now)
	switch {
	case result.Config != nil && len(result.Errors) > 0:
		st.ErrorSummary = configstate.Summarize(result.Errors, maxListed) + fmt.Sprintf(" (bgppeer %s refused; every other object is in use)", strings.Join(result.DisabledPeers, ", "))
	case result.Config != nil:
		if len(result.Warnings) > 0 {
			st.ErrorSummary = "warnings: " + configstate.Summarize(result.Warnings, maxListed)
		}
	case serving:
		st.ErrorSummary = configstate.Summarize(result.Errors, maxListed) + " (the controller keeps using the last valid configuration until this is fixed)"
	default:
		st.ErrorSummary = configstate.Summarize(result.Errors, maxListed) + " (there is no valid configuration yet: no address is assigned until this is fixed)"
	}
	return st
}
