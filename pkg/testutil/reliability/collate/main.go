// Command collate turns the JSON lines that the hardening tests append to $RFENV_RELIABILITY_OUT into
// RELIABILITY.md:
//
//	go run ./pkg/testutil/reliability/collate -in rows.jsonl -out RELIABILITY.md -commit "$(git rev-parse HEAD)"
//
// The table is stamped with the commit, the date (UTC) and the machine it was measured on.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/rfenv/rfenv/pkg/testutil/reliability"
)

func main() {
	in := flag.String("in", "", "JSON lines written by the tests (required)")
	out := flag.String("out", "RELIABILITY.md", "Markdown file to write")
	stamp := reliability.Stamp{Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	flag.StringVar(&stamp.Commit, "commit", "", "the commit the tests ran on (git rev-parse HEAD; required)")
	machine := flag.String("machine", "", "what the tests ran on, beyond the core count and OS (e.g. the kernel and Docker version)")
	flag.Parse()
	stamp.Machine = fmt.Sprintf("%d cores, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	if *machine != "" {
		stamp.Machine += ", " + *machine
	}
	if err := run(*in, *out, stamp); err != nil {
		fmt.Fprintln(os.Stderr, "collate:", err)
		os.Exit(1)
	}
}

func run(in, out string, stamp reliability.Stamp) error {
	if in == "" || stamp.Commit == "" {
		return fmt.Errorf("-in and -commit are required")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := reliability.Read(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if err := reliability.Check(rows); err != nil {
		return err
	}
	reliability.Sort(rows)
	if err := os.WriteFile(out, []byte(reliability.Markdown(rows, stamp)), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d rows\n", out, len(rows))
	return nil
}
