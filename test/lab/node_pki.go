package lab

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"slices"
	"time"
)

// Certificates of the kubelet API: the API server's client certificate
// for kubelets (--kubelet-client-certificate) and each node's serving
// certificate.
const (
	kubeletClientCertFile = "apiserver-kubelet-client.crt"
	kubeletClientKeyFile  = "apiserver-kubelet-client.key"
	// kubeletClientCN is the API server's identity towards kubelets, as
	// kubeadm names it.
	kubeletClientCN = "kube-apiserver-kubelet-client"
)

func kubeletServingFiles(node string) (cert, key string) {
	return "kubelet-serving-" + node + ".crt", "kubelet-serving-" + node + ".key"
}

// loadPKI reads the lab CA written by newPKI.
func loadPKI(dir string) (*pki, error) {
	p := &pki{dir: dir}
	certPEM, err := os.ReadFile(p.path(caCertFile))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(p.path(caKeyFile))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("lab CA in %s: not PEM", dir)
	}
	if p.caCert, err = x509.ParseCertificate(cb.Bytes); err != nil {
		return nil, fmt.Errorf("lab CA certificate: %w", err)
	}
	var key *ecdsa.PrivateKey
	if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
		return nil, fmt.Errorf("lab CA key: %w", err)
	}
	p.caKey = key
	return p, nil
}

// ensure issues certFile/keyFile unless they exist, are signed by this CA,
// are valid for another day and carry exactly subject and ips.
func (p *pki) ensure(certFile, keyFile string, subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) error {
	if pair, err := tls.LoadX509KeyPair(p.path(certFile), p.path(keyFile)); err == nil {
		if c, err := x509.ParseCertificate(pair.Certificate[0]); err == nil && p.current(c, subject, ips) {
			return nil
		}
	}
	return p.issue(certFile, keyFile, subject, usage, dns, ips)
}

func (p *pki) current(c *x509.Certificate, subject pkix.Name, ips []net.IP) bool {
	if c.CheckSignatureFrom(p.caCert) != nil || time.Until(c.NotAfter) < 24*time.Hour {
		return false
	}
	if c.Subject.CommonName != subject.CommonName || !slices.Equal(c.Subject.Organization, subject.Organization) {
		return false
	}
	if len(c.IPAddresses) != len(ips) {
		return false
	}
	for i := range ips {
		if !c.IPAddresses[i].Equal(ips[i]) {
			return false
		}
	}
	return true
}

// ensureKubeletClientCert makes the API server's kubelet client
// certificate (CN kube-apiserver-kubelet-client, O system:masters) when
// missing; startAPIServer calls it, so a lab brought up before it existed
// gets it when the API server is restarted with the kubelet flags.
func (s *State) ensureKubeletClientCert() error {
	p, err := loadPKI(s.pkiDir())
	if err != nil {
		return fmt.Errorf("kubelet client certificate: %w", err)
	}
	return p.ensure(kubeletClientCertFile, kubeletClientKeyFile,
		pkix.Name{CommonName: kubeletClientCN, Organization: []string{"system:masters"}},
		x509.ExtKeyUsageClientAuth, nil, nil)
}

// kubeletServingCert makes node i's kubelet serving certificate (the
// node's addresses and name as SANs, signed by the lab CA, which the API
// server verifies with --kubelet-certificate-authority) when missing, and
// returns its files.
func (s *State) kubeletServingCert(i int) (cert, key string, err error) {
	p, err := loadPKI(s.pkiDir())
	if err != nil {
		return "", "", err
	}
	name := NodeName(i)
	certFile, keyFile := kubeletServingFiles(name)
	ips := []net.IP{net.ParseIP(NodeAddr(i)), net.ParseIP(NodeAddr6(i))}
	if err := p.ensure(certFile, keyFile, pkix.Name{CommonName: name, Organization: []string{"system:nodes"}},
		x509.ExtKeyUsageServerAuth, []string{name}, ips); err != nil {
		return "", "", err
	}
	return p.path(certFile), p.path(keyFile), nil
}
