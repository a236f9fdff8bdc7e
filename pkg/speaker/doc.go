// Package speaker is the speaker of one node: it decides which addresses
// the node announces to which BGP peers, and makes it so.
//
// The decisions are pure functions (speaker.go: Decide, Sessions,
// ReceivedBy; debugstate.go), with no Kubernetes client. The runtime
// around them is Setup (setup.go): one level-based reconciler
// (reconciler.go) that reads the configuration, the Services, their
// EndpointSlices and the node, applies the decision to the BGP backend
// (pkg/bgp) and the layer-2 election to the announcer (pkg/l2), and
// reports: the node's ConfigurationState (configurationstate.go, through
// pkg/configstate), a ServiceBGPStatus or ServiceL2Status per announced
// Service (nodestatus.go), metrics (metrics.go), health (health.go) and
// its own view at DebugStatePath (debugstore.go). A reconcile that changes
// nothing writes nothing.
package speaker
