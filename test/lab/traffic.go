package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Answer is what the lab's web server (test/images/webserver) says: who
// answered, and whom it saw.
type Answer struct {
	Pod, Node, Client, Server, Proto string
}

// ClientAddrSeen is the address part of Client (the source the pod saw).
func (a Answer) ClientAddrSeen() string {
	if ap, err := netip.ParseAddrPort(a.Client); err == nil {
		return ap.Addr().String()
	}
	return a.Client
}

// ParseAnswer reads the web server's line
// (pod=... node=... client=... server=... proto=...).
func ParseAnswer(line string) (Answer, error) {
	var a Answer
	fields := strings.Fields(strings.TrimSpace(line))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "pod":
			a.Pod = v
		case "node":
			a.Node = v
		case "client":
			a.Client = v
		case "server":
			a.Server = v
		case "proto":
			a.Proto = v
		}
	}
	if a.Pod == "" || a.Client == "" {
		return a, fmt.Errorf("not an answer of the lab's web server: %q", line)
	}
	return a, nil
}

// dialFromClient opens a connection from the client namespace (its
// sockets stay there; the caller uses them anywhere).
func dialFromClient(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if _, err := checkLabAddr(host); err != nil {
		return nil, err
	}
	var c net.Conn
	err = InNetns(ClientNetns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// httpFromClient makes every request a new connection from the client,
// so each has its own source port (ECMP and kube-proxy choose per flow).
var httpFromClient = &http.Client{
	Transport: &http.Transport{
		DialContext:       dialFromClient,
		DisableKeepAlives: true,
	},
}

// Get sends one HTTP request from the client to addr:port, as `curl`
// from the client namespace does, and returns the web server's answer.
func (Client) Get(ctx context.Context, addr string, port int, timeout time.Duration) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + net.JoinHostPort(addr, strconv.Itoa(port)) + "/"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Answer{}, err
	}
	resp, err := httpFromClient.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return Answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return ParseAnswer(string(body))
}

// UDP sends one datagram from the client to addr:port and returns the
// answer.
func (Client) UDP(ctx context.Context, addr string, port int, timeout time.Duration) (Answer, error) {
	c, err := dialFromClient(ctx, "udp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return Answer{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("lbstack-lab\n")); err != nil {
		return Answer{}, err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return Answer{}, err
	}
	return ParseAnswer(string(buf[:n]))
}

// Sample is one request of a Load: when it was sent, and its answer or
// error.
type Sample struct {
	At     time.Time
	Answer Answer
	Err    error
}

// Load sends HTTP requests from the client to addr:port at rate per
// second (each a new connection with its own timeout, overlapping when
// slow, as a steady client does) until Stop, and keeps every outcome.
type Load struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []Sample
}

// StartLoad starts a Load; every request times out after timeout.
func (c Client) StartLoad(addr string, port int, rate int, timeout time.Duration) *Load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cancel: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case at := <-tick.C:
				l.wg.Add(1)
				go func() {
					defer l.wg.Done()
					a, err := c.Get(context.Background(), addr, port, timeout)
					l.mu.Lock()
					l.samples = append(l.samples, Sample{At: at, Answer: a, Err: err})
					l.mu.Unlock()
				}()
			}
		}
	}()
	return l
}

// Samples returns the outcomes so far, in the order they were sent.
func (l *Load) Samples() []Sample {
	l.mu.Lock()
	out := append([]Sample(nil), l.samples...)
	l.mu.Unlock()
	sortSamples(out)
	return out
}

// Stop ends the load, waits for the requests in flight, and returns every
// sample in the order they were sent.
func (l *Load) Stop() []Sample {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]Sample(nil), l.samples...)
	sortSamples(out)
	return out
}

func sortSamples(s []Sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].At.Before(s[j-1].At); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Outage is what a client saw of a failure: from the first failed request
// sent after start to the first successful one sent after it (zero when
// nothing failed), and how many failed.
func Outage(samples []Sample, start time.Time) (time.Duration, int) {
	var first time.Time
	failed := 0
	for _, s := range samples {
		if s.At.Before(start) {
			continue
		}
		if s.Err != nil {
			failed++
			if first.IsZero() {
				first = s.At
			}
			continue
		}
		if !first.IsZero() {
			return s.At.Sub(first), failed
		}
	}
	if !first.IsZero() && len(samples) > 0 {
		// Still failing at the end: the whole rest of the run.
		return samples[len(samples)-1].At.Sub(first), failed
	}
	return 0, failed
}
