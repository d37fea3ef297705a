// tlspeer: the Go side of the Go crypto/tls tests (built offline by the tests
// with Debian's golang-go; only the standard library).
//
//	tlspeer client URL N [h1|h2] [delay_ms]  N keep-alive GETs of URL+"/<i>"; prints each status
//	tlspeer server ADDR CERT KEY            HTTPS (HTTP/2 and HTTP/1.1) on ADDR; prints the port
//	tlspeer load URL SECONDS CONNS          CONNS keep-alive HTTP/1.1 clients GET URL for SECONDS
//	                                        (bench/): prints "requests errors"
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// An HTTPS client trusting any certificate: HTTP/2 when proto is "h2", only
// HTTP/1.1 when "h1"; maxConns limits its connections (0: no limit).
func newClient(proto string, maxConns int) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: proto == "h2",
		MaxConnsPerHost: maxConns}
	if proto == "h1" {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // no h2
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func client(url string, n int, proto string, delay time.Duration) error {
	c := newClient(proto, 0)
	time.Sleep(delay)
	for i := 0; i < n; i++ {
		resp, err := c.Get(fmt.Sprintf("%s/%d", url, i))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Proto, resp.StatusCode)
	}
	return nil
}

func load(url string, seconds, conns int) error {
	var done, failed int64
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		// A client per goroutine, one HTTP/1.1 connection each, as wrk -c: a shared
		// pool dials a new connection whenever a request finds all of them busy,
		// and then closes the surplus (a connection per request, now and then).
		c := newClient("h1", 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				resp, err := c.Get(url)
				if err != nil {
					atomic.AddInt64(&failed, 1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	wg.Wait()
	fmt.Println(done, failed)
	return nil
}

func server(addr, cert, key string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "{\"path\":%q,\"proto\":%q}\n", r.URL.Path, r.Proto)
	})
	return http.ServeTLS(ln, mux, cert, key)
}

func main() {
	var err error
	switch {
	case len(os.Args) >= 4 && os.Args[1] == "client":
		n, _ := strconv.Atoi(os.Args[3])
		proto := "h1"
		if len(os.Args) > 4 {
			proto = os.Args[4]
		}
		delay := 0
		if len(os.Args) > 5 {
			delay, _ = strconv.Atoi(os.Args[5])
		}
		err = client(os.Args[2], n, proto, time.Duration(delay)*time.Millisecond)
	case len(os.Args) == 5 && os.Args[1] == "load":
		seconds, _ := strconv.Atoi(os.Args[3])
		conns, _ := strconv.Atoi(os.Args[4])
		err = load(os.Args[2], seconds, conns)
	case len(os.Args) == 5 && os.Args[1] == "server":
		err = server(os.Args[2], os.Args[3], os.Args[4])
	default:
		err = fmt.Errorf("usage: tlspeer client URL N [h1|h2] [delay_ms] | tlspeer server ADDR CERT KEY | " +
			"tlspeer load URL SECONDS CONNS")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlspeer:", err)
		os.Exit(1)
	}
}
