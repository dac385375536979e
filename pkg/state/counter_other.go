//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package state

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/gofrs/flock"
)

// incrCounter is the portable version (Windows, Solaris, AIX, ...): the lock is a sidecar
// <path>.lock taken with gofrs/flock, the counter is read and written at offset 0.
func incrCounter(ctx context.Context, path string, mkdirs func() error) (uint64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	if errors.Is(err, fs.ErrNotExist) {
		if err := mkdirs(); err != nil {
			return 0, err
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, fileMode)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	l := flock.New(path+lockSuffix, flock.SetPermissions(fileMode))
	if _, err := l.TryLockContext(ctx, 100*time.Microsecond); err != nil {
		return 0, err
	}
	defer l.Unlock()

	var buf [8]byte
	if _, err := f.ReadAt(buf[:], 0); err != nil {
		if !errors.Is(err, io.EOF) {
			return 0, err
		}
		clear(buf[:])
	}
	v := binary.LittleEndian.Uint64(buf[:])
	binary.LittleEndian.PutUint64(buf[:], v+1)
	if _, err := f.WriteAt(buf[:], 0); err != nil {
		return 0, err
	}
	return v, nil
}
