package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IPAddressPoolSpec defines the addresses a pool hands out and how.
type IPAddressPoolSpec struct {
	// Addresses is the list of address ranges this pool owns. Each entry is a
	// CIDR prefix (203.0.113.0/24, 2001:db8::/64) or an explicit inclusive range
	// "start-end" (203.0.113.10-203.0.113.20) of one IP family. Several entries
	// share the pool's settings.
	// +kubebuilder:validation:MinItems=1
	Addresses []string `json:"addresses"`

	// AutoAssign lets Services without an explicit pool or address get an
	// address from this pool. When false, only Services that name the pool
	// (metallb.io/address-pool) or ask for one of its addresses use it.
	// +optional
	// +kubebuilder:default:=true
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255, which some
	// old client stacks wrongly treat as network or broadcast addresses.
	// +optional
	// +kubebuilder:default:=false
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// AllocateTo restricts the pool to some namespaces and/or Services and
	// gives it a priority among the pools that match a Service.
	// +optional
	AllocateTo *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation restricts which Services a pool serves and with which
// priority.
type ServiceAllocation struct {
	// Priority orders pools that match the same Service: the lowest value is
	// tried first; a pool without priority comes after those with one.
	// +optional
	Priority int `json:"priority,omitempty"`

	// Namespaces lists the namespaces whose Services may use the pool.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelectors selects, by label, the namespaces whose Services may
	// use the pool.
	// +optional
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors selects, by label, the Services that may use the pool.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus reports how many addresses of the pool are in use.
type IPAddressPoolStatus struct {
	// AssignedIPv4 is the number of IPv4 addresses assigned to Services.
	AssignedIPv4 int64 `json:"assignedIPv4"`

	// AssignedIPv6 is the number of IPv6 addresses assigned to Services.
	AssignedIPv6 int64 `json:"assignedIPv6"`

	// AvailableIPv4 is the number of IPv4 addresses still free.
	AvailableIPv4 int64 `json:"availableIPv4"`

	// AvailableIPv6 is the number of IPv6 addresses still free (capped at
	// the largest int64 for very large IPv6 pools).
	AvailableIPv6 int64 `json:"availableIPv6"`
}

// IPAddressPool is a set of addresses that LoadBalancer Services get their
// external addresses from.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ipaddresspool
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Avoid Buggy IPs",type=boolean,JSONPath=`.spec.avoidBuggyIPs`
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the pool's desired configuration.
	Spec IPAddressPoolSpec `json:"spec"`

	// Status is the pool's observed usage.
	// +optional
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPool.
//
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}

func init() {
	SchemeBuilder.Register(&IPAddressPool{}, &IPAddressPoolList{})
}
