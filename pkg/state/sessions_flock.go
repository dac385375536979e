//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package state

import (
	"context"
	"os"
	"syscall"
)

// lockRecord takes flock(2) on the open record itself: closing f releases it, also if the process
// dies, and removing the record leaves no lock file behind.
func lockRecord(ctx context.Context, f *os.File) (func(), error) {
	fd := int(f.Fd())
	if err := flockWait(ctx, fd); err != nil {
		return nil, err
	}
	return func() { syscall.Flock(fd, syscall.LOCK_UN) }, nil
}
