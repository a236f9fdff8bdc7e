package v1beta1

import (
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/conversion"

	"github.com/lbstack/lbstack/api/v1beta2"
)

// V1beta2FieldsAnnotation keeps the v1beta2 fields that v1beta1 cannot
// express while an object is read as v1beta1, so that writing it back loses
// nothing.
const V1beta2FieldsAnnotation = "metallb.io/v1beta2-fields"

// v1beta2OnlyFields are the hub fields without a v1beta1 counterpart.
type v1beta2OnlyFields struct {
	LocalASN               uint32                 `json:"localASN,omitempty"`
	DynamicASN             v1beta2.DynamicASNMode `json:"dynamicASN,omitempty"`
	Interface              string                 `json:"interface,omitempty"`
	ConnectTime            *metav1.Duration       `json:"connectTime,omitempty"`
	EnableGracefulRestart  bool                   `json:"enableGracefulRestart,omitempty"`
	DisableMP              bool                   `json:"disableMP,omitempty"`
	DualStackAddressFamily bool                   `json:"dualStackAddressFamily,omitempty"`
	// ExplicitZeroPort distinguishes a v1beta2 peerPort of 0 from an unset
	// one; v1beta1 uses 0 for "unset".
	ExplicitZeroPort bool `json:"explicitZeroPort,omitempty"`
}

func (f v1beta2OnlyFields) empty() bool { return f == v1beta2OnlyFields{} }

var _ conversion.Convertible = &BGPPeer{}

// ConvertTo converts this v1beta1 BGPPeer to the v1beta2 hub.
func (src *BGPPeer) ConvertTo(dstRaw conversion.Hub) error {
	dst, ok := dstRaw.(*v1beta2.BGPPeer)
	if !ok {
		return fmt.Errorf("bgppeer %q: cannot convert to %T", src.Name, dstRaw)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	var extra v1beta2OnlyFields
	if raw, found := dst.Annotations[V1beta2FieldsAnnotation]; found {
		if err := json.Unmarshal([]byte(raw), &extra); err != nil {
			return fmt.Errorf("bgppeer %q: annotation %s: %w", src.Name, V1beta2FieldsAnnotation, err)
		}
		delete(dst.Annotations, V1beta2FieldsAnnotation)
		if len(dst.Annotations) == 0 {
			dst.Annotations = nil
		}
	}

	s := src.Spec
	d := v1beta2.BGPPeerSpec{
		MyASN:                  s.MyASN,
		ASN:                    s.ASN,
		LocalASN:               extra.LocalASN,
		DynamicASN:             extra.DynamicASN,
		Address:                s.Address,
		Interface:              extra.Interface,
		SrcAddress:             s.SrcAddress,
		HoldTime:               copyDuration(s.HoldTime),
		KeepaliveTime:          copyDuration(s.KeepaliveTime),
		ConnectTime:            copyDuration(extra.ConnectTime),
		RouterID:               s.RouterID,
		Password:               s.Password,
		PasswordSecret:         corev1.SecretReference{Name: s.PasswordSecret.Name, Namespace: s.PasswordSecret.Namespace},
		BFDProfile:             s.BFDProfile,
		EnableGracefulRestart:  extra.EnableGracefulRestart,
		EBGPMultiHop:           s.EBGPMultiHop,
		VRFName:                s.VRFName,
		DisableMP:              extra.DisableMP,
		DualStackAddressFamily: extra.DualStackAddressFamily,
	}
	switch {
	case s.Port != 0:
		p := s.Port
		d.Port = &p
	case extra.ExplicitZeroPort:
		d.Port = new(uint16)
	}
	if s.NodeSelectors != nil {
		d.NodeSelectors = make([]metav1.LabelSelector, len(s.NodeSelectors))
		for i, ns := range s.NodeSelectors {
			d.NodeSelectors[i] = toLabelSelector(ns)
		}
	}
	dst.Spec = d
	return nil
}

// ConvertFrom converts the v1beta2 hub to this v1beta1 BGPPeer. Fields that
// v1beta1 cannot express are kept in the V1beta2FieldsAnnotation annotation.
func (dst *BGPPeer) ConvertFrom(srcRaw conversion.Hub) error {
	src, ok := srcRaw.(*v1beta2.BGPPeer)
	if !ok {
		return fmt.Errorf("bgppeer: cannot convert from %T", srcRaw)
	}
	dst.ObjectMeta = *src.ObjectMeta.DeepCopy()
	s := src.Spec
	extra := v1beta2OnlyFields{
		LocalASN:               s.LocalASN,
		DynamicASN:             s.DynamicASN,
		Interface:              s.Interface,
		ConnectTime:            copyDuration(s.ConnectTime),
		EnableGracefulRestart:  s.EnableGracefulRestart,
		DisableMP:              s.DisableMP,
		DualStackAddressFamily: s.DualStackAddressFamily,
		ExplicitZeroPort:       s.Port != nil && *s.Port == 0,
	}
	// A hub object may itself carry a stale annotation (for example one
	// written through v1beta1 by a client that copied it); the hub's fields
	// are the truth, so replace it.
	delete(dst.Annotations, V1beta2FieldsAnnotation)
	if !extra.empty() {
		raw, err := json.Marshal(extra)
		if err != nil {
			return fmt.Errorf("bgppeer %q: %w", src.Name, err)
		}
		if dst.Annotations == nil {
			dst.Annotations = map[string]string{}
		} else {
			dst.Annotations = maps.Clone(dst.Annotations)
		}
		dst.Annotations[V1beta2FieldsAnnotation] = string(raw)
	}

	d := BGPPeerSpec{
		MyASN:          s.MyASN,
		ASN:            s.ASN,
		Address:        s.Address,
		SrcAddress:     s.SrcAddress,
		HoldTime:       copyDuration(s.HoldTime),
		KeepaliveTime:  copyDuration(s.KeepaliveTime),
		RouterID:       s.RouterID,
		Password:       s.Password,
		PasswordSecret: corev1.SecretReference{Name: s.PasswordSecret.Name, Namespace: s.PasswordSecret.Namespace},
		BFDProfile:     s.BFDProfile,
		EBGPMultiHop:   s.EBGPMultiHop,
		VRFName:        s.VRFName,
	}
	if s.Port != nil {
		d.Port = *s.Port
	}
	if s.NodeSelectors != nil {
		d.NodeSelectors = make([]NodeSelector, len(s.NodeSelectors))
		for i, ls := range s.NodeSelectors {
			d.NodeSelectors[i] = fromLabelSelector(ls)
		}
	}
	dst.Spec = d
	return nil
}

func copyDuration(d *metav1.Duration) *metav1.Duration {
	if d == nil {
		return nil
	}
	c := *d
	return &c
}

func toLabelSelector(ns NodeSelector) metav1.LabelSelector {
	ls := metav1.LabelSelector{MatchLabels: maps.Clone(ns.MatchLabels)}
	if ns.MatchExpressions != nil {
		ls.MatchExpressions = make([]metav1.LabelSelectorRequirement, len(ns.MatchExpressions))
		for i, e := range ns.MatchExpressions {
			ls.MatchExpressions[i] = metav1.LabelSelectorRequirement{
				Key:      e.Key,
				Operator: metav1.LabelSelectorOperator(e.Operator),
				Values:   append([]string(nil), e.Values...),
			}
			if e.Values != nil && len(e.Values) == 0 {
				ls.MatchExpressions[i].Values = []string{}
			}
		}
	}
	return ls
}

func fromLabelSelector(ls metav1.LabelSelector) NodeSelector {
	ns := NodeSelector{MatchLabels: maps.Clone(ls.MatchLabels)}
	if ls.MatchExpressions != nil {
		ns.MatchExpressions = make([]MatchExpression, len(ls.MatchExpressions))
		for i, e := range ls.MatchExpressions {
			ns.MatchExpressions[i] = MatchExpression{
				Key:      e.Key,
				Operator: string(e.Operator),
				Values:   append([]string(nil), e.Values...),
			}
			if e.Values != nil && len(e.Values) == 0 {
				ns.MatchExpressions[i].Values = []string{}
			}
		}
	}
	return ns
}
