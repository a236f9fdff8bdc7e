// Package mustgather collects everything needed to debug an lbstack (or
// MetalLB-API) installation into one directory: the metallb.io and
// lbstack.io objects, the workloads the operator renders with their pods'
// logs, every LoadBalancer Service with its EndpointSlices and events, the
// nodes and the NMState / OVN / OpenShift objects symmetric routing relies
// on, each speaker's FRR and routing state through the pod exec API, and a
// summary.txt written for a person. The layout is documented in
// docs/must-gather.md and kept stable.
//
// Two rules hold everywhere: secret values are never written (Secrets are
// listed by name and type; FRR passwords are masked; every value of the
// stack namespace's Secrets is scrubbed from everything written), and a
// failure is recorded in errors.txt and the run goes on; Run's error says
// whether anything failed.
package mustgather
