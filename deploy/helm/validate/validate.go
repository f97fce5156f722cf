package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The kinds the chart may render, with the API types that decode them.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict decodes YAML into the registered types, refusing unknown and
// duplicated fields as a server with fieldValidation=Strict does.
var strict = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// releaseNamespace stands in for the namespace helm install gives the
// objects, which helm template leaves out.
const releaseNamespace = "keyward-validate"

// Validate decodes every document of a rendering and returns the objects
// and every problem found, each naming the object and the field.
func Validate(data []byte) ([]runtime.Object, []string) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var objs []runtime.Object
	var problems []string
	for i, doc := range docs {
		obj, _, err := strict.Decode(doc, nil, nil)
		if err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", i+1, err))
			continue
		}
		objs = append(objs, obj)
	}
	if len(problems) > 0 {
		return objs, problems
	}
	c := &checker{objs: objs}
	for _, obj := range objs {
		c.object(obj)
	}
	return objs, c.problems
}

// splitDocuments returns the non-empty YAML documents of data.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("splitting the YAML documents: %w", err)
		}
		if isBlank(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

// isBlank reports whether a document holds only comments and white space.
func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}

// checker collects the problems of one rendering.
type checker struct {
	objs     []runtime.Object
	problems []string
}

func (c *checker) add(obj metav1.Object, kind string, errs field.ErrorList) {
	for _, e := range errs {
		c.problems = append(c.problems, fmt.Sprintf("%s %s: %v", kind, obj.GetName(), e))
	}
}

func (c *checker) object(obj runtime.Object) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		c.meta(&o.ObjectMeta, "Deployment", apivalidation.NameIsDNSSubdomain)
		c.add(o, "Deployment", deployment(o))
	case *corev1.Service:
		c.meta(&o.ObjectMeta, "Service", apivalidation.NameIsDNS1035Label)
		c.add(o, "Service", c.service(o))
	case *corev1.ConfigMap:
		c.meta(&o.ObjectMeta, "ConfigMap", apivalidation.NameIsDNSSubdomain)
		c.add(o, "ConfigMap", configMap(o))
	case *corev1.Secret:
		c.meta(&o.ObjectMeta, "Secret", apivalidation.NameIsDNSSubdomain)
		c.add(o, "Secret", secret(o))
	case *corev1.PersistentVolumeClaim:
		c.meta(&o.ObjectMeta, "PersistentVolumeClaim", apivalidation.NameIsDNSSubdomain)
		c.add(o, "PersistentVolumeClaim", pvc(o))
	case *corev1.ServiceAccount:
		c.meta(&o.ObjectMeta, "ServiceAccount", apivalidation.NameIsDNSSubdomain)
		if o.AutomountServiceAccountToken == nil || *o.AutomountServiceAccountToken {
			c.add(o, "ServiceAccount", field.ErrorList{field.Invalid(field.NewPath("automountServiceAccountToken"), o.AutomountServiceAccountToken, "must be false: keyward never talks to the Kubernetes API")})
		}
	case *policyv1.PodDisruptionBudget:
		c.meta(&o.ObjectMeta, "PodDisruptionBudget", apivalidation.NameIsDNSSubdomain)
		c.add(o, "PodDisruptionBudget", c.pdb(o))
	case *monitoringv1.ServiceMonitor:
		c.meta(&o.ObjectMeta, "ServiceMonitor", apivalidation.NameIsDNSSubdomain)
		c.add(o, "ServiceMonitor", c.serviceMonitor(o))
	default:
		c.problems = append(c.problems, fmt.Sprintf("%T: the chart is not expected to render this kind; teach deploy/helm/validate to check it", obj))
	}
}

// meta validates the name, labels and annotations as the API server does.
func (c *checker) meta(m *metav1.ObjectMeta, kind string, name apivalidation.ValidateNameFunc) {
	cp := m.DeepCopy()
	if cp.Namespace == "" {
		cp.Namespace = releaseNamespace
	}
	c.add(m, kind, apivalidation.ValidateObjectMeta(cp, true, name, field.NewPath("metadata")))
}

// selectorMatches reports whether a non-empty selector selects the labels.
func selectorMatches(sel *metav1.LabelSelector, l map[string]string) (bool, error) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false, err
	}
	return !s.Empty() && s.Matches(labels.Set(l)), nil
}

// podTemplates returns the pod templates of the rendering's Deployments.
func (c *checker) podTemplates() []*corev1.PodTemplateSpec {
	var out []*corev1.PodTemplateSpec
	for _, obj := range c.objs {
		if d, ok := obj.(*appsv1.Deployment); ok {
			out = append(out, &d.Spec.Template)
		}
	}
	return out
}
