package lab

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// K8sVersion is the Kubernetes release the lab's control plane, kubelets
// and kube-proxies are built from.
const K8sVersion = "v1.34.4"

// ServiceAccountIssuer is the issuer in every service-account token.
const ServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// Component names: the daemon names in the run directory and the log file
// names under logs/.
const (
	procEtcd      = "etcd"
	procAPIServer = "kube-apiserver"
	procKCM       = "kube-controller-manager"
	procScheduler = "kube-scheduler"
	procReaper    = "lab-reaper"
)

// Component kubeconfigs, in the PKI directory.
const (
	kcmKubeconfig       = "kube-controller-manager.kubeconfig"
	schedulerKubeconfig = "kube-scheduler.kubeconfig"
)

// kubeletKubeconfig is node's kubelet's kubeconfig (system:node:<name>),
// so the Node authorizer and NodeRestriction apply.
func kubeletKubeconfig(node string) string { return "kubelet-" + node + ".kubeconfig" }

func (s *State) asset(name string) string { return filepath.Join(s.Assets, name) }

// startEtcd runs etcd on loopback only: nothing but the API server may
// talk to it, as in a real cluster.
func (s *State) startEtcd() error {
	p, err := startDaemon(s.runDir(), s.etcdDaemon())
	if err != nil {
		return err
	}
	return waitHTTP(p, s.logPath(procEtcd), fmt.Sprintf("http://127.0.0.1:%d/health", EtcdClientPort), 30*time.Second)
}

func (s *State) etcdDaemon() daemon {
	return daemon{
		Name: procEtcd,
		Argv: []string{s.asset("etcd"),
			"--name=lab",
			"--data-dir=" + filepath.Join(s.Dir, "etcd"),
			fmt.Sprintf("--listen-client-urls=http://127.0.0.1:%d", EtcdClientPort),
			fmt.Sprintf("--advertise-client-urls=http://127.0.0.1:%d", EtcdClientPort),
			fmt.Sprintf("--listen-peer-urls=http://127.0.0.1:%d", EtcdPeerPort),
			fmt.Sprintf("--initial-advertise-peer-urls=http://127.0.0.1:%d", EtcdPeerPort),
			fmt.Sprintf("--initial-cluster=lab=http://127.0.0.1:%d", EtcdPeerPort),
			// The lab's data is thrown away at `down`: durability buys
			// nothing and fsync costs seconds on a busy disk.
			"--unsafe-no-fsync",
			"--log-level=warn",
		},
		Log: s.logPath(procEtcd),
	}
}

// startAPIServer runs kube-apiserver on the lab address with RBAC and the
// Node authorizer, NodeRestriction, and service-account token signing.
func (s *State) startAPIServer() error {
	// Made here, not only at a fresh `up`: a lab whose state predates the
	// kubelet API gets it when its API server is restarted with the
	// kubelet flags.
	if err := s.ensureKubeletClientCert(); err != nil {
		return err
	}
	_, err := startDaemon(s.runDir(), s.apiserverDaemon())
	return err
}

func (s *State) apiserverDaemon() daemon {
	pk := func(n string) string { return filepath.Join(s.pkiDir(), n) }
	return daemon{
		Name: procAPIServer,
		Argv: []string{s.asset("kube-apiserver"),
			fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", EtcdClientPort),
			"--bind-address=" + APIServerAddr,
			"--advertise-address=" + APIServerAddr,
			"--secure-port=" + strconv.Itoa(APIServerPort),
			// Without --cert-dir the API server would write to
			// /var/run/kubernetes, outside the lab's directory.
			"--cert-dir=" + filepath.Join(s.pkiDir(), "apiserver-generated"),
			"--tls-cert-file=" + pk(apiserverCertFile),
			"--tls-private-key-file=" + pk(apiserverKeyFile),
			"--client-ca-file=" + pk(caCertFile),
			// The front-proxy (request header) CA completes the API
			// server's authentication config, which the controller
			// manager and scheduler read for their own endpoints.
			"--requestheader-client-ca-file=" + pk(caCertFile),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + pk(frontProxyCertFile),
			"--proxy-client-key-file=" + pk(frontProxyKeyFile),
			// The kubelet API (logs, exec): the API server presents its
			// own client certificate (system:masters, which the lab
			// kubelet admits), verifies each node's serving certificate
			// against the lab CA, and dials the node's InternalIP (its
			// Hostname address, the node's name, does not resolve).
			"--kubelet-client-certificate=" + pk(kubeletClientCertFile),
			"--kubelet-client-key=" + pk(kubeletClientKeyFile),
			"--kubelet-certificate-authority=" + pk(caCertFile),
			"--kubelet-preferred-address-types=InternalIP",
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--service-account-issuer=" + ServiceAccountIssuer,
			"--service-account-key-file=" + pk(saPubFile),
			"--service-account-signing-key-file=" + pk(saKeyFile),
			"--service-cluster-ip-range=" + ServiceCIDR + "," + ServiceCIDR6,
			// Webhooks and aggregated APIs are called at their Service's
			// endpoints (pod addresses, which the lab routes), not at its
			// ClusterIP, which nothing routes without kube-proxy.
			"--enable-aggregator-routing=true",
			"--allow-privileged=true",
			"--profiling=false",
			"--event-ttl=1h",
		},
		Log: s.logPath(procAPIServer),
	}
}

// waitAPIServer waits for /readyz (anonymous access to it is allowed by the
// default RBAC policy).
func (s *State) waitAPIServer(timeout time.Duration) error {
	p, _ := readProc(s.runDir(), procAPIServer)
	return waitHTTP(p, s.logPath(procAPIServer), APIServerURL()+"/readyz", timeout)
}

// startKCM runs kube-controller-manager with every in-tree controller a
// cluster without a cloud provider runs, each with its own service account.
func (s *State) startKCM() error {
	p, err := startDaemon(s.runDir(), s.kcmDaemon())
	if err != nil {
		return err
	}
	return waitHTTP(p, s.logPath(procKCM), fmt.Sprintf("https://127.0.0.1:%d/healthz", KCMPort), 60*time.Second)
}

func (s *State) kcmDaemon() daemon {
	pk := func(n string) string { return filepath.Join(s.pkiDir(), n) }
	kc := pk(kcmKubeconfig)
	return daemon{
		Name: procKCM,
		Argv: []string{s.asset("kube-controller-manager"),
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(KCMPort),
			"--cert-dir=" + filepath.Join(s.pkiDir(), "kcm-generated"),
			"--controllers=*,-cloud-node-lifecycle-controller,-node-route-controller,-service-lb-controller",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + pk(saKeyFile),
			"--root-ca-file=" + pk(caCertFile),
			"--cluster-signing-cert-file=" + pk(caCertFile),
			"--cluster-signing-key-file=" + pk(caKeyFile),
			"--service-cluster-ip-range=" + ServiceCIDR,
			// Pod ranges are fixed per node by the lab (NodePodCIDR) and
			// set at registration; the IPAM controller only has to agree.
			"--cluster-cidr=" + ClusterPodCIDR,
			"--allocate-node-cidrs=false",
			// One instance: leader election only delays start-up.
			"--leader-elect=false",
			// The default (/usr/libexec/kubernetes/...) would be created
			// on the host.
			"--flex-volume-plugin-dir=" + filepath.Join(s.Dir, "kcm-flexvolume"),
		},
		Log: s.logPath(procKCM),
	}
}

// startScheduler runs kube-scheduler with its own identity.
func (s *State) startScheduler() error {
	p, err := startDaemon(s.runDir(), s.schedulerDaemon())
	if err != nil {
		return err
	}
	return waitHTTP(p, s.logPath(procScheduler), fmt.Sprintf("https://127.0.0.1:%d/healthz", SchedulerPort), 60*time.Second)
}

func (s *State) schedulerDaemon() daemon {
	kc := filepath.Join(s.pkiDir(), schedulerKubeconfig)
	return daemon{
		Name: procScheduler,
		Argv: []string{s.asset("kube-scheduler"),
			"--kubeconfig=" + kc,
			"--authentication-kubeconfig=" + kc,
			"--authorization-kubeconfig=" + kc,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(SchedulerPort),
			"--leader-elect=false",
		},
		Log: s.logPath(procScheduler),
	}
}

// componentHealth checks a control-plane component's health endpoint once.
func componentHealth(url string) error {
	c := &http.Client{
		Timeout: 2 * time.Second,
		// The components serve self-signed certificates on loopback;
		// only liveness is checked here.
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// waitHTTP waits until url answers 200, failing early (with the end of the
// component's log) when the process dies.
func waitHTTP(p Proc, logPath, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if last = componentHealth(url); last == nil {
			return nil
		}
		if p.PID != 0 && !p.Alive() {
			return fmt.Errorf("%s exited while starting; end of %s:\n%s", p.Name, logPath, tailFile(logPath, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy after %s (%v); end of %s:\n%s", p.Name, timeout, last, logPath, tailFile(logPath, 20))
		case <-time.After(200 * time.Millisecond):
		}
	}
}
