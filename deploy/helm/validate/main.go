// Command validate checks the manifests the keyward Helm chart renders
// (the output of helm template) without a cluster or a network: every
// object is decoded strictly into the Kubernetes API types (an unknown or
// duplicated field, or a value of the wrong type, is an error), checked with
// the API machinery's validation of names, labels and fields, cross-checked
// (selectors, named ports, volumes), and held to the chart's security
// promises: a read-only root filesystem, non-root, no privilege escalation,
// all capabilities dropped, secrets only through secretKeyRef, probes on
// /healthz and /readyz.
//
// Usage:
//
//	validate FILE...
//
// Each FILE holds the documents of one rendering. validate prints one line
// per problem and exits 1 if there is any, else prints a summary line per
// file and exits 0.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run validates each named file and returns the exit code.
func run(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: validate FILE... (the output of helm template)")
		return 2
	}
	code := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(stderr, "validate: %v\n", err)
			return 2
		}
		objs, problems := Validate(data)
		for _, p := range problems {
			fmt.Fprintf(stderr, "%s: %s\n", name, p)
		}
		if len(problems) > 0 {
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: %d objects valid\n", name, len(objs))
	}
	return code
}
