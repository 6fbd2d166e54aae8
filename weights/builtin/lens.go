package builtin

import (
	"embed"
	"io/fs"
)

// lensFiles holds the built-in model's tuned lens, config.json and
// params.pt as `logitlens tune` wrote them (tools/tunedlens/run.sh: trained
// on the model's own training text; docs/TUNED.md measures it).
//
//go:embed lens/config.json lens/params.pt
var lensFiles embed.FS

// LensSource names the built-in tuned lens in status lines and exports.
const LensSource = "built-in"

// LensFiles returns the built-in model's tuned lens: config.json and
// params.pt at the root, for tunedlens.LoadFS. `--model demo --lens tuned`
// reads it, so the tuned lens works offline.
func LensFiles() fs.FS {
	sub, err := fs.Sub(lensFiles, "lens")
	if err != nil {
		panic("builtin: embedded lens: " + err.Error()) // a broken build, not bad input
	}
	return sub
}
