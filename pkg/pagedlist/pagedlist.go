// Package pagedlist makes an informer's first list arrive in pages, each
// page trimmed as it arrives, so that a process starting against a large
// cluster never holds the whole list as the API server sent it.
//
// A reflector's first list asks for resourceVersion "0", which the API
// server answers from its watch cache in one response, ignoring the page
// size: at 10,000 Services that is a 37 MB body decoded into 68 MB of
// objects (managedFields included) before the informer's transform strips
// a single field. The controller's resident peak came from that moment,
// not from what it keeps. Asking for a consistent read instead (an empty
// resourceVersion, served from the watch cache too since Kubernetes 1.31,
// and never older than "0") lets the limit apply, and trimming every page
// before the next one is read bounds the transient to one page.
package pagedlist

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// PageSize is the number of objects asked per page when the reflector
// does not ask for a size itself (client-go's pager asks for 500).
const PageSize = 500

// TransformFor returns the transform an informer of objects like example
// applies (nil for none).
type TransformFor func(example runtime.Object) toolscache.TransformFunc

// InPages returns opts with NewInformer set so that every informer's first
// list comes in pages, each page given the transform opts sets for that
// informer's objects (its ByObject entry's, else DefaultTransform) as it
// arrives.
func InPages(opts cache.Options) cache.Options {
	opts.NewInformer = NewInformer(transformsOf(opts))
	return opts
}

// transformsOf is the transform controller-runtime gives an informer
// under opts: its kind's ByObject Transform, else DefaultTransform.
func transformsOf(opts cache.Options) TransformFor {
	return func(example runtime.Object) toolscache.TransformFunc {
		for o, b := range opts.ByObject {
			if reflect.TypeOf(o) == reflect.TypeOf(example) && b.Transform != nil {
				return b.Transform
			}
		}
		return opts.DefaultTransform
	}
}

// NewInformer returns a constructor for controller-runtime's
// cache.Options.NewInformer: client-go's shared index informer over lw,
// whose lists come in pages with transformFor(example) applied to each
// page's items as the page arrives. The informer applies its own
// transform afterwards as before, so the transform must be idempotent
// (stripping fields is).
func NewInformer(transformFor TransformFor) func(toolscache.ListerWatcher, runtime.Object, time.Duration, toolscache.Indexers) toolscache.SharedIndexInformer {
	return func(lw toolscache.ListerWatcher, example runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
		return toolscache.NewSharedIndexInformer(Wrap(lw, transformFor(example)), example, resync, indexers)
	}
}

// Wrap returns lw listing in pages, with transform (if any) applied to
// every item of every page before the page is returned.
func Wrap(lw toolscache.ListerWatcher, transform toolscache.TransformFunc) toolscache.ListerWatcher {
	return &lister{inner: toolscache.ToListerWatcherWithContext(lw), transform: transform}
}

type lister struct {
	inner     toolscache.ListerWatcherWithContext
	transform toolscache.TransformFunc
}

// ListOptions is the request a first list is turned into: resourceVersion
// "0" (any state, from the cache, whole) becomes a consistent read, which
// honours the limit; every other request (a relist from a known version,
// a continuation, an exact match) is left alone.
func ListOptions(opts metav1.ListOptions) metav1.ListOptions {
	if opts.ResourceVersion != "0" || opts.Continue != "" || opts.ResourceVersionMatch != "" {
		return opts
	}
	opts.ResourceVersion = ""
	if opts.Limit <= 0 {
		opts.Limit = PageSize
	}
	return opts
}

func (l *lister) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	list, err := l.inner.ListWithContext(ctx, ListOptions(opts))
	if err != nil || l.transform == nil {
		return list, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, fmt.Errorf("listed page: %w", err)
	}
	// A typed list's items come back as pointers into its Items, so a
	// transform that edits in place (as stripping does) is done; one that
	// returns new objects has them put back.
	replaced := false
	for i, o := range items {
		out, err := l.transform(o)
		if err != nil {
			return nil, fmt.Errorf("transforming a listed page: %w", err)
		}
		if t, ok := out.(runtime.Object); ok && t != o {
			items[i], replaced = t, true
		}
	}
	if replaced {
		if err := meta.SetList(list, items); err != nil {
			return nil, fmt.Errorf("listed page: %w", err)
		}
	}
	return list, nil
}

func (l *lister) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return l.inner.WatchWithContext(ctx, opts)
}

// List and Watch satisfy the older interface client-go's constructors
// still take; the reflector calls the context variants above.
func (l *lister) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

func (l *lister) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}
