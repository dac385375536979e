// Command k8s is a multi-call binary of upstream Kubernetes components, built only for rfenv's
// Kubernetes tests (pkg/testutil/kubecluster). It is its own module so that k8s.io/kubernetes never
// becomes a dependency of rfenv itself.
//
// Usage: k8s COMPONENT [flags...], where COMPONENT is kube-apiserver, kube-controller-manager,
// kube-scheduler, kubelet or kubectl (or the binary is called by one of those names through a link).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	kubectl "k8s.io/kubectl/pkg/cmd"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if name == "k8s" || name == "kube" {
		if len(args) == 0 {
			fmt.Fprintln(os.Stderr, "usage: k8s kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kubectl [flags]")
			os.Exit(2)
		}
		name, args = args[0], args[1:]
	}
	var cmd *cobra.Command
	switch name {
	case "kube-apiserver", "apiserver":
		cmd = apiserver.NewAPIServerCommand()
	case "kube-controller-manager", "controller-manager":
		cmd = controllermanager.NewControllerManagerCommand()
	case "kube-scheduler", "scheduler":
		cmd = scheduler.NewSchedulerCommand()
	case "kubelet":
		cmd = kubelet.NewKubeletCommand(context.Background())
	case "kubectl":
		cmd = kubectl.NewDefaultKubectlCommand()
	case "version":
		fmt.Println("v1.34.4")
		return
	default:
		fmt.Fprintf(os.Stderr, "k8s: unknown component %q\n", name)
		os.Exit(2)
	}
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}
