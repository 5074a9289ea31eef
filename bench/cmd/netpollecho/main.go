// Command netpollecho is the cloudwego/netpoll peer of ringo's echo
// benchmark: netpoll's own event loop with its zero-copy reader and writer.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/cloudwego/netpoll"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	ln, err := netpoll.CreateListener("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	loop, err := netpoll.NewEventLoop(handle)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(loop.Serve(ln))
}

// handle echoes whatever has arrived. ReadBinary copies, so the reader's
// buffer can be released before the write is flushed.
func handle(_ context.Context, c netpoll.Connection) error {
	r, w := c.Reader(), c.Writer()
	n := r.Len()
	if n == 0 {
		return nil
	}
	p, err := r.ReadBinary(n)
	if err != nil {
		return err
	}
	if _, err := w.WriteBinary(p); err != nil {
		return err
	}
	return w.Flush()
}
