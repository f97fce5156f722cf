package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validManifest(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestValidAccepted: a correct rendering passes whole, so the checks below
// fail for their one change and nothing else.
func TestValidAccepted(t *testing.T) {
	objs, problems := Validate([]byte(validManifest(t)))
	if len(problems) > 0 {
		t.Fatalf("problems in a valid rendering:\n%s", strings.Join(problems, "\n"))
	}
	if len(objs) != 7 {
		t.Fatalf("decoded %d objects, want 7", len(objs))
	}
}

// TestRefused breaks one field of the valid rendering at a time: each must
// be reported, naming the field.
func TestRefused(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown field", "  replicas: 3\n", "  replicas: 3\n  replica: 3\n", `unknown field "spec.replica"`},
		{"wrong type", "  replicas: 3\n", "  replicas: three\n", "replicas"},
		{"duplicate field", "  type: ClusterIP\n", "  type: ClusterIP\n  type: NodePort\n", `key "type" already set`},
		{"bad quantity", "memory: 64Mi", "memory: 64 megs", "quantities must match"},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", "no kind \"PodDisruptionBudgets\""},
		{"unknown ServiceMonitor field", "      interval: 30s\n", "      interval: 30s\n      scrapeEvery: 30s\n", `unknown field "spec.endpoints[0].scrapeEvery"`},
		{"ServiceMonitor duration", "interval: 30s", "interval: 30 seconds", "spec.endpoints[0].interval"},
		{"ServiceMonitor port", "    - port: http\n", "    - port: web\n", "spec.endpoints[0].port: Not found: \"web\""},
		{"bad name", "  name: kw\nspec:\n  replicas", "  name: KW\nspec:\n  replicas", "metadata.name"},
		{"selector mismatch", "      labels:\n        app.kubernetes.io/name: keyward\n    spec:", "      labels:\n        app.kubernetes.io/name: other\n    spec:", "`selector` does not match template `labels`"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem: Invalid value"},
		{"root user", "runAsNonRoot: true\n        runAsUser: 65532", "runAsNonRoot: false\n        runAsUser: 0", "runAsNonRoot: Invalid value"},
		{"privilege escalation", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation: Invalid value"},
		{"capabilities kept", "drop: [ALL]", "drop: [NET_RAW]", "capabilities.drop: Required value"},
		{"capability added", "drop: [ALL]", "drop: [ALL]\n              add: [NET_ADMIN]", "capabilities.add: Forbidden"},
		{"pepper as plain value", "            - name: KEYWARD_PEPPERS\n              valueFrom:\n                secretKeyRef:\n                  name: kw\n                  key: peppers\n", "            - name: KEYWARD_PEPPERS\n              value: 1:hex:00\n", "KEYWARD_PEPPERS carries a secret"},
		{"password in a value", "value: info", "value: postgres://kw:pw@db/kw", "a URL with a password"},
		{"pepper in the ConfigMap", "    log_format: json\n", "    log_format: json\n    peppers: {1: 'hex:00'}\n", "data[keyward.yaml].peppers: Forbidden"},
		{"liveness elsewhere", "path: /healthz", "path: /", "livenessProbe.httpGet.path"},
		{"readiness elsewhere", "path: /readyz", "path: /healthz", "readinessProbe.httpGet.path"},
		{"probe on a port not named", "              path: /readyz\n              port: http", "              path: /readyz\n              port: metrics", "readinessProbe.httpGet.port: Not found"},
		{"token mounted", "      automountServiceAccountToken: false\n", "", "automountServiceAccountToken: Invalid value"},
		{"mount of no volume", "            - name: data\n              mountPath", "            - name: state\n              mountPath", "volumeMounts[0].name: Not found"},
		{"service targets no port", "targetPort: http", "targetPort: web", "targetPort: Not found"},
		{"request above limit", "memory: 64Mi", "memory: 512Mi", "must be less than or equal to memory limit"},
		{"PDB with both", "  maxUnavailable: 1\n", "  maxUnavailable: 1\n  minAvailable: 1\n", "exactly one of minAvailable and maxUnavailable"},
		{"PDB selects nothing", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: keyward", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: other", "PodDisruptionBudget kw: spec.selector"},
		{"PVC with several replicas", "          emptyDir: {}", "          persistentVolumeClaim:\n            claimName: kw", "a SQLite volume is for one pod at a time"},
	}
	base := validManifest(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("testdata/valid.yaml has no %q", tc.old)
			}
			_, problems := Validate([]byte(strings.Replace(base, tc.old, tc.new, 1)))
			all := strings.Join(problems, "\n")
			if !strings.Contains(all, tc.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tc.want, all)
			}
		})
	}
}

// TestRunExitCodes: 0 and a summary for a valid file, 1 and the problems
// for an invalid one, 2 for a usage error.
func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	base := validManifest(t)
	if err := os.WriteFile(good, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(base, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{good}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "7 objects valid") {
		t.Fatalf("good: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{good, bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), bad+": Deployment kw: spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem") {
		t.Fatalf("bad: exit %d, stderr %q", code, errOut.String())
	}
	if code := run(nil, &out, &errOut); code != 2 {
		t.Fatalf("no file: exit %d, want 2", code)
	}
}
