//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package state

import (
	"context"
	"os"
	"time"

	"github.com/gofrs/flock"
)

// lockRecord is the portable version: a sidecar <record>.lock taken with gofrs/flock.
func lockRecord(ctx context.Context, f *os.File) (func(), error) {
	l := flock.New(f.Name()+".lock", flock.SetPermissions(fileMode))
	if _, err := l.TryLockContext(ctx, time.Millisecond); err != nil {
		return nil, err
	}
	return func() { l.Unlock(); os.Remove(f.Name() + ".lock") }, nil
}
