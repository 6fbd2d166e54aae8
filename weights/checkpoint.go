package weights

// Checkpoint loading: config.json + model.safetensors (or shards listed in
// model.safetensors.index.json) -> float32 tensors under canonical names.
//
// Canonical names are Hugging Face's GPT2Model names without the
// "transformer." prefix that GPT2LMHeadModel exports carry: "wte.weight",
// "h.3.mlp.c_fc.weight", "ln_f.bias", plus "lm_head.weight" when untied.
// The causal-mask buffers h.N.attn.bias and h.N.attn.masked_bias are skipped
// unread. Every tensor is checked against the shapes the config implies and
// for NaN/Inf; any other tensor name is an error, so a layout we do not
// understand fails loudly instead of being half-loaded.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrNoCheckpoint is wrapped by OpenCheckpoint's error when dir holds neither
// model.safetensors nor model.safetensors.index.json.
var ErrNoCheckpoint = errors.New("no safetensors checkpoint")

// File names of a Hugging Face checkpoint.
const (
	ConfigFile          = "config.json"
	SafetensorsFileName = "model.safetensors"
	SafetensorsIndex    = "model.safetensors.index.json"
)

// Checkpoint is an opened GPT-2 checkpoint: validated float32 tensors under
// canonical names. Tensors may alias read-only mmaps: never write to them, and
// do not use them after Close.
type Checkpoint struct {
	Config Config // from config.json
	Dir    string // the folder it was opened from

	tensors map[string]*Tensor
	files   []*SafetensorsFile
}

// OpenCheckpoint opens the GPT-2 checkpoint in dir: config.json plus
// model.safetensors, or the shards that model.safetensors.index.json lists.
// F32 tensors alias the mapped files when aligned; F16 and BF16 are converted
// to float32. A stored lm_head.weight is kept only if it differs from wte.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", pathErr(dir, err))
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("weights: %s: not a directory", safePath(dir))
	}
	single := filepath.Join(dir, SafetensorsFileName)
	index := filepath.Join(dir, SafetensorsIndex)
	var shards []string
	var weightMap map[string]string
	// A name that is there but broken (a symlink loop, a FIFO) is reported
	// as what it is by OpenSafetensors or readIndex, not as missing.
	hasSingle, hasIndex := present(single), present(index)
	switch {
	case hasSingle:
		shards = []string{SafetensorsFileName}
	case hasIndex:
		shards, weightMap, err = readIndex(index)
		if err != nil {
			return nil, err
		}
	default:
		hint := ""
		if present(filepath.Join(dir, "pytorch_model.bin")) {
			hint = " (pytorch_model.bin is not supported: convert it to safetensors)"
		}
		return nil, fmt.Errorf("weights: %s: %w: expected %s and %s (or %s with its shards)%s",
			safePath(dir), ErrNoCheckpoint, ConfigFile, SafetensorsFileName, SafetensorsIndex, hint)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Config: cfg, Dir: dir, tensors: map[string]*Tensor{}}
	if err := c.load(dir, shards, weightMap); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// present reports whether there is anything under the name path, even a
// dangling or looping symlink: Lstat, not Stat.
func present(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// maxFileName is the longest file name most file systems allow.
const maxFileName = 255

// readIndex reads model.safetensors.index.json: {"weight_map": {name: file}}.
// It returns the distinct shard files in sorted order.
func readIndex(path string) ([]string, map[string]string, error) {
	data, err := ReadFile(path, MaxIndexFile)
	if err != nil {
		return nil, nil, fmt.Errorf("weights: %w", err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, nil, fmt.Errorf("weights: %s: invalid JSON: %v", SafetensorsIndex, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, nil, fmt.Errorf("weights: %s: weight_map is missing or empty", SafetensorsIndex)
	}
	seen := map[string]bool{}
	var shards []string
	for name, file := range idx.WeightMap {
		if len(file) > maxFileName {
			return nil, nil, fmt.Errorf("weights: %s: tensor %s: shard name of %d bytes is too long", SafetensorsIndex, quote(name), len(file))
		}
		if file == "" || file != filepath.Base(file) || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
			return nil, nil, fmt.Errorf("weights: %s: tensor %s: shard %s is not a plain file name", SafetensorsIndex, quote(name), quote(file))
		}
		if !seen[file] {
			seen[file] = true
			shards = append(shards, file)
		}
	}
	sort.Strings(shards)
	return shards, idx.WeightMap, nil
}

// load opens every shard, converts its tensors and validates the whole set.
func (c *Checkpoint) load(dir string, shards []string, weightMap map[string]string) error {
	var lmHead *Tensor
	var scans []scan
	stored := map[string]string{} // canonical name -> shard, to catch duplicates
	for _, shard := range shards {
		f, err := OpenSafetensors(filepath.Join(dir, shard))
		if err != nil {
			return err
		}
		c.files = append(c.files, f)
		for _, e := range f.Entries {
			name := strings.TrimPrefix(e.Name, "transformer.")
			if weightMap != nil && weightMap[e.Name] != shard {
				return fmt.Errorf("weights: %s: tensor %s is not listed for this shard in %s", shard, quote(e.Name), SafetensorsIndex)
			}
			if isMaskBuffer(name) {
				continue
			}
			if prev, dup := stored[name]; dup {
				return fmt.Errorf("weights: %s: tensor %s duplicates %s already loaded from %s", shard, quote(e.Name), quote(name), prev)
			}
			stored[name] = shard
			data, err := f.Float32(e)
			if err != nil {
				return err
			}
			scans = append(scans, scan{shard, e.Name, data})
			t := &Tensor{Name: name, Shape: e.Shape, Data: data}
			if name == "lm_head.weight" {
				lmHead = t
				continue
			}
			c.tensors[name] = t
		}
	}
	listed := make([]string, 0, len(weightMap))
	for name := range weightMap {
		listed = append(listed, name)
	}
	sort.Strings(listed)
	for _, name := range listed {
		shard := weightMap[name]
		if _, ok := shardHas(c.files, shards, shard, name); !ok {
			return fmt.Errorf("weights: %s: tensor %s listed for %s is not in it", SafetensorsIndex, quote(name), shard)
		}
	}
	src := shards[0]
	if len(shards) > 1 {
		src = SafetensorsIndex
	}
	if err := c.validate(src); err != nil {
		return err
	}
	if err := checkFinite(scans); err != nil {
		return err
	}
	if lmHead != nil {
		if err := checkShape(src, lmHead, c.Config.VocabSize, c.Config.NEmbd); err != nil {
			return err
		}
		if !equalData(lmHead.Data, c.tensors["wte.weight"].Data) {
			c.tensors["lm_head.weight"] = lmHead
		}
	}
	return nil
}

// scan is a tensor to check for NaN/Inf.
type scan struct {
	shard, name string
	data        []float32
}

// checkFinite reports the first NaN or Inf, in file order. Reading every
// value is most of the cost of opening a checkpoint (and faults in every
// page), so the tensors are cut into chunks scanned on all CPUs.
func checkFinite(scans []scan) error {
	const chunk = 1 << 20
	type job struct{ scan, lo, hi int }
	var jobs []job
	for i, s := range scans {
		for lo := 0; lo < len(s.data); lo += chunk {
			jobs = append(jobs, job{i, lo, min(lo+chunk, len(s.data))})
		}
	}
	bad := make([]int, len(jobs)) // index of the first bad value in the job, or -1
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for j := int(next.Add(1) - 1); j < len(jobs); j = int(next.Add(1) - 1) {
				bad[j] = nonFinite(scans[jobs[j].scan].data[jobs[j].lo:jobs[j].hi])
			}
		})
	}
	wg.Wait()
	for j, i := range bad {
		if i >= 0 {
			s := scans[jobs[j].scan]
			i += jobs[j].lo
			return fmt.Errorf("weights: %s: tensor %s: element %d is %v", s.shard, quote(s.name), i, s.data[i])
		}
	}
	return nil
}

func shardHas(files []*SafetensorsFile, shards []string, shard, name string) (SafetensorsEntry, bool) {
	for i, s := range shards {
		if s == shard {
			return files[i].Entry(name)
		}
	}
	return SafetensorsEntry{}, false
}

// isMaskBuffer reports whether name is h.N.attn.bias or h.N.attn.masked_bias,
// the causal-mask buffers old GPT-2 checkpoints store. Matching whole
// components matters: h.N.attn.c_attn.bias also ends in "attn.bias".
func isMaskBuffer(name string) bool {
	p := strings.Split(name, ".")
	if len(p) != 4 || p[0] != "h" || p[2] != "attn" || (p[3] != "bias" && p[3] != "masked_bias") {
		return false
	}
	_, err := strconv.Atoi(p[1])
	return err == nil
}

// layerTensors are the suffixes of a block's tensors after "h.N.", sorted,
// with their shapes for n_embd C; Conv1D weights are stored [in, out].
var layerTensors = []struct {
	suffix string
	shape  func(C int) []int
}{
	{"attn.c_attn.bias", func(C int) []int { return []int{3 * C} }},
	{"attn.c_attn.weight", func(C int) []int { return []int{C, 3 * C} }},
	{"attn.c_proj.bias", func(C int) []int { return []int{C} }},
	{"attn.c_proj.weight", func(C int) []int { return []int{C, C} }},
	{"ln_1.bias", func(C int) []int { return []int{C} }},
	{"ln_1.weight", func(C int) []int { return []int{C} }},
	{"ln_2.bias", func(C int) []int { return []int{C} }},
	{"ln_2.weight", func(C int) []int { return []int{C} }},
	{"mlp.c_fc.bias", func(C int) []int { return []int{4 * C} }},
	{"mlp.c_fc.weight", func(C int) []int { return []int{C, 4 * C} }},
	{"mlp.c_proj.bias", func(C int) []int { return []int{C} }},
	{"mlp.c_proj.weight", func(C int) []int { return []int{4 * C, C} }},
}

// topTensors are the tensors outside the blocks, sorted; every name sorts
// after all "h.…" names.
var topTensors = []string{"ln_f.bias", "ln_f.weight", "wpe.weight", "wte.weight"}

// expectedShape returns the shape a GPT-2 of cfg needs for the tensor name,
// or false when it needs no such tensor. It works name by name rather than
// from a list of all 12·n_layer+4 names, so that a config.json with a huge
// n_layer costs nothing until tensors are actually missing.
func expectedShape(cfg Config, name string) ([]int, bool) {
	V, P, C := cfg.VocabSize, cfg.NPositions, cfg.NEmbd
	switch name {
	case "wte.weight":
		return []int{V, C}, true
	case "wpe.weight":
		return []int{P, C}, true
	case "ln_f.weight", "ln_f.bias":
		return []int{C}, true
	}
	rest, ok := strings.CutPrefix(name, "h.")
	if !ok {
		return nil, false
	}
	layer, suffix, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, false
	}
	i, err := strconv.Atoi(layer)
	if err != nil || i < 0 || i >= cfg.NLayer || strconv.Itoa(i) != layer {
		return nil, false
	}
	for _, lt := range layerTensors {
		if lt.suffix == suffix {
			return lt.shape(C), true
		}
	}
	return nil, false
}

// firstMissing returns the smallest name, in sort order, of a tensor cfg
// needs that has is false for. It walks the layers in the order their
// decimal names sort (0, 1, 10, 100, …, 11, …) and stops at the first gap,
// so its cost follows the tensors present, not n_layer.
func firstMissing(cfg Config, has func(string) bool) (string, bool) {
	var found string
	var walk func(i int) bool
	walk = func(i int) bool {
		if i >= cfg.NLayer {
			return false
		}
		h := "h." + strconv.Itoa(i) + "."
		for _, lt := range layerTensors {
			if !has(h + lt.suffix) {
				found = h + lt.suffix
				return true
			}
		}
		for d := 0; i > 0 && d < 10 && i*10+d < cfg.NLayer; d++ {
			if walk(i*10 + d) {
				return true
			}
		}
		return false
	}
	for i := range 10 {
		if walk(i) {
			return found, true
		}
	}
	for _, name := range topTensors {
		if !has(name) {
			return name, true
		}
	}
	return "", false
}

// validate checks that the loaded tensors are exactly those cfg needs, with
// the right shapes. Errors are sorted by name so that they are reproducible.
func (c *Checkpoint) validate(src string) error {
	var names []string
	for name := range c.tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		shape, ok := expectedShape(c.Config, name)
		if !ok {
			return fmt.Errorf("weights: %s: unexpected tensor %s for a GPT-2 with n_layer %d", src, quote(name), c.Config.NLayer)
		}
		if err := checkShape(src, c.tensors[name], shape...); err != nil {
			return err
		}
	}
	// Every tensor present is a distinct needed one, so the count of
	// missing ones is a subtraction.
	missing := len(layerTensors)*c.Config.NLayer + len(topTensors) - len(c.tensors)
	if name, ok := firstMissing(c.Config, func(n string) bool { return c.tensors[n] != nil }); ok {
		more := ""
		if missing > 1 {
			more = fmt.Sprintf(" (and %d more)", missing-1)
		}
		return fmt.Errorf("weights: %s: missing tensor %q%s", src, name, more)
	}
	return nil
}

func checkShape(src string, t *Tensor, want ...int) error {
	if len(t.Shape) != len(want) {
		return fmt.Errorf("weights: %s: tensor %s has shape %s, config.json implies %v", src, quote(t.Name), fmtShape(t.Shape), want)
	}
	for i := range want {
		if t.Shape[i] != want[i] {
			return fmt.Errorf("weights: %s: tensor %s has shape %s, config.json implies %v", src, quote(t.Name), fmtShape(t.Shape), want)
		}
	}
	return nil
}

func equalData(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Tensor returns the tensor under its canonical name (e.g.
// "h.3.mlp.c_fc.weight", "wte.weight"), or nil. "lm_head.weight" is nil when
// the head is tied to wte.
func (c *Checkpoint) Tensor(name string) *Tensor {
	return c.tensors[name]
}

// Names returns the canonical names of all tensors, sorted.
func (c *Checkpoint) Names() []string {
	names := make([]string, 0, len(c.tensors))
	for name := range c.tensors {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// LMHead returns the unembedding [V,C]: the stored lm_head.weight when it
// differs from wte, else wte.
func (c *Checkpoint) LMHead() *Tensor {
	if t := c.tensors["lm_head.weight"]; t != nil {
		return t
	}
	return c.tensors["wte.weight"]
}

// Close unmaps the files; tensors must not be used afterwards. Closing twice
// is a no-op.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.files, c.tensors = nil, nil
	return first
}
