// Command stdecho is the Go standard library peer of ringo's echo
// benchmark: one goroutine per connection, reading into a buffer and
// writing it back, the way most Go servers are written.
package main

import (
	"expvar"
	"flag"
	"log"
	"net"
	"net/http"
	"runtime"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	metrics := flag.String("metrics", "", "serve expvar (with goroutines) at this address, for the soak test")
	leak := flag.Bool("leak", false, "never close a connection the client closed (a deliberate fd and goroutine leak, to check that `suite soak` fails)")
	flag.Parse()
	if *metrics != "" {
		serveMetrics(*metrics)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c, *leak)
	}
}

func serve(c net.Conn, leak bool) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if leak {
				select {}
			}
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// serveMetrics publishes the goroutine count at /debug/vars, as the ringo
// examples do, so the soak harness can be tried on this peer.
func serveMetrics(addr string) {
	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	go func() { log.Fatal(http.ListenAndServe(addr, expvar.Handler())) }()
}
