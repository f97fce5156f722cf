package main

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// dockerfileImage reads the final stage of the Dockerfile into the fields
// of an image config. It knows the instructions the Dockerfile uses.
func dockerfileImage(t *testing.T, version string) v1.Config {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	cont := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cont += s + " "
			continue
		}
		lines = append(lines, cont+line)
		cont = ""
	}
	args := map[string]string{"VERSION": version}
	expand := func(s string) string { return os.Expand(s, func(k string) string { return args[k] }) }
	jsonArray := func(s string) []string {
		var a []string
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			t.Fatalf("Dockerfile: %q is not a JSON array (use the exec form): %v", s, err)
		}
		return a
	}
	var c v1.Config
	for _, line := range lines {
		inst, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(inst) {
		case "FROM":
			c = v1.Config{} // only the last stage is the image
		case "USER":
			c.User = rest
		case "WORKDIR":
			c.WorkingDir = rest
		case "ENV":
			c.Env = append(c.Env, strings.Fields(rest)...)
		case "EXPOSE":
			c.ExposedPorts = map[string]struct{}{}
			for _, p := range strings.Fields(rest) {
				c.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			c.Volumes = map[string]struct{}{}
			for _, v := range jsonArray(rest) {
				c.Volumes[v] = struct{}{}
			}
		case "LABEL":
			k, v, _ := strings.Cut(rest, "=")
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[k] = expand(strings.Trim(v, `"`))
		case "ENTRYPOINT":
			c.Entrypoint = jsonArray(rest)
		case "CMD":
			c.Cmd = jsonArray(rest)
		case "HEALTHCHECK":
			h := &v1.HealthConfig{}
			for {
				opt, more, _ := strings.Cut(rest, " ")
				k, v, ok := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
				if !ok || !strings.HasPrefix(opt, "--") {
					break
				}
				rest = more
				var err error
				switch k {
				case "interval":
					h.Interval, err = time.ParseDuration(v)
				case "timeout":
					h.Timeout, err = time.ParseDuration(v)
				case "start-period":
					h.StartPeriod, err = time.ParseDuration(v)
				case "retries":
					_, err = fmt.Sscan(v, &h.Retries)
				default:
					t.Fatalf("Dockerfile: HEALTHCHECK option %q is not known to this test", opt)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			cmd, ok := strings.CutPrefix(rest, "CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK %q: want CMD [...]", rest)
			}
			h.Test = append([]string{"CMD"}, jsonArray(cmd)...)
			c.Healthcheck = h
		case "ARG", "COPY", "RUN":
		default:
			t.Fatalf("Dockerfile: instruction %s is not known to this test: teach dockerfileImage", inst)
		}
	}
	return c
}

func TestDockerfileDeclaresTheSameImage(t *testing.T) {
	for _, version := range []string{"", "v1.2.3"} {
		got, want := dockerfileImage(t, version), imageConfig(version)
		sort.Strings(got.Env)
		sort.Strings(want.Env)
		if !reflect.DeepEqual(got, want) {
			g, _ := json.MarshalIndent(got, "", "  ")
			w, _ := json.MarshalIndent(want, "", "  ")
			t.Errorf("version %q: the Dockerfile declares\n%s\nthe Go builder\n%s", version, g, w)
		}
	}
}

// The health check probes the port the image listens on and exposes.
func TestHealthcheckProbesTheListenPort(t *testing.T) {
	c := imageConfig("")
	_, port, _ := strings.Cut(envValue(c.Env, "KEYWARD_LISTEN"), ":")
	if _, ok := c.ExposedPorts[port+"/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("listens on %s, exposes %v", port, c.ExposedPorts)
	}
	if _, err := withProbePort(c.Healthcheck.Test[1:], port, "127.0.0.1:1"); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(envValue(c.Env, "KEYWARD_DATA"), dataVolume+"/") {
		t.Errorf("KEYWARD_DATA %q is not in the volume %s", envValue(c.Env, "KEYWARD_DATA"), dataVolume)
	}
}

// entry is a file of the image as the test sees it.
type entry struct {
	mode     int64
	uid, gid int
	size     int64
	typ      byte
}

func TestImageFiles(t *testing.T) {
	binary, ca := []byte("\x7fELF not really"), []byte("-----BEGIN CERTIFICATE-----\n")
	built, err := assemble(binary, ca, "amd64", "v1.2.3", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Written as an OCI layout and read back, validated.
	dir := filepath.Join(t.TempDir(), "layout")
	if err := writeLayout(dir, built, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	img, err := layoutImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]entry{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = entry{h.Mode, h.Uid, h.Gid, h.Size, h.Typeflag}
	}
	want := map[string]entry{
		"etc":                               {0o755, 0, 0, 0, tar.TypeDir},
		"etc/passwd":                        {0o644, 0, 0, int64(len(passwd)), tar.TypeReg},
		"etc/group":                         {0o644, 0, 0, int64(len(group)), tar.TypeReg},
		"etc/ssl":                           {0o755, 0, 0, 0, tar.TypeDir},
		"etc/ssl/certs":                     {0o755, 0, 0, 0, tar.TypeDir},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, 0, int64(len(ca)), tar.TypeReg},
		"keyward":                           {0o755, 0, 0, int64(len(binary)), tar.TypeReg},
		"data":                              {0o700, uid, gid, 0, tar.TypeDir},
		"tmp":                               {0o1777, 0, 0, 0, tar.TypeDir},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("image files:\n got %v\nwant %v", got, want)
	}
	if !strings.Contains(string(passwd), fmt.Sprintf("keyward:x:%d:%d:", uid, gid)) || !strings.Contains(string(group), fmt.Sprintf("keyward:x:%d:", gid)) {
		t.Errorf("rootfs/etc/passwd and group do not name the keyward user %d:%d", uid, gid)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !reflect.DeepEqual(cf.Config, imageConfig("v1.2.3")) || cf.Config.Labels["org.opencontainers.image.licenses"] != "Apache-2.0" {
		t.Errorf("config: %+v", cf)
	}

	// The same inputs give the same image: builds are reproducible.
	again, err := assemble(binary, ca, "amd64", "v1.2.3", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same inputs: %s and %s", d1, d2)
	}
}

// The run check refuses a dynamically linked entrypoint and an image with
// a shell, and accepts the static, lone entrypoint.
func TestRunChecksRefuseShellAndDynamicBinary(t *testing.T) {
	root := t.TempDir()
	exe, err := os.Executable() // this test binary: static or not, per how it was built
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "keyward"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onlyExecutable(root, "/keyward"); err != nil {
		t.Errorf("the lone entrypoint: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/sh"), []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := onlyExecutable(root, "/keyward"); err == nil || !strings.Contains(err.Error(), "/bin/sh") {
		t.Errorf("an image with /bin/sh: %v", err)
	}

	for _, dyn := range []string{"/bin/true", "/usr/bin/true"} {
		if _, err := os.Stat(dyn); err == nil && runtime.GOOS == "linux" {
			if err := static(dyn); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
				t.Errorf("%s (dynamically linked on Debian): %v", dyn, err)
			}
			break
		}
	}
}

func TestNumericUser(t *testing.T) {
	if u, g, err := numericUser("65532:65532"); err != nil || u != 65532 || g != 65532 {
		t.Errorf("65532:65532: %d %d %v", u, g, err)
	}
	for _, bad := range []string{"", "keyward", "0:0", "65532:0", "65532"} {
		if _, _, err := numericUser(bad); err == nil {
			t.Errorf("user %q accepted", bad)
		}
	}
}

// TestImageBuildsAndRuns builds the image from this repository and runs it
// with chroot as its user (root is needed for that; CI runs as root).
func TestImageBuildsAndRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run this as root: it starts the image with chroot")
		}
		t.Skip("needs root to start the image with chroot")
	}
	out := t.TempDir()
	res, err := build(buildOptions{repo: "../..", out: out, version: "v0.0.0-test", arch: runtime.GOARCH, caCerts: caPath})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{res.tarball, filepath.Join(res.layout, "index.json"), filepath.Join(res.layout, "oci-layout")} {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	rep, err := runImage(res.layout)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
}
