// Command lbstack is the single binary of the lbstack load-balancer stack;
// see `lbstack --help` for its subcommands.
package main

import (
	"fmt"
	"os"

	"github.com/lbstack/lbstack/pkg/cli"
)

func main() {
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
