// Command webserver is the lab's test backend: the image the scenarios'
// nginx Deployments run in the lab (the lab registry serves it under their
// image names, docs/lab.md). Every answer says who answered and whom it saw:
//
//	pod=<pod name> node=<node> client=<source address:port> server=<address:port> proto=<tcp|udp>
//
// The pod name is the container's hostname (the kubelet sets it to the
// pod's name); the node comes from $NODE_NAME when the pod passes it
// (downward API), else "-". The client address is the source the kernel
// delivered: with externalTrafficPolicy Local it is the client's own, with
// Cluster a node's when kube-proxy masqueraded.
//
// It serves HTTP on every TCP port given (-tcp 80,53,63) and answers any
// datagram on every UDP port given (-udp 53) with the same line. With
// -get URL it is a client instead (the image has no curl): it prints what
// URL answers and exits non-zero on any failure.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	tcp := flag.String("tcp", "80", "TCP ports to serve HTTP on (comma-separated)")
	udp := flag.String("udp", "", "UDP ports to answer on (comma-separated)")
	get := flag.String("get", "", "fetch this URL, print the answer and exit")
	flag.Parse()
	if *get != "" {
		os.Exit(fetch(*get))
	}
	host, err := os.Hostname()
	if err != nil {
		log.Fatalf("hostname: %v", err)
	}
	node := os.Getenv("NODE_NAME")
	if node == "" {
		node = "-"
	}
	id := identity{pod: host, node: node}
	errc := make(chan error, 8)
	for _, p := range ports(*tcp) {
		l, err := net.Listen("tcp", ":"+p)
		if err != nil {
			log.Fatalf("listen tcp/%s: %v", p, err)
		}
		log.Printf("serving HTTP on tcp/%s as pod %s on node %s", p, id.pod, id.node)
		go func() { errc <- http.Serve(l, id) }()
	}
	for _, p := range ports(*udp) {
		c, err := net.ListenPacket("udp", ":"+p)
		if err != nil {
			log.Fatalf("listen udp/%s: %v", p, err)
		}
		log.Printf("answering on udp/%s", p)
		go func() { errc <- id.serveUDP(c) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Printf("%s: exiting", s)
	case err := <-errc:
		log.Fatalf("serve: %v", err)
	}
}

func ports(list string) []string {
	var out []string
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			log.Fatalf("port %q: %v", p, err)
		}
		out = append(out, p)
	}
	return out
}

type identity struct{ pod, node string }

func (id identity) line(client, server net.Addr, proto string) string {
	return fmt.Sprintf("pod=%s node=%s client=%s server=%s proto=%s\n", id.pod, id.node, client, server, proto)
}

func (id identity) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	remote, err := net.ResolveTCPAddr("tcp", r.RemoteAddr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, id.line(remote, local, "tcp"))
}

func (id identity) serveUDP(c net.PacketConn) error {
	buf := make([]byte, 2048)
	for {
		_, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if _, err := c.WriteTo([]byte(id.line(from, c.LocalAddr(), "udp")), from); err != nil {
			log.Printf("answer %s: %v", from, err)
		}
	}
}

func fetch(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}
