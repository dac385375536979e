package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/klog/v2"

	"github.com/rfenv/rfenv/pkg/errs"
)

var timeAfter = time.After

// Serving says whether a pod can take calls: it runs, its readiness probe passes, it has an IP and it
// is not terminating.
func Serving(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// SortPods orders pods by creation time, then name: the order replica indices follow.
func SortPods(pods []corev1.Pod) {
	sort.Slice(pods, func(i, j int) bool {
		ti, tj := pods[i].CreationTimestamp.Time, pods[j].CreationTimestamp.Time
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return pods[i].Name < pods[j].Name
	})
}

// ListPods lists an environment's pods (all of them, serving or not) and the list's resource version.
func (c *Conn) ListPods(ctx context.Context, env, stateID string) ([]corev1.Pod, string, error) {
	list := &corev1.PodList{}
	if err := c.core.List(ctx, "pods", metav1.ListOptions{LabelSelector: Selector(env, stateID)}, list); err != nil {
		return nil, "", c.apiError("list the pods of "+env, err)
	}
	SortPods(list.Items)
	return list.Items, list.ResourceVersion, nil
}

// WatchPods calls onChange with every pod of the environment (serving or not) each time one changes,
// until ctx is done. client-go's RetryWatcher keeps the watch open (re-opening it from the last
// resource version, at most once a second, when it fails or ends); only when the watch cannot resume
// (its resource version expired, or it is refused) are the pods listed again, with backoff.
func (c *Conn) WatchPods(ctx context.Context, env, stateID, rv string, initial []corev1.Pod, onChange func([]corev1.Pod)) {
	// client-go logs through klog; a library prints nothing, so its logger is a discarding one.
	ctx = klog.NewContext(ctx, logr.Discard())
	pods := map[string]corev1.Pod{}
	for _, p := range initial {
		pods[p.Name] = p
	}
	emit := func() {
		out := make([]corev1.Pod, 0, len(pods))
		for _, p := range pods {
			out = append(out, p)
		}
		SortPods(out)
		onChange(out)
	}
	w := podWatcher{c: c, selector: Selector(env, stateID)}
	backoff := watchBackoffMin
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-timeAfter(backoff):
		}
		backoff = min(2*backoff, watchBackoffMax)
		return true
	}
	for ctx.Err() == nil {
		if rv == "" || rv == "0" {
			list, nrv, err := c.ListPods(ctx, env, stateID)
			if err != nil || nrv == "" {
				if !wait() {
					return
				}
				continue
			}
			pods = map[string]corev1.Pod{}
			for _, p := range list {
				pods[p.Name] = p
			}
			rv = nrv
			emit()
		}
		rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, w)
		if err != nil {
			rv = ""
			continue
		}
		delivered := false
		for ev := range rw.ResultChan() {
			if ev.Type == watch.Error {
				rv = "" // cannot resume: list again
				break
			}
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			rv = p.ResourceVersion
			switch ev.Type {
			case watch.Added, watch.Modified:
				pods[p.Name] = *p
				delivered = true
				emit()
			case watch.Deleted:
				delete(pods, p.Name)
				delivered = true
				emit()
			}
		}
		rw.Stop()
		if delivered {
			backoff = watchBackoffMin
		}
		if rv == "" && !wait() {
			return
		}
	}
}

// Bounds of the backoff between re-lists of an environment's pods.
const (
	watchBackoffMin = 100 * time.Millisecond
	watchBackoffMax = 5 * time.Second
)

// podWatcher opens watches of an environment's pods (a cache.WatcherWithContext for RetryWatcher).
type podWatcher struct {
	c        *Conn
	selector string
}

func (w podWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	o.LabelSelector = w.selector
	o.AllowWatchBookmarks = true
	return w.c.core.Watch(ctx, "pods", o)
}

// fatalWaiting are container waiting reasons that do not fix themselves.
var fatalWaiting = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true, "CrashLoopBackOff": true,
	"RunContainerError": true,
}

var pullReasons = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true}

// podFailure says why a pod can never become ready, or "" if it still may.
func podFailure(p *corev1.Pod) (reason, message string, crashed bool) {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && fatalWaiting[w.Reason] {
			return w.Reason, w.Message, w.Reason == "CrashLoopBackOff"
		}
		if t := cs.State.Terminated; t != nil {
			return "Exited", fmt.Sprintf("the container exited with code %d (%s)", t.ExitCode, t.Reason), true
		}
		if cs.RestartCount > 0 {
			if t := cs.LastTerminationState.Terminated; t != nil {
				return "Restarted", fmt.Sprintf("the container exited with code %d (%s) and was restarted", t.ExitCode, t.Reason), true
			}
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return "Failed", p.Status.Reason + " " + p.Status.Message, false
	}
	return "", "", false
}

// Diagnose describes a pod for an error message: its last events and the tail of its log.
func (c *Conn) Diagnose(ctx context.Context, p *corev1.Pod, previous bool) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var b strings.Builder
	evs := &corev1.EventList{}
	err := c.core.List(ctx, "events", metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + p.Name,
	}, evs)
	if err == nil && len(evs.Items) > 0 {
		items := evs.Items
		sort.Slice(items, func(i, j int) bool { return eventTime(items[i]).Before(eventTime(items[j])) })
		if len(items) > 6 {
			items = items[len(items)-6:]
		}
		b.WriteString("\n  events of pod " + p.Name + ":")
		for _, e := range items {
			fmt.Fprintf(&b, "\n    %s %s: %s", e.Type, e.Reason, strings.TrimSpace(e.Message))
		}
	}
	tail := int64(20)
	rc, err := c.Logs(ctx, p.Name, &corev1.PodLogOptions{Container: ContainerName, TailLines: &tail, Previous: previous})
	if err == nil {
		data, _ := io.ReadAll(io.LimitReader(rc, 16<<10))
		rc.Close()
		if s := strings.TrimRight(string(data), "\n"); s != "" {
			b.WriteString("\n  last lines of its log:\n    " + strings.ReplaceAll(s, "\n", "\n    "))
		}
	}
	return b.String()
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// ProbeFunc asks a running pod that is not ready yet why (its /health); an error fails the wait.
type ProbeFunc func(ctx context.Context, pod *corev1.Pod) error

// WaitReady waits until exactly want pods with the given configuration hash serve, and returns them
// (sorted). It fails at once when a pod cannot pull its image, crashes, or its probe says it failed,
// with the pod's events and log tail; when ctx ends first, it says where each pod stands.
func (c *Conn) WaitReady(ctx context.Context, env, stateID, hash string, want int, probe ProbeFunc, progress io.Writer) ([]corev1.Pod, error) {
	lastProbe := map[string]time.Time{}
	lastReady := -1
	for {
		pods, _, err := c.ListPods(ctx, env, stateID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, c.timeout(ctx, env, want, nil)
			}
			return nil, err
		}
		var serving []corev1.Pod
		for i := range pods {
			p := &pods[i]
			if p.Annotations[AnnotationConfigHash] != hash || p.DeletionTimestamp != nil {
				continue
			}
			if Serving(p) {
				serving = append(serving, *p)
				continue
			}
			if reason, msg, crashed := podFailure(p); reason != "" {
				kind := errs.Infra
				if pullReasons[reason] && (strings.Contains(msg, "not found") || reason == "ErrImageNeverPull" || reason == "InvalidImageName") {
					kind = errs.NotFound
				}
				return nil, errs.New(kind, "replica pod %s of %s failed to start: %s: %s%s", p.Name, env, reason, strings.TrimSpace(msg), c.Diagnose(ctx, p, crashed && reason != "Exited"))
			}
			if probe != nil && p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && time.Since(lastProbe[p.Name]) > time.Second {
				lastProbe[p.Name] = time.Now()
				if err := probe(ctx, p); err != nil {
					return nil, errs.New(errs.Infra, "replica pod %s of %s failed to start: %v%s", p.Name, env, err, c.Diagnose(ctx, p, false))
				}
			}
		}
		if len(serving) != lastReady && progress != nil {
			fmt.Fprintf(progress, "%s: %d/%d replicas ready\n", env, len(serving), want)
			lastReady = len(serving)
		}
		if len(serving) == want {
			return serving, nil
		}
		select {
		case <-ctx.Done():
			return nil, c.timeout(ctx, env, want, pods)
		case <-timeAfter(pollInterval):
		}
	}
}

func (c *Conn) timeout(ctx context.Context, env string, want int, pods []corev1.Pod) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	var states []string
	for i := range pods {
		p := &pods[i]
		st := string(p.Status.Phase)
		for _, cond := range p.Status.Conditions {
			if cond.Status != corev1.ConditionTrue && cond.Reason != "" {
				st += ", " + cond.Reason + ": " + cond.Message
				break
			}
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Waiting != nil {
				st += ", waiting: " + cs.State.Waiting.Reason
			}
		}
		if p.DeletionTimestamp != nil {
			st += ", terminating"
		}
		states = append(states, p.Name+" ("+st+")")
	}
	detail := "no pods"
	if len(states) > 0 {
		detail = strings.Join(states, "; ")
	}
	return errs.New(errs.Infra, "%s: %d replica(s) were not ready in time on %s (namespace %s): %s", env, want, c.Spec, c.Namespace, detail)
}
