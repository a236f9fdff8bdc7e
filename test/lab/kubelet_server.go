package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// KubeletPort is where each node's kubelet API listens (the kubelet's
// default), on the node's addresses inside its network namespace. Nodes
// report it as status.daemonEndpoints.kubeletEndpoint.port, which the API
// server uses for logs, exec and the nodes/proxy subresource.
const KubeletPort = 10250

// serveAPI runs node n's kubelet API until ctx ends: HTTPS on NodeAddr and
// NodeAddr6 port KubeletPort, opened inside the node's namespace, with
// client certificates of the lab CA required. A bind that fails (the node's
// IPv6 address still tentative, a previous kubelet still exiting) is
// retried.
func (n *node) serveAPI(ctx context.Context) {
	var cfg *tls.Config
	var lns []net.Listener
	for {
		var err error
		if cfg == nil {
			cfg, err = n.k.st.kubeletTLSConfig(n.index)
		}
		if err == nil {
			lns, err = n.listenAPI()
		}
		if err == nil {
			break
		}
		n.logf("kubelet API: %v (retrying)", err)
		if !sleepCtx(ctx, 2*time.Second) {
			return
		}
	}
	srv := &http.Server{
		Handler:           n.apiHandler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(n.k.log.Writer(), n.name+": kubelet API: ", log.LstdFlags|log.Lmicroseconds),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if wc, ok := tc.NetConn().(*watchedConn); ok {
					return context.WithValue(ctx, connGoneKey{}, (<-chan struct{})(wc.gone))
				}
			}
			return ctx
		},
	}
	var wg sync.WaitGroup
	for _, l := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(tls.NewListener(watchedListener{l}, cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.logf("kubelet API on %s: %v", l.Addr(), err)
			}
		}()
	}
	n.logf("kubelet API on https://%s and https://%s", net.JoinHostPort(NodeAddr(n.index), strconv.Itoa(KubeletPort)), net.JoinHostPort(NodeAddr6(n.index), strconv.Itoa(KubeletPort)))
	<-ctx.Done()
	_ = srv.Close()
	wg.Wait()
}

// listenAPI opens the node's listeners inside its namespace. Free-bind
// lets the IPv6 address be bound while duplicate address detection still
// holds it tentative.
func (n *node) listenAPI() ([]net.Listener, error) {
	var lns []net.Listener
	err := InNetns(n.name, func() error {
		for _, a := range []struct{ network, addr string }{{"tcp4", NodeAddr(n.index)}, {"tcp6", NodeAddr6(n.index)}} {
			lc := net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					if network == "tcp6" {
						serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
					} else {
						serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
					}
				})
				return errors.Join(err, serr)
			}}
			l, err := lc.Listen(context.Background(), a.network, net.JoinHostPort(a.addr, strconv.Itoa(KubeletPort)))
			if err != nil {
				return err
			}
			lns = append(lns, l)
		}
		return nil
	})
	if err != nil {
		for _, l := range lns {
			l.Close()
		}
		return nil, err
	}
	return lns, nil
}

// connGoneKey holds, in a request's context, a channel closed when the
// client's connection is gone: a hijacked (exec) connection's request
// context does not end when the peer goes away.
type connGoneKey struct{}

type watchedListener struct{ net.Listener }

func (l watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, gone: make(chan struct{})}, nil
}

// watchedConn closes gone when a read fails for any reason but a
// deadline (the peer closed, reset) or the connection is closed.
type watchedConn struct {
	net.Conn
	once sync.Once
	gone chan struct{}
}

func (c *watchedConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	if err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.once.Do(func() { close(c.gone) })
		}
	}
	return k, err
}

func (c *watchedConn) Close() error {
	c.once.Do(func() { close(c.gone) })
	return c.Conn.Close()
}

// apiHandler routes the kubelet API: /healthz, /containerLogs and /exec
// with the kubelet's URL shapes; anything else is 404.
func (n *node) apiHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		if !authorized(w, r, parts[0]) {
			return
		}
		switch {
		case parts[0] == "containerLogs" && len(parts) == 4:
			if r.Method != http.MethodGet {
				kubeletError(w, http.StatusMethodNotAllowed, "method not allowed")
				return
			}
			n.serveLogs(w, r, parts[1], parts[2], parts[3])
		case parts[0] == "exec" && (len(parts) == 4 || len(parts) == 5):
			if r.Method != http.MethodGet && r.Method != http.MethodPost {
				kubeletError(w, http.StatusMethodNotAllowed, "method not allowed")
				return
			}
			// /exec/{namespace}/{pod}/{container} or, as the kubelet
			// also accepts, /exec/{namespace}/{pod}/{uid}/{container}.
			uid := ""
			if len(parts) == 5 {
				uid = parts[3]
			}
			n.serveExec(w, r, parts[1], parts[2], uid, parts[len(parts)-1])
		default:
			http.NotFound(w, r)
		}
	})
}

// authorized lets in the API server's kubelet client identity and
// system:masters (the lab CA verified the certificate during the
// handshake); anyone else is told what a kubelet's authorizer says.
func authorized(w http.ResponseWriter, r *http.Request, sub string) bool {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		kubeletError(w, http.StatusUnauthorized, "Unauthorized")
		return false
	}
	c := r.TLS.PeerCertificates[0]
	if c.Subject.CommonName == kubeletClientCN || slices.Contains(c.Subject.Organization, "system:masters") {
		return true
	}
	verb := "get"
	if r.Method == http.MethodPost {
		verb = "create"
	}
	kubeletError(w, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource(s)=[proxy %s])", c.Subject.CommonName, verb, sub))
	return false
}

// findPod returns the worker of the pod ns/name on this node (one not
// being deleted when both exist), or nil.
func (n *node) findPod(ns, name string) *podWorker {
	n.mu.Lock()
	defer n.mu.Unlock()
	var found *podWorker
	for _, w := range n.pods {
		pod, gone := w.snapshot()
		if gone || pod.Namespace != ns || pod.Name != name {
			continue
		}
		if found == nil || pod.DeletionTimestamp == nil {
			found = w
		}
	}
	return found
}

// findContainer returns the pod's container named name once the worker
// has built its containers, or nil. The worker builds them once, before
// it starts any; callers only use containers that started.
func (w *podWorker) findContainer(name string) *container {
	for _, c := range append(append([]*container(nil), w.inits...), w.ctrs...) {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// kubeletError answers with msg as plain text, as the kubelet's
// go-restful handlers do (no trailing newline: the API server passes the
// body on as the error's message).
func kubeletError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg))
}
