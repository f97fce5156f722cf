package main

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// secretEnv names the keyward settings that carry secrets: they must come
// from a Secret (valueFrom.secretKeyRef), never from a plain value.
var secretEnv = []string{
	"KEYWARD_PEPPER", "KEYWARD_PEPPERS", "KEYWARD_MASTER_KEYS",
	"KEYWARD_STORE", "KEYWARD_REDIS_URL", "KEYWARD_ADMIN_API_KEY", "KEYWARD_API_KEY",
}

// promDuration is the pattern of monitoringv1.Duration in the
// ServiceMonitor CRD (its kubebuilder validation marker).
var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

// secretSettings are the keyward.yaml keys that carry secrets.
var secretSettings = []string{"peppers", "master_keys", "store", "redis"}

func invalid(p *field.Path, v any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, m := range msgs {
		errs = append(errs, field.Invalid(p, v, m))
	}
	return errs
}

func deployment(d *appsv1.Deployment) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(spec.Child("replicas"), d.Spec.Replicas, "must be set and not negative"))
	}
	if d.Spec.Selector == nil {
		return append(errs, field.Required(spec.Child("selector"), ""))
	}
	errs = append(errs, metavalidation.ValidateLabelSelector(d.Spec.Selector, metavalidation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	tmpl := spec.Child("template")
	errs = append(errs, metavalidation.ValidateLabels(d.Spec.Template.Labels, tmpl.Child("metadata", "labels"))...)
	if ok, err := selectorMatches(d.Spec.Selector, d.Spec.Template.Labels); err != nil || !ok {
		errs = append(errs, field.Invalid(tmpl.Child("metadata", "labels"), d.Spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if d.Spec.Strategy.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(spec.Child("strategy", "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
	default:
		errs = append(errs, field.NotSupported(spec.Child("strategy", "type"), d.Spec.Strategy.Type, []string{"Recreate", "RollingUpdate"}))
	}
	pod := &d.Spec.Template.Spec
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil && (d.Spec.Replicas == nil || *d.Spec.Replicas > 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType) {
			errs = append(errs, field.Invalid(spec.Child("replicas"), d.Spec.Replicas, "a SQLite volume is for one pod at a time: replicas 1 and strategy Recreate"))
		}
	}
	return append(errs, podSpec(pod, tmpl.Child("spec"))...)
}

// podSpec checks the fields the API server would reject and the chart's
// security promises.
func podSpec(pod *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		errs = append(errs, field.Invalid(p.Child("automountServiceAccountToken"), pod.AutomountServiceAccountToken, "must be false: keyward never talks to the Kubernetes API"))
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		errs = append(errs, field.Forbidden(p, "no host namespaces"))
	}
	volumes := map[string]bool{}
	for i, v := range pod.Volumes {
		vp := p.Child("volumes").Index(i)
		errs = append(errs, invalid(vp.Child("name"), v.Name, validation.IsDNS1123Label(v.Name))...)
		if volumes[v.Name] {
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		volumes[v.Name] = true
		if v.HostPath != nil {
			errs = append(errs, field.Forbidden(vp.Child("hostPath"), "no host paths"))
		}
	}
	if len(pod.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	for i := range pod.Containers {
		errs = append(errs, container(&pod.Containers[i], pod, volumes, p.Child("containers").Index(i))...)
	}
	return errs
}

func container(ctr *corev1.Container, pod *corev1.PodSpec, volumes map[string]bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, invalid(p.Child("name"), ctr.Name, validation.IsDNS1123Label(ctr.Name))...)
	if strings.TrimSpace(ctr.Image) == "" {
		errs = append(errs, field.Required(p.Child("image"), ""))
	}
	ports := map[string]int32{}
	for i, port := range ctr.Ports {
		pp := p.Child("ports").Index(i)
		errs = append(errs, invalid(pp.Child("containerPort"), port.ContainerPort, validation.IsValidPortNum(int(port.ContainerPort)))...)
		if port.Name != "" {
			errs = append(errs, invalid(pp.Child("name"), port.Name, validation.IsValidPortName(port.Name))...)
			ports[port.Name] = port.ContainerPort
		}
	}
	for i, e := range ctr.Env {
		ep := p.Child("env").Index(i)
		errs = append(errs, invalid(ep.Child("name"), e.Name, validation.IsEnvVarName(e.Name))...)
		if e.Value != "" && e.ValueFrom != nil {
			errs = append(errs, field.Invalid(ep.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
		}
		if slices.Contains(secretEnv, e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			errs = append(errs, field.Forbidden(ep, e.Name+" carries a secret: it must come from valueFrom.secretKeyRef, never a plain value"))
		}
		if hasPassword(e.Value) {
			errs = append(errs, field.Forbidden(ep.Child("value"), "a URL with a password: put it in a Secret and use valueFrom.secretKeyRef"))
		}
		if ref := secretRef(e); ref != nil {
			errs = append(errs, invalid(ep.Child("valueFrom", "secretKeyRef", "name"), ref.Name, validation.IsDNS1123Subdomain(ref.Name))...)
			errs = append(errs, invalid(ep.Child("valueFrom", "secretKeyRef", "key"), ref.Key, validation.IsConfigMapKey(ref.Key))...)
		}
	}
	for i, m := range ctr.VolumeMounts {
		if !volumes[m.Name] {
			errs = append(errs, field.NotFound(p.Child("volumeMounts").Index(i).Child("name"), m.Name))
		}
		if !strings.HasPrefix(m.MountPath, "/") {
			errs = append(errs, field.Invalid(p.Child("volumeMounts").Index(i).Child("mountPath"), m.MountPath, "must be an absolute path"))
		}
	}
	errs = append(errs, probe(ctr.LivenessProbe, "/healthz", ports, p.Child("livenessProbe"))...)
	errs = append(errs, probe(ctr.ReadinessProbe, "/readyz", ports, p.Child("readinessProbe"))...)
	if ctr.StartupProbe != nil {
		errs = append(errs, probe(ctr.StartupProbe, "/healthz", ports, p.Child("startupProbe"))...)
	}
	errs = append(errs, resources(ctr.Resources, p.Child("resources"))...)
	return append(errs, security(ctr.SecurityContext, pod.SecurityContext, p.Child("securityContext"))...)
}

func secretRef(e corev1.EnvVar) *corev1.SecretKeySelector {
	if e.ValueFrom == nil {
		return nil
	}
	return e.ValueFrom.SecretKeyRef
}

// hasPassword reports whether v is a URL carrying a password.
func hasPassword(v string) bool {
	u, err := url.Parse(strings.TrimSpace(v))
	if err != nil || u.User == nil {
		return false
	}
	_, set := u.User.Password()
	return set
}

func probe(pr *corev1.Probe, path string, ports map[string]int32, p *field.Path) field.ErrorList {
	if pr == nil {
		return field.ErrorList{field.Required(p, "keyward's probes answer on "+path)}
	}
	var errs field.ErrorList
	if pr.HTTPGet == nil || pr.HTTPGet.Path != path {
		errs = append(errs, field.Invalid(p.Child("httpGet", "path"), pr.HTTPGet, "must be an HTTP GET of "+path))
	} else if pr.HTTPGet.Port.Type == intstr.String {
		if _, ok := ports[pr.HTTPGet.Port.StrVal]; !ok {
			errs = append(errs, field.NotFound(p.Child("httpGet", "port"), pr.HTTPGet.Port.StrVal))
		}
	}
	for name, v := range map[string]int32{"periodSeconds": pr.PeriodSeconds, "timeoutSeconds": pr.TimeoutSeconds, "failureThreshold": pr.FailureThreshold} {
		if v < 1 {
			errs = append(errs, field.Invalid(p.Child(name), v, "must be at least 1"))
		}
	}
	if pr.InitialDelaySeconds < 0 {
		errs = append(errs, field.Invalid(p.Child("initialDelaySeconds"), pr.InitialDelaySeconds, "must not be negative"))
	}
	return errs
}

func resources(r corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Requests.Memory().IsZero() || r.Requests.Cpu().IsZero() {
		errs = append(errs, field.Required(p.Child("requests"), "cpu and memory requests"))
	}
	for name, limit := range r.Limits {
		if req, ok := r.Requests[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests").Key(string(name)), req.String(), "must be less than or equal to "+string(name)+" limit of "+limit.String()))
		}
	}
	return errs
}

// security holds a container to the chart's promise: read-only root
// filesystem, non-root, no privilege escalation, every capability dropped.
func security(sc *corev1.SecurityContext, pod *corev1.PodSecurityContext, p *field.Path) field.ErrorList {
	if sc == nil {
		return field.ErrorList{field.Required(p, "readOnlyRootFilesystem, runAsNonRoot, allowPrivilegeEscalation: false, capabilities.drop: [ALL]")}
	}
	var errs field.ErrorList
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errs = append(errs, field.Invalid(p.Child("readOnlyRootFilesystem"), sc.ReadOnlyRootFilesystem, "must be true"))
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		errs = append(errs, field.Invalid(p.Child("runAsNonRoot"), nonRoot, "must be true"))
	}
	for _, uid := range []*int64{sc.RunAsUser, podUser(pod)} {
		if uid != nil && *uid == 0 {
			errs = append(errs, field.Invalid(p.Child("runAsUser"), 0, "must not be root"))
		}
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, field.Invalid(p.Child("allowPrivilegeEscalation"), sc.AllowPrivilegeEscalation, "must be false"))
	}
	if sc.Privileged != nil && *sc.Privileged {
		errs = append(errs, field.Invalid(p.Child("privileged"), true, "must be false"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		errs = append(errs, field.Required(p.Child("capabilities", "drop"), "must drop ALL"))
	} else if len(sc.Capabilities.Add) > 0 {
		errs = append(errs, field.Forbidden(p.Child("capabilities", "add"), "keyward needs no capability"))
	}
	return errs
}

func podUser(pod *corev1.PodSecurityContext) *int64 {
	if pod == nil {
		return nil
	}
	return pod.RunAsUser
}

func (c *checker) service(s *corev1.Service) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(s.Spec.Selector) == 0 {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	}
	errs = append(errs, metavalidation.ValidateLabels(s.Spec.Selector, spec.Child("selector"))...)
	var pods []*corev1.PodTemplateSpec
	for _, t := range c.podTemplates() {
		if selectsAll(s.Spec.Selector, t.Labels) {
			pods = append(pods, t)
		}
	}
	if len(s.Spec.Selector) > 0 && len(pods) == 0 {
		errs = append(errs, field.Invalid(spec.Child("selector"), s.Spec.Selector, "selects no pod of the rendering"))
	}
	for i, port := range s.Spec.Ports {
		pp := spec.Child("ports").Index(i)
		errs = append(errs, invalid(pp.Child("port"), port.Port, validation.IsValidPortNum(int(port.Port)))...)
		errs = append(errs, invalid(pp.Child("name"), port.Name, validation.IsDNS1123Label(port.Name))...)
		if port.TargetPort.Type != intstr.String {
			continue
		}
		for _, t := range pods {
			if !namesPort(t, port.TargetPort.StrVal) {
				errs = append(errs, field.NotFound(pp.Child("targetPort"), port.TargetPort.StrVal))
			}
		}
	}
	return errs
}

// selectsAll reports whether every label of sel is in l.
func selectsAll(sel, l map[string]string) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return true
}

func namesPort(t *corev1.PodTemplateSpec, name string) bool {
	for _, ctr := range t.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// configMap checks the keys and that keyward.yaml holds no secret.
func configMap(cm *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	for k, v := range cm.Data {
		p := field.NewPath("data").Key(k)
		errs = append(errs, invalid(p, k, validation.IsConfigMapKey(k))...)
		if !strings.HasSuffix(k, ".yaml") {
			continue
		}
		var settings map[string]any
		if err := yaml.UnmarshalStrict([]byte(v), &settings); err != nil {
			errs = append(errs, field.Invalid(p, "", fmt.Sprintf("not a YAML mapping: %v", err)))
		}
		for _, s := range secretSettings {
			if _, ok := settings[s]; ok {
				errs = append(errs, field.Forbidden(p.Child(s), "a secret in plain configuration: it belongs in a Secret"))
			}
		}
	}
	return errs
}

func secret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	for k := range s.Data {
		errs = append(errs, invalid(field.NewPath("data").Key(k), k, validation.IsConfigMapKey(k))...)
	}
	if len(s.StringData) > 0 {
		errs = append(errs, field.Forbidden(field.NewPath("stringData"), "the chart writes data"))
	}
	return errs
}

func pvc(c *corev1.PersistentVolumeClaim) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(c.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(spec.Child("accessModes"), "at least 1 access mode is required"))
	}
	if s, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok || s.Sign() <= 0 {
		errs = append(errs, field.Required(spec.Child("resources", "requests", "storage"), "a positive size"))
	}
	return errs
}

func (c *checker) pdb(b *policyv1.PodDisruptionBudget) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if (b.Spec.MinAvailable == nil) == (b.Spec.MaxUnavailable == nil) {
		errs = append(errs, field.Invalid(spec, "", "exactly one of minAvailable and maxUnavailable"))
	}
	for name, v := range map[string]*intstr.IntOrString{"minAvailable": b.Spec.MinAvailable, "maxUnavailable": b.Spec.MaxUnavailable} {
		if v == nil {
			continue
		}
		if v.Type == intstr.Int && v.IntVal < 0 {
			errs = append(errs, field.Invalid(spec.Child(name), v.IntVal, "must not be negative"))
		}
		if v.Type == intstr.String {
			errs = append(errs, invalid(spec.Child(name), v.StrVal, validation.IsValidPercent(v.StrVal))...)
		}
	}
	if b.Spec.Selector == nil {
		return append(errs, field.Required(spec.Child("selector"), ""))
	}
	errs = append(errs, metavalidation.ValidateLabelSelector(b.Spec.Selector, metavalidation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	selects := false
	for _, t := range c.podTemplates() {
		if ok, _ := selectorMatches(b.Spec.Selector, t.Labels); ok {
			selects = true
		}
	}
	if !selects {
		errs = append(errs, field.Invalid(spec.Child("selector"), b.Spec.Selector, "selects no pod of the rendering"))
	}
	return errs
}

func (c *checker) serviceMonitor(m *monitoringv1.ServiceMonitor) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	errs = append(errs, metavalidation.ValidateLabelSelector(&m.Spec.Selector, metavalidation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
	var services []*corev1.Service
	for _, obj := range c.objs {
		if s, ok := obj.(*corev1.Service); ok {
			if ok, _ := selectorMatches(&m.Spec.Selector, s.Labels); ok {
				services = append(services, s)
			}
		}
	}
	if len(services) == 0 {
		errs = append(errs, field.Invalid(spec.Child("selector"), m.Spec.Selector, "selects no Service of the rendering"))
	}
	if len(m.Spec.Endpoints) == 0 {
		errs = append(errs, field.Required(spec.Child("endpoints"), ""))
	}
	for i, e := range m.Spec.Endpoints {
		ep := spec.Child("endpoints").Index(i)
		if e.Port == "" {
			errs = append(errs, field.Required(ep.Child("port"), "the name of the Service's port"))
			continue
		}
		for _, s := range services {
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
				errs = append(errs, field.NotFound(ep.Child("port"), e.Port))
			}
		}
		if e.Path != "/metrics" {
			errs = append(errs, field.Invalid(ep.Child("path"), e.Path, "keyward serves its metrics on /metrics"))
		}
		for name, d := range map[string]*monitoringv1.Duration{"interval": &e.Interval, "scrapeTimeout": &e.ScrapeTimeout} {
			if *d != "" && !promDuration.MatchString(string(*d)) {
				errs = append(errs, field.Invalid(ep.Child(name), *d, "must match "+promDuration.String()))
			}
		}
	}
	return errs
}
