package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The lab's cluster DNS (docs/lab.md, "Cluster DNS"): what CoreDNS is to
// a real cluster, for Service names only. Pods resolve
// <service>.<namespace>.svc.cluster.local (the kubelets' clusterDNS and
// search path lead there) to the Service's cluster IPs. OLM needs it: its
// catalog operator reaches each catalog's registry by the Service's DNS
// name. Nothing else is answered and nothing is forwarded (a name outside
// cluster.local is refused), so no query leaves the lab.

// ClusterDNSAddr is the lab's cluster DNS, on the host's segment address
// (every node, and so every pod, reaches it on the segment).
const ClusterDNSAddr = APIServerAddr

// ClusterDomain is the kubelets' clusterDomain.
const ClusterDomain = "cluster.local"

const procDNS = "lab-dns"

// dnsTTL is short: a Service deleted and created again resolves to its new
// address within seconds, as with CoreDNS's default 5 s.
const dnsTTL = 5

// serviceLookup returns a Service's cluster IPs, found false when the
// Service does not exist.
type serviceLookup func(namespace, name string) (ips []netip.Addr, found bool)

// dnsReply answers one DNS query message: A and AAAA of
// <service>.<namespace>.svc.cluster.local from lookup; NXDOMAIN for any
// other name in the cluster domain (authoritatively), REFUSED outside it.
func dnsReply(query []byte, lookup serviceLookup) ([]byte, error) {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil {
		return nil, fmt.Errorf("parse query: %w", err)
	}
	q, err := p.Question()
	if err != nil {
		return nil, fmt.Errorf("parse question: %w", err)
	}
	resp := dnsmessage.Header{ID: hdr.ID, Response: true, OpCode: hdr.OpCode, RecursionDesired: hdr.RecursionDesired}
	name := strings.ToLower(q.Name.String())
	suffix := ".svc." + ClusterDomain + "."
	var answers []netip.Addr
	switch {
	case hdr.OpCode != 0 || q.Class != dnsmessage.ClassINET:
		resp.RCode = dnsmessage.RCodeNotImplemented
	case !strings.HasSuffix(name, "."+ClusterDomain+"."):
		resp.RCode = dnsmessage.RCodeRefused
	default:
		resp.Authoritative = true
		svc, ns, ok := strings.Cut(strings.TrimSuffix(name, suffix), ".")
		if !strings.HasSuffix(name, suffix) || !ok || svc == "" || strings.Contains(ns, ".") {
			resp.RCode = dnsmessage.RCodeNameError
			break
		}
		ips, found := lookup(ns, svc)
		if !found {
			resp.RCode = dnsmessage.RCodeNameError
			break
		}
		for _, ip := range ips {
			if (q.Type == dnsmessage.TypeA && ip.Is4()) || (q.Type == dnsmessage.TypeAAAA && ip.Is6()) {
				answers = append(answers, ip)
			}
		}
	}
	b := dnsmessage.NewBuilder(nil, resp)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	for _, ip := range answers {
		h := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: dnsTTL}
		if ip.Is4() {
			if err := b.AResource(h, dnsmessage.AResource{A: ip.As4()}); err != nil {
				return nil, err
			}
		} else if err := b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: ip.As16()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// serviceIPs are the cluster IPs of a Service; a headless Service has
// none (the lab's DNS does not answer with its endpoints).
func serviceIPs(s *corev1.Service) []netip.Addr {
	var out []netip.Addr
	ips := s.Spec.ClusterIPs
	if len(ips) == 0 && s.Spec.ClusterIP != "" {
		ips = []string{s.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func (s *State) dnsDaemon() daemon {
	return daemon{
		Name: procDNS,
		Argv: []string{s.LabBinary, "dns", "--state", s.Dir},
		Log:  s.logPath(procDNS),
	}
}

// startDNS starts the lab's cluster DNS and waits until it answers.
func (s *State) startDNS() error {
	p, err := startDaemon(s.runDir(), s.dnsDaemon())
	if err != nil {
		return err
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(ClusterDNSAddr, "53"))
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := r.LookupHost(ctx, "kubernetes.default.svc."+ClusterDomain)
		cancel()
		if err == nil {
			return nil
		}
		if !p.Alive() {
			return fmt.Errorf("the lab's cluster DNS exited; end of %s:\n%s", s.logPath(procDNS), tailFile(s.logPath(procDNS), 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the lab's cluster DNS does not resolve kubernetes.default.svc.%s on %s:53: %v", ClusterDomain, ClusterDNSAddr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ServeDNS serves the lab's cluster DNS for the lab in stateDir on
// ClusterDNSAddr:53, UDP and TCP, until ctx ends (`lab dns`, started by
// `lab up`).
func ServeDNS(ctx context.Context, stateDir string) error {
	st, err := LoadState(stateDir)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", st.Kubeconfig())
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(kube, 0)
	services := factory.Core().V1().Services().Lister()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("lab dns: %v informer did not sync", typ)
		}
	}
	lookup := func(ns, name string) ([]netip.Addr, bool) {
		s, err := services.Services(ns).Get(name)
		if err != nil {
			return nil, false
		}
		return serviceIPs(s), true
	}
	logger := log.New(os.Stdout, "", log.LstdFlags|log.Lmicroseconds)
	addr := net.JoinHostPort(ClusterDNSAddr, "53")
	udp, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("lab dns: %w", err)
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		udp.Close()
		return fmt.Errorf("lab dns: %w", err)
	}
	go func() {
		<-ctx.Done()
		udp.Close()
		tcp.Close()
	}()
	go serveDNSTCP(tcp, lookup, logger)
	logger.Printf("lab dns: serving %s Service names on %s (udp, tcp)", ClusterDomain, addr)
	buf := make([]byte, 65535)
	for {
		n, from, err := udp.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("lab dns: %w", err)
		}
		reply, err := dnsReply(buf[:n], lookup)
		if err != nil {
			logger.Printf("lab dns: from %s: %v", from, err)
			continue
		}
		if _, err := udp.WriteTo(reply, from); err != nil {
			logger.Printf("lab dns: reply to %s: %v", from, err)
		}
	}
}

// serveDNSTCP answers DNS over TCP (length-prefixed messages), which a
// resolver falls back to for a truncated reply.
func serveDNSTCP(l net.Listener, lookup serviceLookup, logger *log.Logger) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				var n uint16
				if err := binary.Read(c, binary.BigEndian, &n); err != nil {
					return
				}
				msg := make([]byte, n)
				if _, err := io.ReadFull(c, msg); err != nil {
					return
				}
				reply, err := dnsReply(msg, lookup)
				if err != nil {
					logger.Printf("lab dns: from %s: %v", c.RemoteAddr(), err)
					return
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
				if _, err := c.Write(append(out, reply...)); err != nil {
					return
				}
			}
		}()
	}
}
