// Package lab builds lbstack's local lab: a small but real Kubernetes cluster
// and a real router on one Linux machine, with no container engine.
//
//   - The control plane is etcd, kube-apiserver, kube-controller-manager and
//     kube-scheduler built from pinned modules (`make lab-assets`), running on
//     the lab's own ports with RBAC, a service-account issuer and client
//     certificates for every component.
//   - Nodes are network namespaces (lbl-node1..N) joined by a bridge that
//     lives in its own namespace (lbl-switch); the API server listens on a
//     lab address reached from the nodes over that bridge.
//   - One lab kubelet process serves every node: it registers the Node
//     objects, keeps their Lease and Ready condition fresh, runs containers of
//     the lbstack image (and images the tests register) as real processes in
//     their node's namespace and their own mount namespace, with the pod's
//     service-account token bind-mounted at the in-cluster path, runs FRR's
//     image with the host's FRR daemons under a stand-in for its entrypoint
//     (frr_container.go), and simulates every other image.
//   - A router namespace runs FRR (zebra, bgpd, bfdd) configured like the
//     routers in the seed scenarios; a client namespace stands where the
//     users' client stood.
//
// Every address comes from 198.18.0.0/15 and 2001:db8:18::/64 (see addr.go);
// every namespace is named lbl-*; every process is recorded by PID and start
// time under the state directory and stopped by PID, never by name. See
// docs/lab.md for the user's view.
package lab
