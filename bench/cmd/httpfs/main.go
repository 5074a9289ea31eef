// Command httpfs is the Go standard library peer of ringo's file server
// benchmark: http.FileServer on one P (GOMAXPROCS=1), as the issue asks.
package main

import (
	"expvar"
	"flag"
	"log"
	"net/http"
	"runtime"
)

func main() {
	root := flag.String("root", ".", "directory to serve")
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	metrics := flag.String("metrics", "", "serve expvar (with goroutines) at this address, for the soak test")
	flag.Parse()
	if *metrics != "" {
		serveMetrics(*metrics)
	}
	runtime.GOMAXPROCS(1)
	log.Fatal(http.ListenAndServe(*addr, http.FileServer(http.Dir(*root))))
}

// serveMetrics publishes the goroutine count at /debug/vars, as the ringo
// examples do, so the soak harness can be tried on this peer.
func serveMetrics(addr string) {
	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	go func() { log.Fatal(http.ListenAndServe(addr, expvar.Handler())) }()
}
