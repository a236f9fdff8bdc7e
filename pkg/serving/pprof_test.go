package serving

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// TestServePprof: off by default; when on, the profiles are served until
// the context ends.
func TestServePprof(t *testing.T) {
	for _, off := range []string{"", "0"} {
		if a, err := ServePprof(context.Background(), off, logr.Discard()); a != nil || err != nil {
			t.Errorf("ServePprof(%q) = %v, %v; want nothing served", off, a, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := ServePprof(ctx, "127.0.0.1:0", logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + a.String() + "/debug/pprof/cmdline"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", url, resp.Status)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url)
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("still served after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := ServePprof(context.Background(), "127.0.0.1:notaport", logr.Discard()); err == nil {
		t.Error("a bad address was accepted")
	}
}
