// Command floorcall is the benchmark's floor for `rfenv call` as a whole process: a Go program that
// does nothing but send one call to a replica and print the answer, with no state file, no
// configuration and no command line library. With -raw it writes the request to one TCP connection
// and reads the answer without net/http's Transport: the least a Go process can do to make a call.
// `go run ./bench` builds it statically and runs it beside `rfenv call` (item 2), so that the ratio
// to the empty Go program has a measured lower bound.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

const body = `{"method":"echo","args":[],"kwargs":{"x":1}}`

func main() {
	raw := flag.Bool("raw", false, "write the request to a TCP connection instead of using net/http's Transport")
	flag.Parse()
	addr, token := os.Getenv("FLOOR_ADDR"), os.Getenv("FLOOR_TOKEN")
	var out []byte
	var err error
	if *raw {
		out, err = callRaw(addr, token)
	} else {
		out, err = callHTTP(addr, token)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorcall:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func callHTTP(addr, token string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/call", bytes.NewReader([]byte(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	return answer(resp)
}

// callRaw writes the request to a new TCP connection and parses the answer with net/http's reader:
// no Transport, connection pool or goroutine besides main.
func callRaw(addr, token string) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req := fmt.Sprintf("POST /call HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, token, len(body), body)
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	return answer(resp)
}

// answer is the body of a 200 answer; another status is an error.
func answer(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, err
}
