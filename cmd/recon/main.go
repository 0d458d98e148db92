// Command recon reconciles payment orders stuck in PENDING against their
// payment channels, delivers merchant notifications and reports mismatches.
// See README.md; the external contract is CONTRACT.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
