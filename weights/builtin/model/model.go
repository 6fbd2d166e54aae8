// Package model holds the built-in model's files, embedded as
// tools/train/export.py --embed writes them: config.json, vocab.json and
// merges.txt gzip-compressed (".gz"), model.safetensors as is, and
// SHA256SUMS of the decompressed files. weights/builtin extracts them.
//
// It is a leaf package, apart from weights/builtin (which imports weights),
// so that weights/testmodel can take GPT-2's vocabulary from here and the
// tests of weights and weights/tokenizer can use testmodel.
package model

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
)

// Text holds SHA256SUMS and the gzip-compressed text files, at its root.
//
//go:embed SHA256SUMS *.gz
var Text embed.FS

// Weights holds WeightsFile as is. It is apart from Text so that a program
// reading only GPT2Vocabulary (one that writes test checkpoints, carried to
// a GPU box) does not link 14.5 MB of weights: the linker drops an embed no
// code refers to.
//
//go:embed model.safetensors
var Weights embed.FS

// Names of the embedded files besides the gzip-compressed ones.
const (
	// SumsFile lists "<sha256>  <name>" of every extracted file, as
	// sha256sum(1) writes it.
	SumsFile    = "SHA256SUMS"
	WeightsFile = "model.safetensors"
)

// GPT2Vocabulary returns GPT-2's vocabulary files as the built-in model
// embeds them: vocab.json and merges.txt, byte for byte OpenAI's
// encoder.json and vocab.bpe (and Hugging Face's gpt2 files), checked
// against SHA256SUMS. Test checkpoints reuse them (weights/testmodel), so no
// other copy of GPT-2's vocabulary is needed.
func GPT2Vocabulary() (vocabJSON, mergesTXT []byte, err error) {
	sums, err := Text.ReadFile(SumsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("builtin: embedded %s: %w", SumsFile, err)
	}
	read := func(name string) ([]byte, error) {
		f, err := Text.Open(name + ".gz")
		if err != nil {
			return nil, fmt.Errorf("builtin: embedded %s: %w", name, err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("builtin: embedded %s: %w", name, err)
		}
		data, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("builtin: embedded %s: %w", name, err)
		}
		sum := sha256.Sum256(data)
		if !bytes.Contains(sums, []byte(hex.EncodeToString(sum[:])+"  "+name+"\n")) {
			return nil, fmt.Errorf("builtin: embedded %s does not match %s", name, SumsFile)
		}
		return data, nil
	}
	if vocabJSON, err = read("vocab.json"); err != nil {
		return nil, nil, err
	}
	if mergesTXT, err = read("merges.txt"); err != nil {
		return nil, nil, err
	}
	return vocabJSON, mergesTXT, nil
}
