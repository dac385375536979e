package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/rfenv/rfenv/pkg/errs"
	"github.com/rfenv/rfenv/pkg/protocol"
)

// AnnotationConfigHash carries the configuration hash (64 hex characters: too long for a label).
const AnnotationConfigHash = protocol.LabelConfigHash

// ContainerName is the name of the environment's container in each pod.
const ContainerName = "env"

// PreStopSeconds is how long a deleted pod keeps serving before it is sent SIGTERM: long enough
// for callers watching the pods to take it out of rotation and for calls in flight to finish.
const PreStopSeconds = 2

// Spec describes an environment's Deployment.
type Spec struct {
	Env        string // environment name: the Deployment's name
	StateID    string
	Image      string
	PullPolicy corev1.PullPolicy // default IfNotPresent
	Replicas   int
	Port       int
	HTTP       bool              // a user's own server: readiness is a TCP check, not /health
	Vars       map[string]string // every value lands in the Secret, never in the pod spec
	ConfigHash string
	NanoCPUs   int64
	Memory     int64
	GPUs       int
	Labels     map[string]string
}

// Labels selects an environment's objects.
func Labels(env, stateID string) map[string]string {
	return map[string]string{protocol.LabelManaged: "true", protocol.LabelEnv: env, protocol.LabelState: stateID}
}

// Selector is Labels as a label selector string.
func Selector(env, stateID string) string {
	return protocol.LabelManaged + "=true," + protocol.LabelEnv + "=" + env + "," + protocol.LabelState + "=" + stateID
}

// ManagedSelector selects every rfenv object of a state directory.
func ManagedSelector(stateID string) string {
	return protocol.LabelManaged + "=true," + protocol.LabelState + "=" + stateID
}

func (s Spec) secret() *corev1.Secret {
	data := map[string][]byte{}
	for k, v := range s.Vars {
		data[k] = []byte(v)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName(s.Env), Labels: Labels(s.Env, s.StateID)},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

func (s Spec) deployment() *appsv1.Deployment {
	labels := Labels(s.Env, s.StateID)
	podLabels := map[string]string{}
	for k, v := range s.Labels {
		podLabels[k] = v
	}
	for k, v := range labels {
		podLabels[k] = v
	}
	policy := s.PullPolicy
	if policy == "" {
		policy = corev1.PullPolicy(protocol.DefaultPullPolicy)
	}
	probe := &corev1.Probe{
		PeriodSeconds: 1, TimeoutSeconds: 2, FailureThreshold: 2, SuccessThreshold: 1,
	}
	if s.HTTP {
		probe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(s.Port))}
	} else {
		probe.HTTPGet = &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(int32(s.Port))}
	}
	res := corev1.ResourceRequirements{}
	if s.NanoCPUs > 0 || s.Memory > 0 || s.GPUs > 0 {
		res.Requests, res.Limits = corev1.ResourceList{}, corev1.ResourceList{}
	}
	if s.NanoCPUs > 0 {
		q := resource.NewMilliQuantity(max(1, s.NanoCPUs/1e6), resource.DecimalSI)
		res.Requests[corev1.ResourceCPU], res.Limits[corev1.ResourceCPU] = *q, *q
	}
	if s.Memory > 0 {
		q := resource.NewQuantity(s.Memory, resource.BinarySI)
		res.Requests[corev1.ResourceMemory], res.Limits[corev1.ResourceMemory] = *q, *q
	}
	if s.GPUs > 0 {
		q := resource.NewQuantity(int64(s.GPUs), resource.DecimalSI)
		res.Limits["nvidia.com/gpu"] = *q
	}
	replicas := int32(s.Replicas)
	grace := int64(PreStopSeconds + 8)
	no, yes := false, true
	maxUnavailable := intstr.FromInt32(0)
	maxSurge := intstr.FromString("25%")
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: DeploymentName(s.Env), Labels: labels,
			Annotations: map[string]string{AnnotationConfigHash: s.ConfigHash},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      podLabels,
					Annotations: map[string]string{AnnotationConfigHash: s.ConfigHash},
				},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  &no,
					EnableServiceLinks:            &no,
					TerminationGracePeriodSeconds: &grace,
					// The pod's pause process becomes PID 1 and reaps orphaned processes, as
					// docker-init does for Docker replicas; the shim is not PID 1 and never reaps.
					ShareProcessNamespace: &yes,
					Containers: []corev1.Container{{
						Name:            ContainerName,
						Image:           s.Image,
						ImagePullPolicy: policy,
						Ports:           []corev1.ContainerPort{{Name: "rfenv", ContainerPort: int32(s.Port), Protocol: corev1.ProtocolTCP}},
						Env: []corev1.EnvVar{
							{Name: "RFENV_PORT", Value: strconv.Itoa(s.Port)},
							{Name: "RFENV_ENV_NAME", Value: s.Env},
							{Name: "RFENV_REPLICA", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						},
						EnvFrom:        []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: SecretName(s.Env)}}}},
						ReadinessProbe: probe,
						Resources:      res,
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
							Sleep: &corev1.SleepAction{Seconds: PreStopSeconds},
						}},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
				},
			},
		},
	}
}

// Existing is what an environment has on the cluster.
type Existing struct {
	Deployment *appsv1.Deployment // nil if none
	Secret     *corev1.Secret     // nil if none
}

// Token is the token recorded in the Secret, for an environment whose state entry was lost.
func (e Existing) Token() string {
	if e.Secret == nil {
		return ""
	}
	return string(e.Secret.Data["RFENV_TOKEN"])
}

// ConfigHash is the hash the Deployment was made with.
func (e Existing) ConfigHash() string {
	if e.Deployment == nil {
		return ""
	}
	return e.Deployment.Annotations[AnnotationConfigHash]
}

// Replicas is the Deployment's desired replica count.
func (e Existing) Replicas() int {
	if e.Deployment == nil || e.Deployment.Spec.Replicas == nil {
		return 0
	}
	return int(*e.Deployment.Spec.Replicas)
}

// Find reads an environment's Deployment and Secret. Objects of the same name that rfenv did not make
// (or that another state directory made) are a conflict.
func (c *Conn) Find(ctx context.Context, env, stateID string) (Existing, error) {
	var out Existing
	d := &appsv1.Deployment{}
	err := c.apps.Get(ctx, "deployments", DeploymentName(env), d)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return out, c.apiError("read deployment "+env, err)
	default:
		if err := owned(d.Labels, env, stateID, "deployment", d.Name, c); err != nil {
			return out, err
		}
		out.Deployment = d
	}
	s := &corev1.Secret{}
	err = c.core.Get(ctx, "secrets", SecretName(env), s)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return out, c.apiError("read secret "+SecretName(env), err)
	default:
		if err := owned(s.Labels, env, stateID, "secret", s.Name, c); err != nil {
			return out, err
		}
		out.Secret = s
	}
	return out, nil
}

func owned(labels map[string]string, env, stateID, kind, name string, c *Conn) error {
	if labels[protocol.LabelManaged] != "true" || labels[protocol.LabelEnv] != env {
		return errs.New(errs.Conflict, "%s %s in namespace %s on %s was not made by rfenv; choose another name with --name", kind, name, c.Namespace, c.Spec)
	}
	if labels[protocol.LabelState] != stateID {
		return errs.New(errs.Conflict, "%s %s in namespace %s on %s belongs to another rfenv state directory (%s=%s); choose another name with --name", kind, name, c.Namespace, c.Spec, protocol.LabelState, labels[protocol.LabelState])
	}
	return nil
}

// Apply creates or replaces the environment's Secret and Deployment. The Secret goes first, so no pod
// starts without it, and is then owned by the Deployment, so deleting the Deployment any way at all
// (kubectl too) removes it.
func (c *Conn) Apply(ctx context.Context, s Spec, ex Existing) (*appsv1.Deployment, error) {
	sec := s.secret()
	if ex.Secret == nil {
		if err := c.core.Create(ctx, "secrets", sec, &corev1.Secret{}); err != nil {
			return nil, c.apiError("create secret "+sec.Name, err)
		}
	} else {
		sec.ResourceVersion = ex.Secret.ResourceVersion
		sec.OwnerReferences = ex.Secret.OwnerReferences
		if err := c.core.Update(ctx, "secrets", sec.Name, sec, &corev1.Secret{}); err != nil {
			return nil, c.apiError("update secret "+sec.Name, err)
		}
	}
	dep := s.deployment()
	out := &appsv1.Deployment{}
	if ex.Deployment == nil {
		if err := c.apps.Create(ctx, "deployments", dep, out); err != nil {
			return nil, c.apiError("create deployment "+dep.Name, err)
		}
	} else {
		dep.ResourceVersion = ex.Deployment.ResourceVersion
		if err := c.apps.Update(ctx, "deployments", dep.Name, dep, out); err != nil {
			return nil, c.apiError("update deployment "+dep.Name, err)
		}
	}
	if ex.Secret == nil || len(ex.Secret.OwnerReferences) == 0 {
		yes := true
		sec := &corev1.Secret{}
		if err := c.core.Get(ctx, "secrets", SecretName(s.Env), sec); err == nil {
			sec.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "Deployment", Name: out.Name, UID: out.UID, BlockOwnerDeletion: &yes,
			}}
			if err := c.core.Update(ctx, "secrets", sec.Name, sec, &corev1.Secret{}); err != nil {
				return out, c.apiError("set the owner of secret "+sec.Name, err)
			}
		}
	}
	return out, nil
}

// Scale sets the Deployment's replica count (retrying when the Deployment changed meanwhile).
func (c *Conn) Scale(ctx context.Context, env string, replicas int) (*appsv1.Deployment, error) {
	for attempt := 0; ; attempt++ {
		d := &appsv1.Deployment{}
		if err := c.apps.Get(ctx, "deployments", DeploymentName(env), d); err != nil {
			return nil, c.apiError("read deployment "+env, err)
		}
		n := int32(replicas)
		d.Spec.Replicas = &n
		out := &appsv1.Deployment{}
		err := c.apps.Update(ctx, "deployments", d.Name, d, out)
		if err == nil {
			return out, nil
		}
		if !apierrors.IsConflict(err) || attempt >= 5 {
			return nil, c.apiError("scale deployment "+env, err)
		}
	}
}

// Delete removes the environment's Deployment (its ReplicaSets and pods with it) and Secret. It
// reports how many pods were running.
func (c *Conn) Delete(ctx context.Context, env, stateID string) (pods int, found bool, err error) {
	ex, err := c.Find(ctx, env, stateID)
	if err != nil {
		return 0, false, err
	}
	list := &corev1.PodList{}
	if c.core.List(ctx, "pods", metav1.ListOptions{LabelSelector: Selector(env, stateID)}, list) == nil {
		pods = len(list.Items)
	}
	bg := metav1.DeletePropagationBackground
	if ex.Deployment != nil {
		found = true
		err := c.apps.Delete(ctx, "deployments", DeploymentName(env), metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) {
			return pods, found, c.apiError("delete deployment "+env, err)
		}
	}
	if ex.Secret != nil {
		found = true
		err := c.core.Delete(ctx, "secrets", SecretName(env), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return pods, found, c.apiError("delete secret "+SecretName(env), err)
		}
	}
	if err := c.deleteReplicaSetsAndPods(ctx, Selector(env, stateID)); err != nil {
		return pods, found, err
	}
	return pods, found || pods > 0, nil
}

// deleteReplicaSetsAndPods removes what garbage collection would remove, at once, so that down
// returns with nothing left: ReplicaSets first (so none recreates a pod), then the pods with a short
// grace period (nobody calls an environment that is going down).
func (c *Conn) deleteReplicaSetsAndPods(ctx context.Context, selector string) error {
	bg := metav1.DeletePropagationBackground
	if err := c.apps.DeleteCollection(ctx, "replicasets", metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{LabelSelector: selector}); err != nil && !apierrors.IsNotFound(err) {
		return c.apiError("delete replica sets", err)
	}
	grace := int64(1)
	if err := c.core.DeleteCollection(ctx, "pods", metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{LabelSelector: selector}); err != nil && !apierrors.IsNotFound(err) {
		return c.apiError("delete pods", err)
	}
	return nil
}

// WaitGone waits until no pod matches the selector.
func (c *Conn) WaitGone(ctx context.Context, selector string) error {
	for {
		list := &corev1.PodList{}
		if err := c.core.List(ctx, "pods", metav1.ListOptions{LabelSelector: selector}, list); err != nil {
			return c.apiError("list pods", err)
		}
		if len(list.Items) == 0 {
			return nil
		}
		// A replica set created by a controller racing the deletion may have made new pods.
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				c.deleteReplicaSetsAndPods(ctx, selector)
				break
			}
		}
		select {
		case <-ctx.Done():
			names := make([]string, 0, len(list.Items))
			for _, p := range list.Items {
				names = append(names, p.Name)
			}
			return errs.Wrap(errs.Infra, fmt.Errorf("pods still terminating on %s: %s: %w", c.Spec, strings.Join(names, ", "), ctx.Err()))
		case <-timeAfter(pollInterval):
		}
	}
}

// Leftover is an rfenv object on the cluster.
type Leftover struct {
	Kind string // Deployment, Secret, ReplicaSet or Pod
	Name string
	Env  string
}

// ListManaged lists the rfenv Deployments, Secrets and pods of a state directory in the namespace.
func (c *Conn) ListManaged(ctx context.Context, stateID string) ([]Leftover, error) {
	sel := metav1.ListOptions{LabelSelector: ManagedSelector(stateID)}
	var out []Leftover
	deps := &appsv1.DeploymentList{}
	if err := c.apps.List(ctx, "deployments", sel, deps); err != nil {
		return nil, c.apiError("list deployments", err)
	}
	for _, d := range deps.Items {
		out = append(out, Leftover{Kind: "Deployment", Name: d.Name, Env: d.Labels[protocol.LabelEnv]})
	}
	secs := &corev1.SecretList{}
	if err := c.core.List(ctx, "secrets", sel, secs); err != nil {
		return nil, c.apiError("list secrets", err)
	}
	for _, s := range secs.Items {
		out = append(out, Leftover{Kind: "Secret", Name: s.Name, Env: s.Labels[protocol.LabelEnv]})
	}
	rss := &appsv1.ReplicaSetList{}
	if err := c.apps.List(ctx, "replicasets", sel, rss); err != nil {
		return nil, c.apiError("list replica sets", err)
	}
	for _, r := range rss.Items {
		out = append(out, Leftover{Kind: "ReplicaSet", Name: r.Name, Env: r.Labels[protocol.LabelEnv]})
	}
	pods := &corev1.PodList{}
	if err := c.core.List(ctx, "pods", sel, pods); err != nil {
		return nil, c.apiError("list pods", err)
	}
	for _, p := range pods.Items {
		out = append(out, Leftover{Kind: "Pod", Name: p.Name, Env: p.Labels[protocol.LabelEnv]})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Env != out[j].Env {
			return out[i].Env < out[j].Env
		}
		return out[i].Kind+out[i].Name < out[j].Kind+out[j].Name
	})
	return out, nil
}
