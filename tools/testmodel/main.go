// Command testmodel writes one of the test checkpoints of weights/testmodel
// into a directory, for scripts: the golden regeneration
// (tools/goldens/regen.sh), CI's explorer smoke test and the GPU check.
//
//	go run ./tools/testmodel NAME DIR
//	go run ./tools/testmodel -list
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/logitlens/logitlens/weights/testmodel"
)

func main() {
	list := flag.Bool("list", false, "print the checkpoint names")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: testmodel NAME DIR\n       testmodel -list\nnames: %s\n", strings.Join(testmodel.Names(), ", "))
	}
	flag.Parse()
	if *list {
		fmt.Println(strings.Join(testmodel.Names(), "\n"))
		return
	}
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	name, dir := flag.Arg(0), flag.Arg(1)
	spec, ok := testmodel.Named(name)
	if !ok {
		fmt.Fprintf(os.Stderr, "testmodel: no checkpoint named %q (known: %s)\n", name, strings.Join(testmodel.Names(), ", "))
		os.Exit(2)
	}
	if err := testmodel.Write(dir, spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
