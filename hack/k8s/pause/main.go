// Command pause is the pod sandbox process of rfenv's test cluster: it waits for SIGTERM or SIGINT
// and exits. It is packed into the cluster's pause image by pkg/testutil/kubecluster.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		// Reap children, as a sandbox's PID 1 should.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGCHLD)
		for range c {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}()
	<-ch
}
