package controllers

// The operator's own permissions; `make manifests` turns these markers into
// config/rbac/role.yaml (ClusterRole and, for the namespaced ones, a Role in
// metallb-system named lbstack-operator).
//
// Kubernetes refuses to let anyone grant permissions it does not hold
// (RBAC escalation prevention), so the operator holds the union of what it
// grants the controller and the speakers, and no more.
//
// Cluster-wide: the RBAC objects it renders, what the components' ClusterRoles grant,
// and what the webhook server's certificate rotation writes (caBundle).
// Writes to cluster-scoped objects are limited by name to the objects it
// owns (as MetalLB's operator does): the two ClusterRoles and bindings it
// renders (bindata/), its webhook configuration and the BGPPeer CRD whose
// conversion webhook it serves (--webhook-configuration,
// --conversion-crds: the kustomize install's names). Reading them and
// creating its own are not limited by name: Kubernetes cannot restrict
// list, watch or create by name.
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch;create
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,resourceNames=lbstack-controller;lbstack-speaker;lbstack-metrics-reader,verbs=update;patch;delete
//
// Authenticated metrics (its own, and what it grants the components and
// lbstack-metrics-reader).
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
// +kubebuilder:rbac:urls=/metrics,verbs=get
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services/status,verbs=update;patch
// +kubebuilder:rbac:groups="",resources=namespaces;nodes;endpoints,verbs=get;list;watch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,verbs=get;list;watch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations,resourceNames=lbstack-validating-webhook-configuration,verbs=update;patch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,resourceNames=bgppeers.metallb.io,verbs=update;patch
// +kubebuilder:rbac:groups=security.openshift.io,resources=securitycontextconstraints,resourceNames=privileged,verbs=use
//
// In the stack's namespace only: the workloads and objects it renders, and
// the namespaced metallb.io permissions it grants the components.
// +kubebuilder:rbac:groups=apps,namespace=metallb-system,resources=deployments;daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=metallb-system,resources=serviceaccounts;secrets;configmaps;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",namespace=metallb-system,resources=pods,verbs=get;list;watch
// Its own pod's ReplicaSet, to find its Deployment (platform.OwnDeployment).
// +kubebuilder:rbac:groups=apps,namespace=metallb-system,resources=replicasets,verbs=get
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,namespace=metallb-system,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,namespace=metallb-system,resources=networkpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,namespace=metallb-system,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=metallb.io,namespace=metallb-system,resources=configurationstates;servicel2statuses;servicebgpstatuses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=metallb.io,namespace=metallb-system,resources=configurationstates/status;servicel2statuses/status;servicebgpstatuses/status;ipaddresspools/status,verbs=get;update;patch
