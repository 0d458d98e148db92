// Package deployments holds recon's Kubernetes manifests (kustomize), the
// container build and example Prometheus alert rules. Its only Go code is the
// test in this file, which renders every kustomization with the kustomize Go
// API (the engine behind `kubectl kustomize`, so no binary is needed), decodes
// each document strictly into the k8s.io/api types and checks the operational
// invariants the manifests promise.
package deployments

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const (
	configPath = "/etc/recon/config.yaml"
	keysDir    = "/etc/recon/keys"
	nonRootUID = 65532
	// defaultShutdownGrace is recon's reconcile.shutdown_grace when the
	// config does not set it.
	defaultShutdownGrace = 30 * time.Second
)

// object is one decoded document of a rendered kustomization.
type object struct {
	kind string
	meta metav1.ObjectMeta
	obj  any
}

func (o object) id() string {
	if o.meta.Namespace == "" {
		return o.kind + "/" + o.meta.Name
	}
	return o.kind + "/" + o.meta.Namespace + "/" + o.meta.Name
}

// decoders maps apiVersion and kind to a constructor of the typed object a
// document is decoded into. A kind not listed here fails the test: every
// manifest must be something we know how to check.
var decoders = map[string]func() any{
	"batch/v1 CronJob":             func() any { return &batchv1.CronJob{} },
	"batch/v1 Job":                 func() any { return &batchv1.Job{} },
	"apps/v1 Deployment":           func() any { return &appsv1.Deployment{} },
	"v1 ConfigMap":                 func() any { return &corev1.ConfigMap{} },
	"v1 Service":                   func() any { return &corev1.Service{} },
	"v1 ServiceAccount":            func() any { return &corev1.ServiceAccount{} },
	"networking.k8s.io/v1 Ingress": func() any { return &networkingv1.Ingress{} },
}

// render builds the kustomization in dir the way `kubectl kustomize dir`
// does and returns the YAML stream.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: yaml: %v", dir, err)
	}
	return out
}

// splitYAML splits a YAML stream into its non-empty documents.
func splitYAML(t *testing.T, stream []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("split yaml: %v", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		docs = append(docs, doc)
	}
}

// decodeStrict decodes every document of stream into its k8s.io/api type,
// failing on unknown kinds, unknown fields and duplicate fields.
func decodeStrict(t *testing.T, stream []byte) []object {
	t.Helper()
	var objs []object
	for i, doc := range splitYAML(t, stream) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		newObj, ok := decoders[tm.APIVersion+" "+tm.Kind]
		if !ok {
			t.Fatalf("document %d: unexpected kind %q (apiVersion %q)", i, tm.Kind, tm.APIVersion)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("document %d (%s): strict decode: %v", i, tm.Kind, err)
		}
		meta := reflect.ValueOf(obj).Elem().FieldByName("ObjectMeta").Interface().(metav1.ObjectMeta)
		objs = append(objs, object{kind: tm.Kind, meta: meta, obj: obj})
	}
	return objs
}

// renderCase is one kustomization and what its output must hold.
type renderCase struct {
	dir       string
	want      []string // kind/name of every object, in any order
	namespace string   // every object's namespace
	pinned    bool     // images must carry a fixed tag or digest
}

var renderCases = []renderCase{
	{
		dir:  "base",
		want: []string{"ServiceAccount/recon", "ConfigMap/recon-config", "CronJob/recon-reconcile", "CronJob/recon-notify", "CronJob/recon-statement"},
	},
	{
		dir: "schedule",
		want: []string{"ServiceAccount/recon", "ConfigMap/recon-config", "Deployment/recon-schedule", "Service/recon-metrics",
			"CronJob/recon-statement"},
	},
	{
		dir:  "backfill",
		want: []string{"ServiceAccount/recon", "ConfigMap/recon-config", "Job/recon-backfill"},
	},
	{
		dir: "overlays/example",
		want: []string{"ServiceAccount/recon", "ConfigMap/recon-config", "CronJob/recon-reconcile", "CronJob/recon-notify",
			"CronJob/recon-statement", "Deployment/recon-console", "Service/recon-console",
			"Service/recon-callbacks", "Ingress/recon-callbacks"},
		namespace: "payments",
		pinned:    true,
	},
	{
		dir:       "overlays/example-backfill",
		want:      []string{"ServiceAccount/recon", "ConfigMap/recon-config", "Job/recon-backfill"},
		namespace: "payments",
		pinned:    true,
	},
}

func TestKustomizations(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			objs := decodeStrict(t, render(t, tc.dir))
			checkObjects(t, tc, objs)
		})
	}
}

func checkObjects(t *testing.T, tc renderCase, objs []object) {
	t.Helper()
	var got []string
	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range objs {
		name := o.meta.Name
		if cm, ok := o.obj.(*corev1.ConfigMap); ok {
			configMaps[name] = cm
			// Generated names carry a content hash suffix.
			name = name[:max(0, strings.LastIndex(name, "-"))]
		}
		got = append(got, o.kind+"/"+name)
		if o.meta.Namespace != tc.namespace {
			t.Errorf("%s: namespace %q, want %q", o.id(), o.meta.Namespace, tc.namespace)
		}
		if o.meta.Labels["app.kubernetes.io/name"] != "recon" {
			t.Errorf("%s: label app.kubernetes.io/name = %q, want recon", o.id(), o.meta.Labels["app.kubernetes.io/name"])
		}
	}
	sort.Strings(got)
	want := slices.Clone(tc.want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("objects:\n got %v\nwant %v", got, want)
	}

	for _, cm := range configMaps {
		checkConfigMap(t, cm)
	}

	for _, o := range objs {
		switch v := o.obj.(type) {
		case *batchv1.CronJob:
			checkCronJob(t, o.id(), v)
			if v.Name == "recon-statement" {
				checkStatementZone(t, o.id(), v, configMaps)
			}
			checkPod(t, tc, o.id(), &v.Spec.JobTemplate.Spec.Template, configMaps)
		case *batchv1.Job:
			checkBackfillJob(t, o.id(), v)
			checkPod(t, tc, o.id(), &v.Spec.Template, configMaps)
		case *appsv1.Deployment:
			if v.Name == "recon-console" {
				checkConsole(t, o.id(), v, configMaps)
			} else {
				checkDeployment(t, o.id(), v)
			}
			checkPod(t, tc, o.id(), &v.Spec.Template, configMaps)
			checkMetricsAddr(t, o.id(), v, configMaps)
		case *corev1.Service:
			switch v.Name {
			case "recon-console":
				checkConsoleService(t, o.id(), v, objs)
			case "recon-callbacks":
				checkCallbacksService(t, o.id(), v, objs, configMaps)
			default:
				checkService(t, o.id(), v, objs)
			}
		case *networkingv1.Ingress:
			checkCallbacksIngress(t, o.id(), v)
		case *corev1.ServiceAccount:
			if v.AutomountServiceAccountToken == nil || *v.AutomountServiceAccountToken {
				t.Errorf("%s: automountServiceAccountToken must be false", o.id())
			}
		}
	}
}

func checkCronJob(t *testing.T, id string, cj *batchv1.CronJob) {
	t.Helper()
	s := cj.Spec
	if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("%s: concurrencyPolicy %q, want Forbid", id, s.ConcurrencyPolicy)
	}
	if s.Schedule == "" {
		t.Errorf("%s: no schedule", id)
	}
	if s.StartingDeadlineSeconds == nil || *s.StartingDeadlineSeconds < 10 {
		t.Errorf("%s: startingDeadlineSeconds must be set (>= 10s)", id)
	}
	if s.SuccessfulJobsHistoryLimit == nil || s.FailedJobsHistoryLimit == nil {
		t.Errorf("%s: successfulJobsHistoryLimit and failedJobsHistoryLimit must be set", id)
	}
	js := s.JobTemplate.Spec
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds <= 0 {
		t.Errorf("%s: jobTemplate activeDeadlineSeconds must be set", id)
	}
	if js.BackoffLimit == nil {
		t.Errorf("%s: jobTemplate backoffLimit must be set", id)
	}
	if rp := js.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyNever && rp != corev1.RestartPolicyOnFailure {
		t.Errorf("%s: restartPolicy %q", id, rp)
	}
	args := js.Template.Spec.Containers[0].Args
	switch cj.Name {
	case "recon-reconcile":
		wantArgs(t, id, args, "run", "--config", configPath, "--output", "json")
	case "recon-notify":
		wantArgs(t, id, args, "notify", "--config", configPath)
	case "recon-statement":
		wantArgs(t, id, args, "statement", "run", "--config", configPath, "--output", "json")
		// The default day is yesterday in statements.timezone: the CronJob
		// must run in that zone (checked against the ConfigMap in
		// checkStatementZone).
		if s.TimeZone == nil || *s.TimeZone == "" || *s.TimeZone == "Etc/UTC" {
			t.Errorf("%s: timeZone must be statements.timezone, not %v", id, s.TimeZone)
		}
	default:
		t.Errorf("%s: unexpected CronJob", id)
	}
}

// checkStatementZone: the statement CronJob runs in statements.timezone, so
// that "yesterday" there is the day it fetches (the default is
// Asia/Shanghai).
func checkStatementZone(t *testing.T, id string, cj *batchv1.CronJob, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	for _, cm := range configMaps {
		zone := parseConfig(t, cm).Statements.Timezone
		if zone == "" {
			zone = "Asia/Shanghai"
		}
		if cj.Spec.TimeZone == nil || *cj.Spec.TimeZone != zone {
			t.Errorf("%s: timeZone %v, want statements.timezone %q of ConfigMap %s", id, cj.Spec.TimeZone, zone, cm.Name)
		}
	}
}

func checkBackfillJob(t *testing.T, id string, job *batchv1.Job) {
	t.Helper()
	s := job.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		t.Errorf("%s: completionMode must be Indexed", id)
	}
	if s.Completions == nil || s.Parallelism == nil || *s.Completions < 1 {
		t.Fatalf("%s: completions and parallelism must be set", id)
	}
	if *s.Parallelism != *s.Completions {
		t.Errorf("%s: parallelism %d != completions %d", id, *s.Parallelism, *s.Completions)
	}
	if s.BackoffLimit == nil || s.ActiveDeadlineSeconds == nil {
		t.Errorf("%s: backoffLimit and activeDeadlineSeconds must be set", id)
	}
	if s.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("%s: restartPolicy %q, want Never", id, s.Template.Spec.RestartPolicy)
	}
	c := s.Template.Spec.Containers[0]
	args := c.Args
	if len(args) == 0 || args[0] != "backfill" {
		t.Fatalf("%s: args %q must start with backfill", id, args)
	}
	shard := fmt.Sprintf("$(JOB_COMPLETION_INDEX)/%d", *s.Completions)
	if v := flagValue(args, "--shard"); v != shard {
		t.Errorf("%s: --shard %q, want %q", id, v, shard)
	}
	for _, f := range []string{"--from", "--to"} {
		if _, err := time.Parse(time.RFC3339, flagValue(args, f)); err != nil {
			t.Errorf("%s: %s: %v", id, f, err)
		}
	}
	if from, to := flagValue(args, "--from"), flagValue(args, "--to"); from >= to {
		t.Errorf("%s: window [%s, %s) is empty", id, from, to)
	}
	if flagValue(args, "--config") != configPath {
		t.Errorf("%s: --config must be %s", id, configPath)
	}
	// $(VAR) in args is only expanded for variables of the container.
	var defined bool
	for _, e := range c.Env {
		if e.Name == "JOB_COMPLETION_INDEX" {
			defined = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
				e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
		}
	}
	if !defined {
		t.Errorf("%s: env JOB_COMPLETION_INDEX must come from the job-completion-index annotation", id)
	}
}

func checkDeployment(t *testing.T, id string, d *appsv1.Deployment) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("%s: replicas must be 1", id)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("%s: strategy %q, want Recreate", id, d.Spec.Strategy.Type)
	}
	sel, err := metav1.LabelSelectorAsMap(d.Spec.Selector)
	if err != nil || len(sel) == 0 {
		t.Errorf("%s: selector: %v", id, err)
	}
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("%s: selector %s=%s does not match the pod template", id, k, v)
		}
	}
	c := d.Spec.Template.Spec.Containers[0]
	wantArgs(t, id, c.Args, "schedule", "--config", configPath)
	var port *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "metrics" {
			port = &c.Ports[i]
		}
	}
	if port == nil || port.ContainerPort != 9090 {
		t.Fatalf("%s: container port 9090 named metrics required, have %+v", id, c.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: %s probe must be an httpGet", id, name)
			continue
		}
		if p.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: %s probe path %q, want /healthz", id, name, p.HTTPGet.Path)
		}
		if pp := p.HTTPGet.Port; pp.String() != "metrics" && pp.IntValue() != 9090 {
			t.Errorf("%s: %s probe port %s, want metrics", id, name, pp.String())
		}
	}
	a := d.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9090" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: prometheus scrape annotations missing: %v", id, a)
	}
}

func checkService(t *testing.T, id string, svc *corev1.Service, objs []object) {
	t.Helper()
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("%s: want one port named metrics targeting the metrics port, have %+v", id, svc.Spec.Ports)
	}
	if svc.Annotations["prometheus.io/scrape"] != "true" || svc.Annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: prometheus scrape annotations missing", id)
	}
	if selects := selected(svc, objs); len(selects) != 1 {
		t.Errorf("%s: selects the pods of %d Deployments (%v), want 1", id, len(selects), selects)
	}
}

// checkPod checks what every recon pod must have, whatever runs it.
func checkPod(t *testing.T, tc renderCase, id string, tpl *corev1.PodTemplateSpec, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	spec := &tpl.Spec
	if spec.ServiceAccountName != "recon" {
		t.Errorf("%s: serviceAccountName %q, want recon", id, spec.ServiceAccountName)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", id)
	}
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != nonRootUID {
		t.Errorf("%s: pod securityContext must be runAsNonRoot with runAsUser %d", id, nonRootUID)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", id)
	}
	if len(spec.InitContainers) > 0 {
		t.Errorf("%s: unexpected init containers", id)
	}
	// One recon container; the console's pod also has its auth proxy.
	var recons int
	for _, c := range spec.Containers {
		if c.Name == "recon" {
			recons++
		} else if c.Name != authProxy || !strings.HasSuffix(id, "/recon-console") {
			t.Errorf("%s: unexpected container %q", id, c.Name)
		}
	}
	if recons != 1 || len(spec.Containers) > 2 {
		t.Fatalf("%s: want exactly one recon container, have %d of %d", id, recons, len(spec.Containers))
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}

	// The grace period must outlast recon's own shutdown grace, read from
	// the config this very pod mounts.
	var cm *corev1.ConfigMap
	if v, ok := volumes["config"]; !ok || v.ConfigMap == nil {
		t.Errorf("%s: no configMap volume named config", id)
	} else if cm = configMaps[v.ConfigMap.Name]; cm == nil {
		t.Errorf("%s: volume config refers to ConfigMap %q, which is not rendered (name reference not resolved?)", id, v.ConfigMap.Name)
	} else if v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
		t.Errorf("%s: the config volume must not be optional", id)
	}
	if cm != nil {
		grace := shutdownGrace(t, cm)
		if spec.TerminationGracePeriodSeconds == nil {
			t.Errorf("%s: terminationGracePeriodSeconds must be set", id)
		} else if tg := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; tg < grace+shutdownTail {
			t.Errorf("%s: terminationGracePeriodSeconds %v must cover reconcile.shutdown_grace %v and the %v after it", id, tg, grace, shutdownTail)
		}
	}
	if v, ok := volumes["channel-keys"]; !ok || v.Secret == nil || v.Secret.SecretName != "recon-channel-keys" {
		t.Errorf("%s: no secret volume channel-keys from recon-channel-keys", id)
	}
	if v, ok := volumes["tmp"]; !ok || v.EmptyDir == nil {
		t.Errorf("%s: no emptyDir volume tmp", id)
	}

	for _, c := range spec.Containers {
		cid := id + " container " + c.Name
		if c.Image == "" {
			t.Errorf("%s: no image", cid)
		}
		if tc.pinned && !pinnedImage(c.Image) {
			t.Errorf("%s: image %q is not pinned to a tag or digest", cid, c.Image)
		}
		if c.Name != authProxy && flagValue(c.Args, "--config") != configPath {
			t.Errorf("%s: args %q must pass --config %s", cid, c.Args, configPath)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[res]
			lim, hasLim := c.Resources.Limits[res]
			if !hasReq || !hasLim {
				t.Errorf("%s: %s request and limit must be set", cid, res)
				continue
			}
			if req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s above limit %s", cid, res, req.String(), lim.String())
			}
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", cid)
		default:
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s: runAsNonRoot must be true", cid)
			}
			if sc.RunAsUser != nil && *sc.RunAsUser != nonRootUID {
				t.Errorf("%s: runAsUser %d, want %d", cid, *sc.RunAsUser, nonRootUID)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem must be true", cid)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation must be false", cid)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", cid)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none", cid)
			}
			if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccompProfile %q", cid, sc.SeccompProfile.Type)
			}
		}

		if c.Name == authProxy {
			// The proxy gets its own Secret, and none of recon's.
			if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "recon-console-oauth" || len(c.VolumeMounts) > 0 {
				t.Errorf("%s: the auth proxy takes Secret recon-console-oauth only, and mounts nothing", cid)
			}
			continue
		}
		mounts := map[string]corev1.VolumeMount{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m
		}
		if m, ok := mounts[configPath]; !ok || m.Name != "config" || m.SubPath != "config.yaml" || !m.ReadOnly {
			t.Errorf("%s: config.yaml must be mounted read-only at %s", cid, configPath)
		}
		if m, ok := mounts[keysDir]; !ok || m.Name != "channel-keys" || !m.ReadOnly {
			t.Errorf("%s: channel keys must be mounted read-only at %s", cid, keysDir)
		}
		if m, ok := mounts["/tmp"]; !ok || m.Name != "tmp" {
			t.Errorf("%s: /tmp must be the emptyDir", cid)
		}

		// Secrets reach the container from recon-secrets only, never inline.
		var fromSecret bool
		for _, ef := range c.EnvFrom {
			if ef.SecretRef != nil && ef.SecretRef.Name == "recon-secrets" {
				fromSecret = true
			}
			if ef.ConfigMapRef != nil {
				t.Errorf("%s: envFrom a ConfigMap", cid)
			}
		}
		for _, e := range c.Env {
			if e.Value != "" && sensitiveName(e.Name) {
				t.Errorf("%s: env %s has an inline value; take it from the Secret", cid, e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "recon-secrets" {
				fromSecret = true
			}
		}
		if !fromSecret {
			t.Errorf("%s: environment must come from Secret recon-secrets", cid)
		}
	}
}

// authProxy names the console's oauth2-proxy sidecar.
const authProxy = "auth-proxy"

func reconContainer(t *testing.T, id string, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "recon" {
			return c
		}
	}
	t.Fatalf("%s: no container named recon", id)
	return corev1.Container{}
}

// checkConsole checks the console: recon serve behind its auth proxy, which
// is the only way in, and a config that trusts the proxy's header from the
// pod itself only.
func checkConsole(t *testing.T, id string, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("%s: replicas must be 1 (the CSRF key is per process)", id)
	}
	c := reconContainer(t, id, d)
	wantArgs(t, id, c.Args, "serve", "--config", configPath)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != 8080 || ports["metrics"] != 9090 {
		t.Errorf("%s: recon needs ports http 8080 and metrics 9090, has %v", id, ports)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s: %s probe must GET /healthz on port http", id, name)
		}
	}
	var proxy *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == authProxy {
			proxy = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if proxy == nil {
		t.Fatalf("%s: no %s container", id, authProxy)
	}
	if !slices.Contains(proxy.Args, "--upstream=http://127.0.0.1:8080/") || !slices.Contains(proxy.Args, "--pass-user-headers=true") {
		t.Errorf("%s: the auth proxy must forward to recon on 127.0.0.1:8080 with the user's headers: %q", id, proxy.Args)
	}
	if proxy.ReadinessProbe == nil || proxy.LivenessProbe == nil {
		t.Errorf("%s: the auth proxy needs probes", id)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != "config" || v.ConfigMap == nil || configMaps[v.ConfigMap.Name] == nil {
			continue
		}
		cfg := parseConfig(t, configMaps[v.ConfigMap.Name]).Console
		if cfg.Auth.Mode != "proxy" || !slices.Equal(cfg.Auth.TrustedProxies, []string{"127.0.0.1/32"}) || len(cfg.Auth.Users) == 0 {
			t.Errorf("%s: console.auth must be proxy mode trusting 127.0.0.1/32 only, with users: %+v", id, cfg.Auth)
		}
		if h := cfg.Auth.Header; h != "" && h != "X-Forwarded-Email" {
			t.Errorf("%s: console.auth.header %q is not the header oauth2-proxy sets", id, h)
		}
		if _, port, err := net.SplitHostPort(cfg.Addr); err != nil || port != "8080" {
			t.Errorf("%s: console.addr %q, but the http port is 8080", id, cfg.Addr)
		}
	}
}

// checkCallbacksService checks that the notification listener is reached
// on recon's callbacks port only (never the console's, never through the
// auth proxy), and that the port is the one callbacks.addr opens.
func checkCallbacksService(t *testing.T, id string, svc *corev1.Service, objs []object, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "callbacks" {
		t.Errorf("%s: want one port, targeting recon's callbacks port, have %+v", id, svc.Spec.Ports)
	}
	selects := selected(svc, objs)
	if len(selects) != 1 {
		t.Fatalf("%s: selects the pods of %v, want one Deployment's", id, selects)
	}
	for _, o := range objs {
		d, ok := o.obj.(*appsv1.Deployment)
		if !ok || d.Name != selects[0] {
			continue
		}
		c := reconContainer(t, id, d)
		port := int32(0)
		for _, p := range c.Ports {
			if p.Name == "callbacks" {
				port = p.ContainerPort
			}
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != "config" || v.ConfigMap == nil || configMaps[v.ConfigMap.Name] == nil {
				continue
			}
			addr := parseConfig(t, configMaps[v.ConfigMap.Name]).Callbacks.Addr
			if _, p, err := net.SplitHostPort(addr); err != nil || p != fmt.Sprint(port) || port == 0 {
				t.Errorf("%s: callbacks.addr %q, but recon's callbacks port is %d", id, addr, port)
			}
		}
	}
}

// checkCallbacksIngress checks that the providers reach /callbacks/ only,
// over TLS, on the callbacks Service.
func checkCallbacksIngress(t *testing.T, id string, ing *networkingv1.Ingress) {
	t.Helper()
	if len(ing.Spec.TLS) == 0 || ing.Spec.TLS[0].SecretName == "" {
		t.Errorf("%s: needs TLS with a certificate Secret", id)
	}
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for _, p := range r.HTTP.Paths {
			if p.Path != "/callbacks/" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix ||
				p.Backend.Service == nil || p.Backend.Service.Name != "recon-callbacks" {
				t.Errorf("%s: path %q routes to %+v; only the /callbacks/ prefix to recon-callbacks", id, p.Path, p.Backend)
			}
		}
	}
	for k := range ing.Annotations {
		if strings.Contains(k, "auth-url") || strings.Contains(k, "oauth") {
			t.Errorf("%s: annotation %s puts the providers behind a sign-in", id, k)
		}
	}
}

// checkConsoleService checks that the console is reached through its auth
// proxy only.
func checkConsoleService(t *testing.T, id string, svc *corev1.Service, objs []object) {
	t.Helper()
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != authProxy {
		t.Errorf("%s: want one port, targeting the auth proxy, have %+v", id, svc.Spec.Ports)
	}
	if selects := selected(svc, objs); len(selects) != 1 || selects[0] != "recon-console" {
		t.Errorf("%s: selects the pods of %v, want recon-console's", id, selects)
	}
}

// selected names the Deployments whose pods svc selects.
func selected(svc *corev1.Service, objs []object) []string {
	var names []string
	for _, o := range objs {
		d, ok := o.obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		match := len(svc.Spec.Selector) > 0
		for k, v := range svc.Spec.Selector {
			match = match && d.Spec.Template.Labels[k] == v
		}
		if match {
			names = append(names, d.Name)
		}
	}
	return names
}

// reconConfig is the part of recon's config.yaml the manifests depend on.
type reconConfig struct {
	Database struct {
		Driver string `json:"driver"`
		DSN    string `json:"dsn"`
	} `json:"database"`
	Reconcile struct {
		ShutdownGrace string `json:"shutdown_grace"`
	} `json:"reconcile"`
	Metrics struct {
		Addr string `json:"addr"`
	} `json:"metrics"`
	Statements struct {
		Timezone string `json:"timezone"`
	} `json:"statements"`
	Callbacks struct {
		Addr string `json:"addr"`
	} `json:"callbacks"`
	Console struct {
		Addr string `json:"addr"`
		Auth struct {
			Mode           string   `json:"mode"`
			Header         string   `json:"header"`
			TrustedProxies []string `json:"trusted_proxies"`
			Users          []struct {
				Name string `json:"name"`
				Role string `json:"role"`
			} `json:"users"`
		} `json:"auth"`
	} `json:"console"`
}

// checkMetricsAddr checks that the port recon schedule listens on, per its
// config, is the container's metrics port.
func checkMetricsAddr(t *testing.T, id string, d *appsv1.Deployment, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != "config" || v.ConfigMap == nil || configMaps[v.ConfigMap.Name] == nil {
			continue
		}
		addr := parseConfig(t, configMaps[v.ConfigMap.Name]).Metrics.Addr
		if addr == "" {
			addr = ":9090" // recon's default
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s: metrics.addr %q: %v", id, addr, err)
		}
		for _, p := range reconContainer(t, id, d).Ports {
			if p.Name == "metrics" && strconv.Itoa(int(p.ContainerPort)) != port {
				t.Errorf("%s: metrics port %d, but recon listens on metrics.addr %q", id, p.ContainerPort, addr)
			}
		}
		return
	}
	t.Errorf("%s: no config volume", id)
}

func parseConfig(t *testing.T, cm *corev1.ConfigMap) reconConfig {
	t.Helper()
	raw, ok := cm.Data["config.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yaml", cm.Name)
	}
	var cfg reconConfig
	if err := yaml.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("ConfigMap %s: config.yaml: %v", cm.Name, err)
	}
	return cfg
}

// shutdownTail is what a stopping pass may still spend after its
// shutdown_grace: recording the run (10s), releasing its lease (10s) and
// pushing its metrics (15s), each bounded by its own timeout.
const shutdownTail = 35 * time.Second

func shutdownGrace(t *testing.T, cm *corev1.ConfigMap) time.Duration {
	t.Helper()
	cfg := parseConfig(t, cm)
	if cfg.Reconcile.ShutdownGrace == "" {
		return defaultShutdownGrace
	}
	d, err := time.ParseDuration(cfg.Reconcile.ShutdownGrace)
	if err != nil || d <= 0 {
		t.Fatalf("ConfigMap %s: reconcile.shutdown_grace %q: %v", cm.Name, cfg.Reconcile.ShutdownGrace, err)
	}
	return d
}

var (
	placeholderRE = regexp.MustCompile(`^\$\{[A-Z][A-Z0-9_]*\}$`)
	// dsnPasswordRE matches a go-sql-driver DSN with a password:
	// user:password@tcp(host)/db.
	dsnPasswordRE = regexp.MustCompile(`^[^:@/]*:[^@]+@`)
	// secretLikeRE matches strings that look like key material.
	secretLikeRE = regexp.MustCompile(`-----BEGIN|\b(sk|rk|pk)_(live|test)_|\bwhsec_`)
)

// sensitiveName reports whether a config key or env variable name holds a
// secret.
func sensitiveName(name string) bool {
	n := strings.ToLower(name)
	if strings.HasSuffix(n, "_file") || strings.HasSuffix(n, "_id") || strings.HasSuffix(n, "_serial") {
		return false
	}
	for _, s := range []string{"dsn", "secret", "password", "passwd", "token", "api_key", "apikey", "private_key", "key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// checkConfigMap checks that the config holds no plain-text secret: secret
// keys are ${ENV} placeholders, the DSN carries no password, key material is
// only referenced as files under the read-only keys mount.
func checkConfigMap(t *testing.T, cm *corev1.ConfigMap) {
	t.Helper()
	if len(cm.BinaryData) > 0 {
		t.Errorf("ConfigMap %s: unexpected binaryData", cm.Name)
	}
	cfg := parseConfig(t, cm)
	if cfg.Database.Driver != "mysql" {
		t.Errorf("ConfigMap %s: database.driver %q, want mysql in production", cm.Name, cfg.Database.Driver)
	}
	for key, raw := range cm.Data {
		var tree any
		if err := yaml.Unmarshal([]byte(raw), &tree); err != nil {
			t.Fatalf("ConfigMap %s: %s: %v", cm.Name, key, err)
		}
		walk(tree, key, func(p, k string, v any) {
			s, isString := v.(string)
			if isString && secretLikeRE.MatchString(s) {
				t.Errorf("ConfigMap %s: %s looks like key material", cm.Name, p)
			}
			switch {
			case k == "dsn":
				if !isString || (!placeholderRE.MatchString(s) && dsnPasswordRE.MatchString(s)) {
					t.Errorf("ConfigMap %s: %s must be a ${ENV} placeholder or carry no password, have %q", cm.Name, p, s)
				}
			case strings.HasSuffix(k, "_file"):
				if !isString || path.Dir(s) != keysDir {
					t.Errorf("ConfigMap %s: %s = %v, want a file under %s", cm.Name, p, v, keysDir)
				}
			case sensitiveName(k):
				if !isString || (s != "" && !placeholderRE.MatchString(s)) {
					t.Errorf("ConfigMap %s: %s must be a ${ENV} placeholder, have %v", cm.Name, p, v)
				}
			}
		})
	}
}

// walk calls fn for every scalar in a decoded YAML tree with its path and
// the name of the key it sits under.
func walk(v any, p string, fn func(path, key string, v any)) {
	key := p[strings.LastIndex(p, ".")+1:]
	if i := strings.Index(key, "["); i >= 0 {
		key = key[:i]
	}
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			walk(child, p+"."+k, fn)
		}
	case []any:
		for i, child := range x {
			walk(child, fmt.Sprintf("%s[%d]", p, i), fn)
		}
	default:
		fn(p, key, v)
	}
}

func wantArgs(t *testing.T, id string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: args %q, want %q", id, got, want)
	}
}

// flagValue returns the value following flag in args.
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

func pinnedImage(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	i := strings.LastIndex(image, ":")
	return i > strings.LastIndex(image, "/") && image[i+1:] != "latest"
}

// TestKubectlKustomizeAgrees renders each kustomization with `kubectl
// kustomize` too, when kubectl is installed, and checks it yields the same
// objects as the Go API the other tests use.
func TestKubectlKustomizeAgrees(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	for _, tc := range renderCases {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(kubectl, "kustomize", tc.dir).Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v", tc.dir, err)
			}
			fromKubectl := decodeStrict(t, out)
			fromAPI := decodeStrict(t, render(t, tc.dir))
			byID := map[string]any{}
			for _, o := range fromAPI {
				byID[o.id()] = o.obj
			}
			if len(fromKubectl) != len(fromAPI) {
				t.Fatalf("kubectl rendered %d objects, the Go API %d", len(fromKubectl), len(fromAPI))
			}
			for _, o := range fromKubectl {
				if !reflect.DeepEqual(byID[o.id()], o.obj) {
					t.Errorf("%s differs between kubectl kustomize and the Go API", o.id())
				}
			}
		})
	}
}

// TestExampleSecret checks that secret.example.yaml holds placeholders only,
// is not rendered by any kustomization (the kind check in decodeStrict fails
// on a Secret) and provides everything the config and the pods refer to.
func TestExampleSecret(t *testing.T) {
	raw, err := os.ReadFile("base/secret.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]*corev1.Secret{}
	for i, doc := range splitYAML(t, raw) {
		var s corev1.Secret
		if err := yaml.UnmarshalStrict(doc, &s); err != nil {
			t.Fatalf("document %d: strict decode: %v", i, err)
		}
		if s.Kind != "Secret" || s.APIVersion != "v1" {
			t.Fatalf("document %d: %s %s, want v1 Secret", i, s.APIVersion, s.Kind)
		}
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: use stringData with visible placeholders, not data", s.Name)
		}
		for k, v := range s.StringData {
			if msg := notPlaceholder(v); msg != "" {
				t.Errorf("Secret %s: %s: %s: %q", s.Name, k, msg, v)
			}
		}
		secrets[s.Name] = &s
	}
	env, keys := secrets["recon-secrets"], secrets["recon-channel-keys"]
	if env == nil || keys == nil {
		t.Fatalf("want Secrets recon-secrets and recon-channel-keys, have %v", slices.Sorted(maps.Keys(secrets)))
	}
	if user, _, ok := strings.Cut(env.StringData["RECON_DATABASE_DSN"], "@"); !ok || !strings.Contains(user, ":<") {
		t.Errorf("recon-secrets: RECON_DATABASE_DSN must show where the password goes as a <placeholder>")
	}

	kust, err := os.ReadFile("base/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var kustTree any
	if err := yaml.Unmarshal(kust, &kustTree); err != nil {
		t.Fatal(err)
	}
	walk(kustTree, "kustomization", func(p, _ string, v any) {
		if s, ok := v.(string); ok && strings.Contains(s, "secret.example.yaml") {
			t.Errorf("base/kustomization.yaml: %s includes secret.example.yaml", p)
		}
	})

	// Every ${NAME} and key file the rendered configs refer to is in the
	// example, so filling in the example is enough to run.
	envRE := regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)\}`)
	for _, dir := range []string{"base", "overlays/example"} {
		for _, o := range decodeStrict(t, render(t, dir)) {
			cm, ok := o.obj.(*corev1.ConfigMap)
			if !ok {
				continue
			}
			var tree any
			if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &tree); err != nil {
				t.Fatal(err)
			}
			walk(tree, "config", func(p, k string, v any) {
				s, ok := v.(string)
				if !ok {
					return
				}
				for _, m := range envRE.FindAllStringSubmatch(s, -1) {
					if _, ok := env.StringData[m[1]]; !ok {
						t.Errorf("%s: %s refers to ${%s}, which recon-secrets does not define", dir, p, m[1])
					}
				}
				if strings.HasSuffix(k, "_file") {
					if _, ok := keys.StringData[path.Base(s)]; !ok {
						t.Errorf("%s: %s = %s, but recon-channel-keys has no key %s", dir, p, s, path.Base(s))
					}
				}
			})
		}
	}
}

var (
	angleRE     = regexp.MustCompile(`<[^<>]+>`)
	keyMaterial = regexp.MustCompile(`[A-Za-z0-9+/=_-]{16,}`)
)

// notPlaceholder says why v is not an obvious placeholder, or "" if it is.
func notPlaceholder(v string) string {
	if !angleRE.MatchString(v) {
		return "no <placeholder>"
	}
	if secretLikeRE.MatchString(v) {
		return "looks like key material"
	}
	if rest := angleRE.ReplaceAllString(v, ""); keyMaterial.MatchString(rest) {
		return "text outside the <placeholders> looks like a real value"
	}
	return ""
}

// ruleFile is the Prometheus rules file format.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert       string            `json:"alert,omitempty"`
			Record      string            `json:"record,omitempty"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels,omitempty"`
			Annotations map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// reconMetrics are the series recon exposes (issue 6).
var reconMetrics = []string{
	"recon_lookups_total",
	"recon_lookup_duration_seconds_bucket",
	"recon_lookup_duration_seconds_sum",
	"recon_lookup_duration_seconds_count",
	"recon_transitions_total",
	"recon_mismatches_total",
	"recon_conflicts_total",
	"recon_backlog_due_orders",
	"recon_backlog_oldest_age_seconds",
	"recon_notifications_total",
	"recon_run_duration_seconds",
	"recon_last_success_timestamp_seconds",
	"recon_open_mismatches",
	"recon_oldest_open_mismatch_age_seconds",
	"recon_notifications",
	"recon_statement_last_success_timestamp_seconds",
	"recon_statements_total",
	"recon_statement_lines_total",
	"recon_callbacks_total",
	"recon_settled_orders_last_hour",
}

// counterFuncRE finds increase(), rate() and irate() over a recon counter.
// The CronJobs' counters start from zero in every run and the Pushgateway
// keeps only the last run's, so these miss repeats: alerts use the gauges.
var counterFuncRE = regexp.MustCompile(`\b(increase|rate|irate)\s*\(\s*recon_[a-z0-9_]+_total\b`)

func TestAlertRules(t *testing.T) {
	const file = "alerts/recon-rules.yaml"
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.UnmarshalStrict(raw, &rf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatalf("%s: no groups", file)
	}
	metricRE := regexp.MustCompile(`\brecon_[a-z0-9_]+`)
	used := map[string]bool{}
	names := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: rule %q is not an alert", g.Name, r.Record)
				continue
			}
			if names[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			names[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alert %s: empty expr", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for: %v", r.Alert, err)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs summary and description annotations", r.Alert)
			}
			if f := counterFuncRE.FindString(r.Expr); f != "" {
				t.Errorf("alert %s: %s...) does not work with the Pushgateway; alert on a gauge", r.Alert, f)
			}
			for _, m := range metricRE.FindAllString(r.Expr, -1) {
				if !slices.Contains(reconMetrics, m) {
					t.Errorf("alert %s: unknown metric %s", r.Alert, m)
				}
				used[m] = true
			}
		}
	}
	for _, m := range []string{
		"recon_last_success_timestamp_seconds",
		"recon_backlog_oldest_age_seconds",
		"recon_notifications",
		"recon_open_mismatches",
		"recon_statement_last_success_timestamp_seconds",
	} {
		if !used[m] {
			t.Errorf("no alert on %s", m)
		}
	}
	if !strings.Contains(string(raw), `recon_notifications{status="DEAD"}`) {
		t.Errorf(`no alert on recon_notifications{status="DEAD"}`)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed; skipping promtool check rules / test rules")
		return
	}
	for _, args := range [][]string{
		{"check", "rules", file},
		{"test", "rules", "alerts/recon-rules.test.yaml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users, entrypoints []string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			froms = append(froms, rest)
		case "USER":
			users = append(users, rest)
		case "ENTRYPOINT":
			entrypoints = append(entrypoints, rest)
		}
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "golang:1.26 ") {
		t.Errorf("FROM %q: want a golang:1.26 builder and one final stage", froms)
	}
	if len(froms) > 0 && froms[len(froms)-1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q, want distroless static nonroot", froms[len(froms)-1])
	}
	if !slices.Equal(users, []string{strconv.Itoa(nonRootUID) + ":" + strconv.Itoa(nonRootUID)}) {
		t.Errorf("USER %q, want 65532:65532", users)
	}
	if !slices.Equal(entrypoints, []string{`["/recon"]`}) {
		t.Errorf("ENTRYPOINT %q, want [\"/recon\"]", entrypoints)
	}
	for _, s := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w `, "./cmd/recon",
		"ARG VERSION", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-X main.buildTime=${BUILD_TIME}"} {
		if !strings.Contains(string(raw), s) {
			t.Errorf("Dockerfile: build does not use %s", s)
		}
	}
}
