package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// waitTimeout bounds every wait of runImage for the container.
const waitTimeout = 30 * time.Second

// runImage starts the image of the OCI layout at dir as a container would,
// without a daemon, and checks that it serves; it returns a report.
func runImage(dir string) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("run needs root: it extracts the image with its owners and starts it with chroot as the image's user")
	}
	img, err := layoutImage(dir)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg := cf.Config
	root, err := os.MkdirTemp("", "keyward-rootfs-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(root)
	if err := os.Chmod(root, 0o755); err != nil { // "/" of a container
		return "", err
	}
	if err := extract(img, root); err != nil {
		return "", fmt.Errorf("extracting the image: %w", err)
	}
	if len(cfg.Entrypoint) == 0 {
		return "", errors.New("the image has no entrypoint")
	}
	if err := onlyExecutable(root, cfg.Entrypoint[0]); err != nil {
		return "", err
	}
	if err := static(filepath.Join(root, cfg.Entrypoint[0])); err != nil {
		return "", err
	}
	uid, gid, err := numericUser(cfg.User)
	if err != nil {
		return "", err
	}

	// The one substitution: the listen address, to a free loopback port.
	addr, err := freeLoopback()
	if err != nil {
		return "", err
	}
	env, imagePort, err := withListen(cfg.Env, addr)
	if err != nil {
		return "", err
	}
	c := &container{root: root, uid: uid, gid: gid, env: env, dir: cfg.WorkingDir}
	srv, log := c.command(append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...))
	if err := srv.Start(); err != nil {
		return "", fmt.Errorf("starting %q in the image: %w", append(cfg.Entrypoint, cfg.Cmd...), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Process.Kill()
			<-exited
		}
	}()
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf(format+"; its log:\n%s", append(args, log)...)
	}

	health, err := waitHealthy(addr, exited)
	if err != nil {
		return fail("%v", err)
	}
	ids, err := processIDs(srv.Process.Pid)
	if err != nil {
		return fail("%v", err)
	}
	for _, id := range ids {
		if id != uid && id != gid || id == 0 {
			return fail("the server runs with the ids %v, want %d:%d (the image's user) and never root", ids, uid, gid)
		}
	}
	hc := cfg.Healthcheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		return fail("the image has no HEALTHCHECK CMD (without a shell only the exec form can run): %v", hc)
	}
	probe, err := withProbePort(hc.Test[1:], imagePort, addr)
	if err != nil {
		return fail("%v", err)
	}
	pc, plog := c.command(probe)
	if err := pc.Run(); err != nil {
		return fail("the HEALTHCHECK %q failed: %v: %s", probe, err, plog)
	}
	data := envValue(cfg.Env, "KEYWARD_DATA")
	if fi, err := os.Stat(filepath.Join(root, data)); err != nil {
		return fail("the data directory %s was not created: %v", data, err)
	} else if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != 0o700 {
		return fail("the data directory %s has owner %d and mode %04o, want %d and 0700", data, st.Uid, fi.Mode().Perm(), uid)
	}

	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		return fail("SIGTERM: %v", err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			return fail("on SIGTERM the server exited with %v, want status 0", err)
		}
	case <-time.After(waitTimeout):
		return fail("the server did not stop within %s of SIGTERM", waitTimeout)
	}
	d, _ := img.Digest()
	return fmt.Sprintf("image %s ran as %d:%d in a chroot: %s answered %s, the HEALTHCHECK %q passed, the entrypoint is static and the only executable, SIGTERM stopped it with status 0\n",
		d, uid, gid, "/healthz", health, probe), nil
}

// layoutImage reads the one image of the OCI layout at dir and validates
// it (digests, sizes, config and layers agree).
func layoutImage(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("the OCI layout %s holds %d images, want 1", dir, len(m.Manifests))
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	if err := validate.Image(img); err != nil {
		return nil, fmt.Errorf("the image is not valid: %w", err)
	}
	return img, nil
}

// extract writes the flattened file system of img under root, with the
// owners and modes of its entries.
func extract(img v1.Image, root string) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		target := filepath.Join(root, name)
		mode := fs.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: entry type %q is not expected in keyward's image", name, h.Typeflag)
		}
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
		if err := os.Chmod(target, mode); err != nil {
			return err
		}
	}
}

// onlyExecutable checks that entrypoint is the one executable file under
// root: no shell, no other tools.
func onlyExecutable(root, entrypoint string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(path, root+string(filepath.Separator))
		if fi.Mode()&0o111 != 0 && rel != entrypoint {
			return fmt.Errorf("the image holds the executable %s besides its entrypoint %s: it must have no shell or other tools", rel, entrypoint)
		}
		return nil
	})
}

// static checks that the ELF file at path needs no dynamic loader or
// shared library.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the entrypoint is not an ELF binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is dynamically linked (it has %s): build it with CGO_ENABLED=0", filepath.Base(path), p.Type)
		}
	}
	return nil
}

// numericUser parses the image's "UID:GID"; the image has no shell or
// tools that could resolve names, so it uses numbers.
func numericUser(user string) (int, int, error) {
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("the image's user %q is not UID:GID", user)
	}
	if uid == 0 || gid == 0 {
		return 0, 0, fmt.Errorf("the image's user %q is root: use the keyward user", user)
	}
	return uid, gid, nil
}

// freeLoopback returns a loopback address nothing listens on.
func freeLoopback() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// withListen returns env with KEYWARD_LISTEN set to addr, and the port the
// image listens on.
func withListen(env []string, addr string) ([]string, string, error) {
	listen := envValue(env, "KEYWARD_LISTEN")
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, "", fmt.Errorf("the image's KEYWARD_LISTEN %q is not host:port", listen)
	}
	out := []string{}
	for _, kv := range env {
		if !strings.HasPrefix(kv, "KEYWARD_LISTEN=") {
			out = append(out, kv)
		}
	}
	return append(out, "KEYWARD_LISTEN="+addr), port, nil
}

// withProbePort returns the health check command with the image's loopback
// address replaced by addr; it fails if the check does not probe the port
// the image listens on.
func withProbePort(argv []string, port, addr string) ([]string, error) {
	from := "127.0.0.1:" + port
	out, n := make([]string, len(argv)), 0
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, from, addr)
		if out[i] != a {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("the HEALTHCHECK %q does not probe %s, where the image listens", argv, from)
	}
	return out, nil
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// waitHealthy polls http://addr/healthz until it answers 200 (bounded by
// waitTimeout), or the server exits.
func waitHealthy(addr string, exited <-chan error) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	var last error
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			var body struct{ Status string }
			derr := json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && derr == nil && body.Status == "ok" {
				return fmt.Sprintf("%d %q", resp.StatusCode, body.Status), nil
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		last = err
		select {
		case err := <-exited:
			return "", fmt.Errorf("the server exited (%v) before /healthz answered", err)
		case <-ctx.Done():
			return "", fmt.Errorf("/healthz did not answer 200 within %s: %v", waitTimeout, last)
		case <-tick.C:
		}
	}
}

// processIDs returns the real, effective, saved and file-system user and
// group ids of process pid.
func processIDs(pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			ids = appendInts(ids, rest)
		} else if rest, ok := strings.CutPrefix(line, "Gid:"); ok {
			ids = appendInts(ids, rest)
		}
	}
	if len(ids) != 8 {
		return nil, fmt.Errorf("/proc/%d/status: found %d ids, want 8", pid, len(ids))
	}
	return ids, nil
}

func appendInts(ids []int, s string) []int {
	for _, f := range strings.Fields(s) {
		if n, err := strconv.Atoi(f); err == nil {
			ids = append(ids, n)
		}
	}
	return ids
}

// container runs commands in the extracted image as the image's user.
type container struct {
	root     string
	uid, gid int
	env      []string
	dir      string
}

// command returns argv in the container and the buffer its output goes
// to. The server's stdout, where the first start prints the root key, is
// discarded: only its log (stderr) is kept for error reports.
func (c *container) command(argv []string) (*exec.Cmd, *syncBuffer) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     c.root,
		Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), Groups: []uint32{}},
		Pdeathsig:  syscall.SIGKILL,
	}
	log := &syncBuffer{}
	cmd.Stderr = log
	return cmd, log
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
