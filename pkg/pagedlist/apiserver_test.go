package pagedlist_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/pkg/pagedlist"
	"github.com/lbstack/lbstack/test/envtest"
)

// listCounter records the list requests for ConfigMaps (not watches).
type listCounter struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (c *listCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/configmaps") && r.URL.Query().Get("watch") == "" {
		c.mu.Lock()
		c.reqs = append(c.reqs, r.URL.RawQuery)
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

// TestFirstListInPagesFromAPIServer starts informers against a real API
// server holding 1,150 ConfigMaps: with pagedlist the first list comes in
// pages of 500, each stripped of managedFields; without it (the control),
// in one response, which is what made the controller's memory peak.
func TestFirstListInPagesFromAPIServer(t *testing.T) {
	if _, err := envtest.AssetsDir(); err != nil {
		t.Skipf("envtest assets missing (make envtest-assets): %v", err)
	}
	env := envtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns, n = "paged", 1150
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%04d", i), Namespace: ns}, Data: map[string]string{"k": "v"}}
				if err := env.Client.Create(ctx, cm); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// cached starts a cache with opts and returns the list requests it
	// made and its ConfigMaps once synced.
	cached := func(opts cache.Options) ([]string, []corev1.ConfigMap) {
		counter := &listCounter{}
		cfg := rest.CopyConfig(env.Config)
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter }
		opts.Scheme = env.Scheme
		opts.DefaultNamespaces = map[string]cache.Config{ns: {}}
		c, err := cache.New(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { _ = c.Start(cctx) }()
		var l corev1.ConfigMapList
		if err := c.List(cctx, &l, client.InNamespace(ns)); err != nil { // waits for the sync
			t.Fatal(err)
		}
		counter.mu.Lock()
		defer counter.mu.Unlock()
		return append([]string(nil), counter.reqs...), l.Items
	}

	// The informers' own transform taken away again: what the cache holds
	// after the sync is what the pages held, so stripped items show the
	// page transform ran.
	paged := pagedlist.InPages(cache.Options{DefaultTransform: cache.TransformStripManagedFields()})
	paged.DefaultTransform = nil
	reqs, items := cached(paged)
	if len(items) != n {
		t.Fatalf("paged: %d ConfigMaps cached, want %d", len(items), n)
	}
	for _, cm := range items {
		if cm.ManagedFields != nil {
			t.Fatalf("paged: %s kept its managedFields", cm.Name)
		}
	}
	if len(reqs) != 3 {
		t.Errorf("paged: list requests %q, want 3 pages of at most %d", reqs, pagedlist.PageSize)
	}
	for i, q := range reqs {
		if strings.Contains(q, "resourceVersion=0") || !strings.Contains(q, fmt.Sprintf("limit=%d", pagedlist.PageSize)) || (i > 0) != strings.Contains(q, "continue=") {
			t.Errorf("paged: request %d %q: want a consistent read with limit=%d (continued after the first)", i, q, pagedlist.PageSize)
		}
	}

	// The control: client-go's own informer, one response, managedFields
	// and all.
	reqs, items = cached(cache.Options{})
	if len(reqs) != 1 || len(items) != n || items[0].ManagedFields == nil {
		t.Errorf("unpaged control: %d requests %q, %d items (managedFields %v): expected one whole response", len(reqs), reqs, len(items), items[0].ManagedFields != nil)
	}
}
