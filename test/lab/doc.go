// Package lab builds lbstack's local lab: a small but real Kubernetes cluster
// and a real router on one Linux machine.
//
//   - The control plane is etcd, kube-apiserver, kube-controller-manager and
//     kube-scheduler built from pinned modules (`make lab-assets`), running on
//     the lab's own ports with RBAC, a service-account issuer and client
//     certificates for every component.
//   - Nodes are network namespaces (lbl-node1..N) joined by a bridge that
//     lives in its own namespace (lbl-switch); the API server listens on a
//     lab address reached from the nodes over that bridge.
//   - Each node runs containerd (its own root, state and socket, in a
//     private mount namespace), a kubelet built from the same pins, the CNI
//     bridge plugin with host-local IPAM on the node's pod range, and
//     kube-proxy in nftables mode (node.go). Pods are containers; their
//     images are built here (images.go, oci/) and served by the lab
//     registry (registry.go) on the lab network.
//   - A router namespace runs FRR (zebra, bgpd, bfdd) configured like the
//     routers in the seed scenarios; a client namespace stands where the
//     users' client stood.
//
// Every address comes from 198.18.0.0/15 and 2001:db8:18::/64 (see addr.go);
// every namespace is named lbl-*; every process is recorded by PID and start
// time under the state directory and stopped by PID, never by name. See
// docs/lab.md for the user's view.
package lab
