package main

import (
	"archive/tar"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image is. The Dockerfile beside this file declares the same
// (TestDockerfileDeclaresTheSameImage keeps them equal).
const (
	uid, gid    = 65532, 65532 // the keyward user of rootfs/etc/passwd
	listenAddr  = "0.0.0.0:8080"
	port        = "8080"
	dataVolume  = "/data"
	dataDir     = "/data/keyward"
	binaryPath  = "/keyward"
	caPath      = "/etc/ssl/certs/ca-certificates.crt"
	healthURL   = "http://127.0.0.1:" + port + "/healthz"
	licenseSPDX = "Apache-2.0"
)

var (
	//go:embed rootfs/etc/passwd
	passwd []byte
	//go:embed rootfs/etc/group
	group []byte
)

// imageConfig is the run configuration of the image: the non-root user,
// serve on port 8080 with its data under the /data volume, and a health
// check by the binary itself (the image has no shell or curl).
func imageConfig(version string) v1.Config {
	return v1.Config{
		User:       fmt.Sprintf("%d:%d", uid, gid),
		Env:        []string{"KEYWARD_LISTEN=" + listenAddr, "KEYWARD_DATA=" + dataDir},
		Entrypoint: []string{binaryPath},
		Cmd:        []string{"serve"},
		WorkingDir: "/",
		ExposedPorts: map[string]struct{}{
			port + "/tcp": {},
		},
		Volumes: map[string]struct{}{dataVolume: {}},
		Healthcheck: &v1.HealthConfig{
			Test:        []string{"CMD", binaryPath, "healthcheck", "--url", healthURL},
			Interval:    30 * time.Second,
			Timeout:     5 * time.Second,
			StartPeriod: 10 * time.Second,
			Retries:     3,
		},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "keyward",
			"org.opencontainers.image.description": "keyward, a self-hosted API key service",
			"org.opencontainers.image.licenses":    licenseSPDX,
			"org.opencontainers.image.version":     version,
		},
	}
}

// file is one entry of the image's only layer.
type file struct {
	name     string // without the leading slash
	mode     int64
	uid, gid int
	body     []byte // nil for a directory
}

// rootfs lists the files of the image: the static binary, the CA
// certificates, the user and group databases, an empty /data owned by the
// user and a /tmp for SQLite's temporary files. Nothing else: no shell.
func rootfs(binary, caCerts []byte) []file {
	dir := func(name string, mode int64, owner int) file {
		return file{name: name, mode: mode, uid: owner, gid: owner}
	}
	return []file{
		dir("etc", 0o755, 0),
		{name: "etc/passwd", mode: 0o644, body: passwd},
		{name: "etc/group", mode: 0o644, body: group},
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		{name: strings.TrimPrefix(caPath, "/"), mode: 0o644, body: caCerts},
		{name: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, body: binary},
		dir(strings.TrimPrefix(dataVolume, "/"), 0o700, uid),
		dir("tmp", 0o1777, 0),
	}
}

// layerTar writes files as an uncompressed tar stream, every entry dated
// modTime so that the same inputs give the same layer digest.
func layerTar(files []file, modTime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: modTime, Format: tar.FormatPAX}
		if f.body == nil {
			h.Typeflag, h.Name = tar.TypeDir, f.name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// assemble makes the OCI image of binary (a static keyward for linux/arch)
// and caCerts, created at created.
func assemble(binary, caCerts []byte, arch, version string, created time.Time) (v1.Image, error) {
	tarBytes, err := layerTar(rootfs(binary, caCerts), created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "keyward deploy/image build", Comment: "static keyward, CA certificates, user keyward (65532), /data"},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = arch, "linux"
	cf.Created = v1.Time{Time: created}
	cf.Config = imageConfig(version)
	return mutate.ConfigFile(img, cf)
}

// readFile reads path, naming what it is for in the error.
func readFile(path, what string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return b, nil
}
