// Command collate turns the JSON lines that the hardening tests append to $RFENV_RELIABILITY_OUT into
// RELIABILITY.md:
//
//	go run ./pkg/testutil/reliability/collate -in rows.jsonl -out RELIABILITY.md
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/rfenv/rfenv/pkg/testutil/reliability"
)

func main() {
	in := flag.String("in", "", "JSON lines written by the tests (required)")
	out := flag.String("out", "RELIABILITY.md", "Markdown file to write")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "collate:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	if in == "" {
		return fmt.Errorf("-in is required")
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
	if err := os.WriteFile(out, []byte(reliability.Markdown(rows)), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d rows\n", out, len(rows))
	return nil
}
