//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package state

import (
	"context"
	"encoding/binary"
	"errors"
	"syscall"
	"time"
)

// incrCounter increments the counter file at path under flock(2). It uses raw syscalls on one
// descriptor (gofrs/flock does not expose its descriptor, and pread/pwrite must go through the
// locked one): close releases the lock, also if the process dies. mkdirs creates the missing
// directories when the file cannot be created for lack of them.
func incrCounter(ctx context.Context, path string, mkdirs func() error) (uint64, error) {
	fd, err := openCounter(path)
	if err == syscall.ENOENT {
		if err := mkdirs(); err != nil {
			return 0, err
		}
		fd, err = openCounter(path)
	}
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)

	if err := flockWait(ctx, fd); err != nil {
		return 0, err
	}
	var buf [8]byte
	n, err := retryEINTR(func() (int, error) { return syscall.Pread(fd, buf[:], 0) })
	if err != nil {
		return 0, err
	}
	if n < len(buf) {
		clear(buf[:]) // new (empty) file: start at 0
	}
	v := binary.LittleEndian.Uint64(buf[:])
	binary.LittleEndian.PutUint64(buf[:], v+1)
	n, err = retryEINTR(func() (int, error) { return syscall.Pwrite(fd, buf[:], 0) })
	if err != nil {
		return 0, err
	}
	if n != len(buf) {
		return 0, errors.New("short write")
	}
	return v, nil
}

func openCounter(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, fileMode)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// flockWait takes an exclusive flock on fd, polling with a short backoff while another process
// holds it (for microseconds) so that ctx is honoured.
func flockWait(ctx context.Context, fd int) error {
	delay := 20 * time.Microsecond
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		switch err {
		case nil:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EWOULDBLOCK:
		default:
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, time.Millisecond)
	}
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != syscall.EINTR {
			return n, err
		}
	}
}
