// Command probe is the e2e suite's test program for the lab kubelet. It is
// not lbstack: lbstack's components are not built yet, so the suite
// registers this program as an image of its own (lbstack-e2e-probe) and runs
// it the way lbstack's components will run - as a real process in a node's
// namespace, with the pod's own service-account token, through client-go's
// in-cluster configuration. It reports what it sees over HTTP:
//
//	/healthz  readiness: 503 until --ready-after has passed, or after /set?ready=false
//	/livez    liveness: 500 after /set?live=false
//	/report   JSON: PID, hostname, network namespace, token claims, and the
//	          result of one request its RBAC allows and one it does not
//
// With --tls-listen it also serves an admission webhook, /validate, that
// refuses objects named deny-me.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Report is what /report returns; the e2e suite decodes the same shape.
type Report struct {
	PID      int    `json:"pid"`
	Hostname string `json:"hostname"`
	NetNS    string `json:"netns"`
	MountNS  string `json:"mountns"`
	// Namespace is the content of the mounted namespace file.
	Namespace string `json:"namespace"`
	HasCA     bool   `json:"hasCA"`
	// TokenSubject and TokenPod come from the mounted token's claims.
	TokenSubject string `json:"tokenSubject"`
	TokenPod     string `json:"tokenPod"`
	// Allowed is the error of the request RBAC allows ("" on success).
	Allowed string `json:"allowed"`
	// ForbiddenCode is the HTTP status of the request RBAC refuses.
	ForbiddenCode int               `json:"forbiddenCode"`
	Env           map[string]string `json:"env"`
}

func main() {
	listen := flag.String("listen", ":17001", "address to serve on")
	allowedCM := flag.String("allowed-configmap", "", "config map in the pod's namespace that the pod's RBAC lets it read")
	forbiddenNS := flag.String("forbidden-namespace", "kube-system", "namespace whose secrets the pod's RBAC does not let it list")
	readyAfter := flag.Duration("ready-after", 0, "report not ready for this long after start")
	tlsListen := flag.String("tls-listen", "", "also serve an admission webhook (/validate) over TLS on this address")
	tlsDir := flag.String("tls-dir", "", "directory with tls.crt and tls.key for --tls-listen")
	flag.Parse()
	start := time.Now()
	var notReady, notLive atomic.Bool

	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("in-cluster config: %v", err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatal(err)
	}
	ns := strings.TrimSpace(readFile(saDir + "/namespace"))
	log.Printf("probe pid %d serving %s in namespace %s", os.Getpid(), *listen, ns)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if time.Since(start) < *readyAfter || notReady.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		if notLive.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("ready"); v != "" {
			notReady.Store(v == "false")
		}
		if v := r.URL.Query().Get("live"); v != "" {
			notLive.Store(v == "false")
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/report", func(w http.ResponseWriter, r *http.Request) {
		rep := Report{PID: os.Getpid(), Namespace: ns, Env: map[string]string{}}
		rep.Hostname, _ = os.Hostname()
		rep.NetNS, _ = os.Readlink("/proc/self/ns/net")
		rep.MountNS, _ = os.Readlink("/proc/self/ns/mnt")
		_, err := os.Stat(saDir + "/ca.crt")
		rep.HasCA = err == nil
		rep.TokenSubject, rep.TokenPod = claims(readFile(saDir + "/token"))
		for _, k := range []string{"POD_NAME", "NODE_NAME", "POD_IP", "KUBERNETES_SERVICE_HOST", "GREETING"} {
			rep.Env[k] = os.Getenv(k)
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, *allowedCM, metav1.GetOptions{}); err != nil {
			rep.Allowed = err.Error()
		}
		_, err = cs.CoreV1().Secrets(*forbiddenNS).List(ctx, metav1.ListOptions{})
		var status apierrors.APIStatus
		switch {
		case err == nil:
			rep.ForbiddenCode = http.StatusOK
		case errors.As(err, &status):
			rep.ForbiddenCode = int(status.Status().Code)
		default:
			rep.ForbiddenCode = -1
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	if *tlsListen != "" {
		wh := http.NewServeMux()
		wh.HandleFunc("/validate", validate)
		go func() {
			log.Fatal(http.ListenAndServeTLS(*tlsListen, *tlsDir+"/tls.crt", *tlsDir+"/tls.key", wh))
		}()
	}
	log.Fatal(http.ListenAndServe(*listen, mux))
}

// validate is an admission webhook that refuses objects named deny-me.
func validate(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "bad admission review", http.StatusBadRequest)
		return
	}
	host, _ := os.Hostname()
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: review.Request.Name != "deny-me"}
	if !resp.Allowed {
		resp.Result = &metav1.Status{Message: "denied by probe webhook in pod " + host}
	}
	review.Response = resp
	review.Request = nil
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

// claims returns a service-account token's subject and bound pod name.
func claims(token string) (sub, pod string) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return "", ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ""
	}
	var c struct {
		Sub string `json:"sub"`
		K8s struct {
			Pod struct {
				Name string `json:"name"`
			} `json:"pod"`
		} `json:"kubernetes.io"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return "", ""
	}
	return c.Sub, c.K8s.Pod.Name
}
