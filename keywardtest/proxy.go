package keywardtest

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy in front of a real service (PostgreSQL, Redis) that a
// test can cut and restore, to cause an outage without stopping the service,
// which other tests share.
type Proxy struct {
	target string
	ln     net.Listener

	stalled atomic.Bool
	// answers counts the reads forwarded from the target to a client.
	answers atomic.Int64

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on a loopback port and forwards each connection to
// target (host:port) until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr returns the proxy's host:port, to use in place of the target's.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection and makes new ones close at once, as if
// the service had gone away.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Answers returns how many times bytes have come back from the target and
// been forwarded to a client. A test of an idle connection waits for it to
// grow by the number of health checks (pings) it expects answered: a
// positive sign that time has passed with the connection in use, where
// waiting for a while proves nothing on a busy machine.
func (p *Proxy) Answers() int64 { return p.answers.Load() }

// Stall keeps every connection open but drops the bytes in both
// directions, as a network partition does: nothing tells either side that
// the other is gone.
func (p *Proxy) Stall() { p.stalled.Store(true) }

// Restore undoes Cut and Stall: bytes flow again and new connections are
// forwarded.
func (p *Proxy) Restore() {
	p.stalled.Store(false)
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(c) })
	}
}

// track registers c to be closed by Cut; false if the proxy is cut.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *Proxy) forward(c net.Conn) {
	defer c.Close()
	if !p.track(c) {
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, count *atomic.Int64) {
		// Ends when either side closes, or on Cut.
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.stalled.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					break
				}
				if count != nil {
					count.Add(1)
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c, nil)
	go pipe(c, up, &p.answers)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}
