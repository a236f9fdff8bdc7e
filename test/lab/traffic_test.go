package lab

import (
	"errors"
	"testing"
	"time"
)

func TestParseAnswer(t *testing.T) {
	a, err := ParseAnswer("pod=web-1 node=lbl-node2 client=198.19.20.1:40000 server=198.18.130.4:80 proto=tcp\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Answer{Pod: "web-1", Node: "lbl-node2", Client: "198.19.20.1:40000", Server: "198.18.130.4:80", Proto: "tcp"}
	if a != want || a.ClientAddrSeen() != "198.19.20.1" {
		t.Errorf("got %+v (%s), want %+v", a, a.ClientAddrSeen(), want)
	}
	if _, err := ParseAnswer("<html>nginx</html>"); err == nil {
		t.Error("a foreign answer parsed")
	}
}

func TestOutage(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	fail := errors.New("refused")
	s := []Sample{{At: at(0)}, {At: at(50), Err: fail}, {At: at(100)}, {At: at(150), Err: fail}, {At: at(200), Err: fail}, {At: at(250), Err: fail}, {At: at(300)}}
	// From the first failure after the start to the first success after it.
	if d, n := Outage(s, at(120)); d != 150*time.Millisecond || n != 3 {
		t.Errorf("outage %s with %d failed, want 150ms and 3", d, n)
	}
	if d, n := Outage(s[:1], t0); d != 0 || n != 0 {
		t.Errorf("no failure: %s %d", d, n)
	}
	if d, n := Outage(s[:5], at(120)); d != 50*time.Millisecond || n != 2 {
		t.Errorf("still failing at the end: %s %d, want to the last sample", d, n)
	}
}
