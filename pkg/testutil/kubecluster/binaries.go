package kubecluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Binaries are the programs a cluster runs.
type Binaries struct {
	K8s        string // multi-call: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl
	Pause      string // the sandbox process, packed into the pause image
	Etcd       string
	CNIBin     string // directory of CNI plugins
	Containerd string
	Ctr        string
	// ContainerdPath is the PATH containerd runs with (it finds its shim and runc there).
	ContainerdPath string
	Runc           string
}

// CacheDir is where built and downloaded binaries are kept between runs (and CI runs):
// $RFENV_K8S_CACHE, else ~/.cache/rfenv-k8s.
func CacheDir() string {
	if d := os.Getenv("RFENV_K8S_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "rfenv-k8s")
}

// RepoRoot finds the main module's root (the directory holding hack/k8s) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "k8s", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("hack/k8s/go.mod not found above the working directory")
		}
		dir = parent
	}
}

var binMu sync.Mutex

// EnsureBinaries builds Kubernetes (hack/k8s, cached by the hash of its sources and the Go version)
// and fetches etcd, the CNI plugins and, if this machine lacks them, containerd and runc from Debian
// (apt-get download + dpkg-deb -x into the cache; nothing is installed system-wide).
func EnsureBinaries(ctx context.Context, log io.Writer) (Binaries, error) {
	binMu.Lock()
	defer binMu.Unlock()
	var b Binaries
	cache := CacheDir()
	if err := os.MkdirAll(filepath.Join(cache, "bin"), 0o755); err != nil {
		return b, err
	}
	root, err := RepoRoot()
	if err != nil {
		return b, err
	}
	src := filepath.Join(root, "hack", "k8s")
	key, err := sourceKey(src)
	if err != nil {
		return b, err
	}
	if b.K8s, err = goBuild(ctx, log, src, ".", filepath.Join(cache, "bin", "k8s-"+key)); err != nil {
		return b, err
	}
	if b.Pause, err = goBuild(ctx, log, src, "./pause", filepath.Join(cache, "bin", "pause-"+key)); err != nil {
		return b, err
	}
	debRoot := filepath.Join(cache, "debroot")
	if err := debExtract(ctx, log, cache, debRoot, "etcd-server", "usr/bin/etcd"); err != nil {
		return b, err
	}
	b.Etcd = filepath.Join(debRoot, "usr", "bin", "etcd")
	if err := debExtract(ctx, log, cache, debRoot, "containernetworking-plugins", "usr/lib/cni/bridge"); err != nil {
		return b, err
	}
	b.CNIBin = filepath.Join(debRoot, "usr", "lib", "cni")
	sysPath := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if p, err := exec.LookPath("containerd"); err == nil && haveAll("containerd-shim-runc-v2", "ctr", "runc") {
		b.Containerd = p
		b.Ctr, _ = exec.LookPath("ctr")
		b.Runc, _ = exec.LookPath("runc")
		b.ContainerdPath = filepath.Dir(p) + ":" + sysPath
	} else {
		if err := debExtract(ctx, log, cache, debRoot, "containerd", "usr/bin/containerd"); err != nil {
			return b, err
		}
		if err := debExtract(ctx, log, cache, debRoot, "runc", "usr/sbin/runc"); err != nil {
			return b, err
		}
		b.Containerd = filepath.Join(debRoot, "usr", "bin", "containerd")
		b.Ctr = filepath.Join(debRoot, "usr", "bin", "ctr")
		b.Runc = filepath.Join(debRoot, "usr", "sbin", "runc")
		b.ContainerdPath = filepath.Join(debRoot, "usr", "bin") + ":" + filepath.Join(debRoot, "usr", "sbin") + ":" + sysPath
	}
	return b, nil
}

func haveAll(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

// sourceKey hashes the wrapper module's sources and the Go toolchain's version.
func sourceKey(dir string) (string, error) {
	h := sha256.New()
	io.WriteString(h, runtime.Version())
	for _, name := range []string{"go.mod", "go.sum", "main.go", "pause/main.go"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// goBuild builds pkg of the module in dir into out unless out exists. The compile runs at the normal
// priority: it is a step of its own (make k8s-binaries), and at nice 19 next to busy processes
// (CI's CPU hogs) it got almost no CPU, a cold build running past half an hour.
func goBuild(ctx context.Context, log io.Writer, dir, pkg, out string) (string, error) {
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	fmt.Fprintf(log, "kubecluster: building %s (cold: several minutes; cached in %s)\n", filepath.Join(dir, pkg), filepath.Dir(out))
	tmp := out + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("build %s in %s: %w", pkg, dir, err)
	}
	return out, os.Rename(tmp, out)
}

// debExtract downloads a Debian package (once) and unpacks it into root unless want exists there.
func debExtract(ctx context.Context, log io.Writer, cache, root, pkg, want string) error {
	if _, err := os.Stat(filepath.Join(root, want)); err == nil {
		return nil
	}
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	matches, _ := filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
	if len(matches) == 0 {
		fmt.Fprintf(log, "kubecluster: apt-get download %s\n", pkg)
		dl := func() error {
			cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
			cmd.Dir = debs
			cmd.Stdout, cmd.Stderr = log, log
			return cmd.Run()
		}
		if err := dl(); err != nil {
			up := exec.CommandContext(ctx, "apt-get", "update", "-qq")
			up.Stdout, up.Stderr = log, log
			if uerr := up.Run(); uerr != nil {
				return fmt.Errorf("apt-get update: %w", uerr)
			}
			if err := dl(); err != nil {
				return fmt.Errorf("apt-get download %s: %w", pkg, err)
			}
		}
		matches, _ = filepath.Glob(filepath.Join(debs, pkg+"_*.deb"))
		if len(matches) == 0 {
			return fmt.Errorf("apt-get download %s left no .deb in %s", pkg, debs)
		}
	}
	out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", matches[0], root).CombinedOutput()
	if err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v: %s", matches[0], err, strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(filepath.Join(root, want)); err != nil {
		return fmt.Errorf("%s has no %s", pkg, want)
	}
	return nil
}
