// Command image builds keyward's container image without a container
// daemon, and runs it without one. See docs/container.md.
//
//	go run . build [-repo ../..] [-out DIR] [-version V]
//	go run . run -layout DIR/layout
//
// build compiles a static keyward (CGO_ENABLED=0, -trimpath), assembles
// the same image as the Dockerfile beside this file and writes it as an OCI
// image layout (DIR/layout) and a tarball for "docker load" and "podman
// load" (DIR/keyward-image.tar). run extracts an image layout into a root
// filesystem and starts the image's entrypoint and command in it with
// chroot as the image's user (it needs root), then checks that /healthz
// answers, that the image's HEALTHCHECK passes, that the process is not
// root and that SIGTERM stops it with exit status 0.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("give a command: build or run (see docs/container.md)")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "build":
		o := buildOptions{}
		fs.StringVar(&o.repo, "repo", "../..", "root of the keyward repository")
		fs.StringVar(&o.out, "out", "out", "directory to write layout/ and keyward-image.tar to")
		fs.StringVar(&o.version, "version", "", "version of the binary and the image (empty: the module's, and the tag keyward:dev)")
		fs.StringVar(&o.arch, "arch", runtime.GOARCH, "GOARCH of the image")
		fs.StringVar(&o.caCerts, "ca-certificates", caPath, "CA certificate bundle to put in the image")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := build(o)
		if err != nil {
			return err
		}
		fmt.Printf("image %s (%s)\nOCI layout: %s\ntarball:    %s (docker load -i / podman load -i)\n", res.tag, res.digest, res.layout, res.tarball)
		return nil
	case "run":
		var layoutDir string
		fs.StringVar(&layoutDir, "layout", "out/layout", "OCI image layout written by build")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		rep, err := runImage(layoutDir)
		if err != nil {
			return err
		}
		fmt.Print(rep)
		return nil
	}
	return fmt.Errorf("unknown command %q: use build or run", args[0])
}
