package kube

import (
	"context"
	"io"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// The API is reached with two REST clients (core/v1 and apps/v1) over a scheme holding only those
// groups, made on first use. The typed clients of client-go import k8s.io/client-go/kubernetes/scheme,
// whose package initialisation registers every API group of Kubernetes: about 4-6 ms added to the
// start of every rfenv process, `rfenv call` on a Docker environment included. This costs nothing
// until a k8s:// host is used.
var (
	schemeOnce sync.Once
	scheme     *runtime.Scheme
	codecs     serializer.CodecFactory
	paramCodec runtime.ParameterCodec
)

func initScheme() {
	schemeOnce.Do(func() {
		scheme = runtime.NewScheme()
		if err := corev1.AddToScheme(scheme); err != nil {
			panic(err)
		}
		if err := appsv1.AddToScheme(scheme); err != nil {
			panic(err)
		}
		codecs = serializer.NewCodecFactory(scheme)
		paramCodec = runtime.NewParameterCodec(scheme)
	})
}

func restClient(cfg *rest.Config, apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
	initScheme()
	c := rest.CopyConfig(cfg)
	c.APIPath = apiPath
	c.GroupVersion = &gv
	c.NegotiatedSerializer = codecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientFor(c)
}

// resources of one API group in the Conn's namespace.
type resources struct {
	rc *rest.RESTClient
	ns string
}

func (r resources) Get(ctx context.Context, resource, name string, out runtime.Object) error {
	return r.rc.Get().Namespace(r.ns).Resource(resource).Name(name).Do(ctx).Into(out)
}

func (r resources) List(ctx context.Context, resource string, opts metav1.ListOptions, out runtime.Object) error {
	return r.rc.Get().Namespace(r.ns).Resource(resource).VersionedParams(&opts, paramCodec).Do(ctx).Into(out)
}

func (r resources) Create(ctx context.Context, resource string, obj, out runtime.Object) error {
	return r.rc.Post().Namespace(r.ns).Resource(resource).Body(obj).Do(ctx).Into(out)
}

func (r resources) Update(ctx context.Context, resource, name string, obj, out runtime.Object) error {
	return r.rc.Put().Namespace(r.ns).Resource(resource).Name(name).Body(obj).Do(ctx).Into(out)
}

func (r resources) Delete(ctx context.Context, resource, name string, opts metav1.DeleteOptions) error {
	return r.rc.Delete().Namespace(r.ns).Resource(resource).Name(name).Body(&opts).Do(ctx).Error()
}

func (r resources) DeleteCollection(ctx context.Context, resource string, opts metav1.DeleteOptions, lo metav1.ListOptions) error {
	return r.rc.Delete().Namespace(r.ns).Resource(resource).VersionedParams(&lo, paramCodec).Body(&opts).Do(ctx).Error()
}

func (r resources) Watch(ctx context.Context, resource string, lo metav1.ListOptions) (watch.Interface, error) {
	lo.Watch = true
	return r.rc.Get().Namespace(r.ns).Resource(resource).VersionedParams(&lo, paramCodec).Watch(ctx)
}

// Logs streams a pod's log.
func (c *Conn) Logs(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.core.rc.Get().Namespace(c.Namespace).Resource("pods").Name(pod).SubResource("log").VersionedParams(opts, paramCodec).Stream(ctx)
}
