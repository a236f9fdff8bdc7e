package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ServiceAccountMountPath is where Kubernetes mounts a pod's service-account
// token, CA and namespace.
const ServiceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// podVolumes holds the volumes of a pod with real containers, as
// directories under the pod's directory that the containers see through
// bind mounts. Only what the lab needs is supported: projected (service
// account token, config maps, secrets, downward API), secret, configMap,
// downwardAPI, emptyDir and existing hostPath volumes.
type podVolumes struct {
	w    *podWorker
	dirs map[string]string
	// tokens are keyed by file path; a resync keeps a token that is not
	// due for renewal instead of requesting a new one.
	tokens  map[string]*tokenFile
	mounted bool
}

// tokenFile is a projected service-account token the kubelet keeps fresh.
type tokenFile struct {
	path       string
	audience   string
	expSeconds int64
	mode       os.FileMode
	refreshAt  time.Time
}

func newPodVolumes(w *podWorker) *podVolumes {
	return &podVolumes{w: w, dirs: map[string]string{}, tokens: map[string]*tokenFile{}}
}

// ok reports whether the volumes are ready for containers to start.
func (v *podVolumes) ok() bool { return v == nil || v.mounted }

// usedVolumes lists the volumes that some real container mounts.
func (v *podVolumes) usedVolumes(pod *corev1.Pod) map[string]bool {
	used := map[string]bool{}
	for _, c := range append(append([]*container(nil), v.w.inits...), v.w.ctrs...) {
		if c.simulated() {
			continue
		}
		for _, m := range c.spec.VolumeMounts {
			used[m.Name] = true
		}
	}
	return used
}

// refresh prepares every used volume the first time (and again when all
// is set), and renews tokens that reached 80% of their lifetime.
func (v *podVolumes) refresh(ctx context.Context, pod *corev1.Pod, all bool) error {
	if !v.mounted || all {
		used := v.usedVolumes(pod)
		var errs []error
		for _, vol := range pod.Spec.Volumes {
			if !used[vol.Name] {
				continue
			}
			if err := v.prepare(ctx, pod, vol); err != nil {
				errs = append(errs, fmt.Errorf("volume %s: %w", vol.Name, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		v.mounted = true
		return nil
	}
	for _, t := range v.tokens {
		if time.Now().After(t.refreshAt) {
			if err := v.writeToken(ctx, pod, t); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *podVolumes) prepare(ctx context.Context, pod *corev1.Pod, vol corev1.Volume) error {
	if vol.HostPath != nil {
		// The lab never creates anything on the host for a pod.
		if _, err := os.Stat(vol.HostPath.Path); err != nil {
			return fmt.Errorf("hostPath %s: %w (creating host paths is %v)", vol.HostPath.Path, err, errNotSupported)
		}
		v.dirs[vol.Name] = vol.HostPath.Path
		return nil
	}
	dir := podVolumeDir(v.w.dir, vol.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v.dirs[vol.Name] = dir
	cs := v.w.n.cs.CoreV1()
	switch {
	case vol.EmptyDir != nil:
		return nil
	case vol.Projected != nil:
		mode := os.FileMode(ptr.Deref(vol.Projected.DefaultMode, 0o644))
		for _, src := range vol.Projected.Sources {
			switch {
			case src.ServiceAccountToken != nil:
				path := filepath.Join(dir, src.ServiceAccountToken.Path)
				if t, ok := v.tokens[path]; ok && time.Now().Before(t.refreshAt) {
					continue
				}
				t := &tokenFile{
					path:       path,
					audience:   src.ServiceAccountToken.Audience,
					expSeconds: ptr.Deref(src.ServiceAccountToken.ExpirationSeconds, 3607),
					mode:       mode,
				}
				if err := v.writeToken(ctx, pod, t); err != nil {
					return err
				}
				v.tokens[path] = t
			case src.ConfigMap != nil:
				cm, err := cs.ConfigMaps(pod.Namespace).Get(ctx, src.ConfigMap.Name, metav1.GetOptions{})
				if err != nil {
					if apierrors.IsNotFound(err) && ptr.Deref(src.ConfigMap.Optional, false) {
						continue
					}
					return fmt.Errorf("config map %s: %w", src.ConfigMap.Name, err)
				}
				if err := writeKeys(dir, stringData(cm.Data, cm.BinaryData), src.ConfigMap.Items, mode); err != nil {
					return err
				}
			case src.Secret != nil:
				s, err := cs.Secrets(pod.Namespace).Get(ctx, src.Secret.Name, metav1.GetOptions{})
				if err != nil {
					if apierrors.IsNotFound(err) && ptr.Deref(src.Secret.Optional, false) {
						continue
					}
					return fmt.Errorf("secret %s: %w", src.Secret.Name, err)
				}
				if err := writeKeys(dir, s.Data, src.Secret.Items, mode); err != nil {
					return err
				}
			case src.DownwardAPI != nil:
				if err := v.writeDownward(dir, pod, src.DownwardAPI.Items, mode); err != nil {
					return err
				}
			default:
				return fmt.Errorf("projected source %v", errNotSupported)
			}
		}
		return nil
	case vol.Secret != nil:
		s, err := cs.Secrets(pod.Namespace).Get(ctx, vol.Secret.SecretName, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && ptr.Deref(vol.Secret.Optional, false) {
				return nil
			}
			return fmt.Errorf("secret %s: %w", vol.Secret.SecretName, err)
		}
		return writeKeys(dir, s.Data, vol.Secret.Items, os.FileMode(ptr.Deref(vol.Secret.DefaultMode, 0o644)))
	case vol.ConfigMap != nil:
		cm, err := cs.ConfigMaps(pod.Namespace).Get(ctx, vol.ConfigMap.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) && ptr.Deref(vol.ConfigMap.Optional, false) {
				return nil
			}
			return fmt.Errorf("config map %s: %w", vol.ConfigMap.Name, err)
		}
		return writeKeys(dir, stringData(cm.Data, cm.BinaryData), vol.ConfigMap.Items, os.FileMode(ptr.Deref(vol.ConfigMap.DefaultMode, 0o644)))
	case vol.DownwardAPI != nil:
		return v.writeDownward(dir, pod, vol.DownwardAPI.Items, os.FileMode(ptr.Deref(vol.DownwardAPI.DefaultMode, 0o644)))
	}
	return fmt.Errorf("volume type %v", errNotSupported)
}

// writeToken requests a token for the pod's service account, bound to the
// pod (so it dies with it), with the node's identity - exactly what the
// NodeRestriction admission plugin allows a kubelet - and writes it.
func (v *podVolumes) writeToken(ctx context.Context, pod *corev1.Pod, t *tokenFile) error {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(t.expSeconds),
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	if t.audience != "" {
		tr.Spec.Audiences = []string{t.audience}
	}
	issued := time.Now()
	res, err := v.w.n.cs.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	if err := os.MkdirAll(filepath.Dir(t.path), 0o755); err != nil {
		return err
	}
	if err := writeFileAtomic(t.path, []byte(res.Status.Token), t.mode); err != nil {
		return err
	}
	// Renew at 80% of the lifetime, and at least daily, as the kubelet.
	ttl := res.Status.ExpirationTimestamp.Sub(issued)
	t.refreshAt = issued.Add(min(ttl*8/10, 24*time.Hour))
	return nil
}

func stringData(data map[string]string, bin map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range data {
		out[k] = []byte(v)
	}
	for k, v := range bin {
		out[k] = v
	}
	return out
}

// writeKeys writes the selected keys (all when items is empty) as files.
func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath, mode os.FileMode) error {
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("key %q not found", it.Key)
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		p := filepath.Join(dir, filepath.Clean("/"+it.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(p, val, m); err != nil {
			return err
		}
	}
	return nil
}

func (v *podVolumes) writeDownward(dir string, pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode os.FileMode) error {
	for _, it := range items {
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = v.w.fieldValue(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = v.w.resourceValue(pod, it.ResourceFieldRef)
		default:
			err = fmt.Errorf("downward API item %s has no source", it.Path)
		}
		if err != nil {
			return err
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		p := filepath.Join(dir, filepath.Clean("/"+it.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(p, []byte(val), m); err != nil {
			return err
		}
	}
	return nil
}

// mountsFor returns the bind mounts of a container's volume mounts.
func (v *podVolumes) mountsFor(c corev1.Container) ([]mountSpec, error) {
	var out []mountSpec
	for _, m := range c.VolumeMounts {
		if v == nil {
			return nil, fmt.Errorf("volume %s not prepared", m.Name)
		}
		src, ok := v.dirs[m.Name]
		if !ok {
			return nil, fmt.Errorf("volume %s not prepared", m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+m.SubPath))
		}
		out = append(out, mountSpec{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

// fieldValue resolves a downward-API field path.
func (w *podWorker) fieldValue(pod *corev1.Pod, path string) (string, error) {
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return NodeAddr(w.n.index), nil
	case "status.hostIPs":
		return NodeAddr(w.n.index) + "," + NodeAddr6(w.n.index), nil
	case "status.podIP":
		return w.podIP.String(), nil
	case "status.podIPs":
		if pod.Spec.HostNetwork {
			return w.podIP.String() + "," + NodeAddr6(w.n.index), nil
		}
		return w.podIP.String(), nil
	}
	return "", fmt.Errorf("field %s: %w", path, errNotSupported)
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q\n", k, m[k])
	}
	return b.String()
}

// resourceValue resolves a resourceFieldRef: the container's limit (or
// request), else the node's allocatable, divided and rounded up as the
// kubelet does.
func (w *podWorker) resourceValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if ref.ContainerName == "" || pod.Spec.Containers[i].Name == ref.ContainerName {
			c = &pod.Spec.Containers[i]
			break
		}
	}
	kind, res, ok := strings.Cut(ref.Resource, ".")
	if !ok || c == nil {
		return "", fmt.Errorf("resource %s: %w", ref.Resource, errNotSupported)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(res)]
	if !ok {
		alloc := map[string]string{"cpu": "4", "memory": "8Gi", "ephemeral-storage": "20Gi"}
		s, ok := alloc[res]
		if !ok {
			return "", fmt.Errorf("resource %s: %w", ref.Resource, errNotSupported)
		}
		q = resource.MustParse(s)
	}
	div := ref.Divisor
	if div.IsZero() {
		div = resource.MustParse("1")
	}
	if res == "cpu" {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(div.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(div.Value()))), 10), nil
}

// containerEnv builds a container's environment as the kubelet does: the
// in-cluster API server variables, envFrom, then env with $(VAR)
// expansion. There is no kube-proxy in the lab, so the API server
// variables name its lab address rather than the kubernetes Service.
func (w *podWorker) containerEnv(ctx context.Context, pod *corev1.Pod, c corev1.Container) ([]string, error) {
	hostname := w.n.name
	if !pod.Spec.HostNetwork {
		hostname = pod.Name
	}
	env := newEnvList()
	env.set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	env.set("HOSTNAME", hostname)
	env.set("HOME", "/root")
	env.set("KUBERNETES_SERVICE_HOST", APIServerAddr)
	env.set("KUBERNETES_SERVICE_PORT", strconv.Itoa(APIServerPort))
	env.set("KUBERNETES_SERVICE_PORT_HTTPS", strconv.Itoa(APIServerPort))
	env.set("KUBERNETES_PORT", fmt.Sprintf("tcp://%s:%d", APIServerAddr, APIServerPort))
	cs := w.n.cs.CoreV1()
	for _, from := range c.EnvFrom {
		var data map[string][]byte
		switch {
		case from.ConfigMapRef != nil:
			cm, err := cs.ConfigMaps(pod.Namespace).Get(ctx, from.ConfigMapRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(from.ConfigMapRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("envFrom config map %s: %w", from.ConfigMapRef.Name, err)
			}
			data = stringData(cm.Data, cm.BinaryData)
		case from.SecretRef != nil:
			s, err := cs.Secrets(pod.Namespace).Get(ctx, from.SecretRef.Name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) && ptr.Deref(from.SecretRef.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("envFrom secret %s: %w", from.SecretRef.Name, err)
			}
			data = s.Data
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env.set(from.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env.set(e.Name, expand(e.Value, env.lookup))
			continue
		}
		var val string
		var err error
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			val, err = w.fieldValue(pod, vf.FieldRef.FieldPath)
		case vf.ResourceFieldRef != nil:
			ref := *vf.ResourceFieldRef
			if ref.ContainerName == "" {
				ref.ContainerName = c.Name
			}
			val, err = w.resourceValue(pod, &ref)
		case vf.ConfigMapKeyRef != nil:
			var cm *corev1.ConfigMap
			cm, err = cs.ConfigMaps(pod.Namespace).Get(ctx, vf.ConfigMapKeyRef.Name, metav1.GetOptions{})
			if err == nil {
				var ok bool
				if val, ok = cm.Data[vf.ConfigMapKeyRef.Key]; !ok && !ptr.Deref(vf.ConfigMapKeyRef.Optional, false) {
					err = fmt.Errorf("key %s not in config map %s", vf.ConfigMapKeyRef.Key, vf.ConfigMapKeyRef.Name)
				}
			} else if apierrors.IsNotFound(err) && ptr.Deref(vf.ConfigMapKeyRef.Optional, false) {
				continue
			}
		case vf.SecretKeyRef != nil:
			var s *corev1.Secret
			s, err = cs.Secrets(pod.Namespace).Get(ctx, vf.SecretKeyRef.Name, metav1.GetOptions{})
			if err == nil {
				b, ok := s.Data[vf.SecretKeyRef.Key]
				if !ok && !ptr.Deref(vf.SecretKeyRef.Optional, false) {
					err = fmt.Errorf("key %s not in secret %s", vf.SecretKeyRef.Key, vf.SecretKeyRef.Name)
				}
				val = string(b)
			} else if apierrors.IsNotFound(err) && ptr.Deref(vf.SecretKeyRef.Optional, false) {
				continue
			}
		default:
			err = fmt.Errorf("env %s: %w", e.Name, errNotSupported)
		}
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		env.set(e.Name, val)
	}
	return env.list(), nil
}

// envList is an ordered environment with last-wins assignment.
type envList struct {
	order []string
	vals  map[string]string
}

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.order = append(e.order, k)
	}
	e.vals[k] = v
}

func (e *envList) lookup(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) list() []string {
	out := make([]string, 0, len(e.order))
	for _, k := range e.order {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// expand applies Kubernetes' $(VAR) expansion: a defined variable is
// replaced, an undefined one is left as written, and $$ escapes a $.
func expand(s string, lookup func(string) (string, bool)) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// expandAll expands $(VAR) references in a command line against env.
func expandAll(argv []string, env []string) []string {
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = expand(a, lookup)
	}
	return out
}
