package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildOptions are the flags of "build".
type buildOptions struct {
	repo, out, version, arch, caCerts string
}

// buildResult says what build wrote.
type buildResult struct {
	tag, digest, layout, tarball string
	image                        v1.Image
}

// build compiles keyward and writes its image as an OCI layout and a
// tarball under o.out.
func build(o buildOptions) (*buildResult, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	bin := filepath.Join(o.out, "keyward")
	if err := compile(o.repo, bin, o.arch, o.version); err != nil {
		return nil, err
	}
	binary, err := readFile(bin, "the keyward binary")
	if err != nil {
		return nil, err
	}
	ca, err := readFile(o.caCerts, "the CA certificates (install the ca-certificates package, or pass -ca-certificates)")
	if err != nil {
		return nil, err
	}
	created, err := sourceDate()
	if err != nil {
		return nil, err
	}
	img, err := assemble(binary, ca, o.arch, o.version, created)
	if err != nil {
		return nil, fmt.Errorf("assembling the image: %w", err)
	}
	tagVersion := o.version
	if tagVersion == "" {
		tagVersion = "dev"
	}
	tag, err := name.NewTag("keyward:"+tagVersion, name.WithDefaultRegistry(""))
	if err != nil {
		return nil, fmt.Errorf("-version %q cannot be an image tag: %w", o.version, err)
	}
	res := &buildResult{tag: "keyward:" + tagVersion, layout: filepath.Join(o.out, "layout"), tarball: filepath.Join(o.out, "keyward-image.tar"), image: img}
	if err := writeLayout(res.layout, img, tagVersion); err != nil {
		return nil, err
	}
	if err := tarball.WriteToFile(res.tarball, tag, img); err != nil {
		return nil, fmt.Errorf("writing the tarball: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	res.digest = d.String()
	return res, nil
}

// compile builds a static keyward for linux/arch from repo into out, as the
// Dockerfile's build stage does.
func compile(repo, out, arch, version string) error {
	abs, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", abs, "./cmd/keyward")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/keyward in %s: %w", repo, err)
	}
	return nil
}

// sourceDate is the creation time of the image and of its files:
// SOURCE_DATE_EPOCH when set (reproducible builds), else the Unix epoch, so
// that the same binary gives the same image digest.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: give seconds since 1970, e.g. $(git log -1 --format=%%ct)", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// writeLayout writes img as the one image of a new OCI image layout at dir,
// named ref.
func writeLayout(dir string, img v1.Image, ref string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err == nil {
		err = p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
	}
	if err != nil {
		return fmt.Errorf("writing the OCI layout: %w", err)
	}
	return nil
}
