package v1beta2

// Hub marks v1beta2 as the version every other BGPPeer version converts
// through (and the one stored in etcd).
func (*BGPPeer) Hub() {}
