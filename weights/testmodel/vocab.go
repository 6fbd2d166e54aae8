package testmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/logitlens/logitlens/weights/builtin/model"
)

const eotText = "<|endoftext|>"

// vocabulary is the tokenizer of a checkpoint: tokens by id (in GPT-2's
// bytes_to_unicode alphabet), merges in rank order ("a b"), and the bytes
// of vocab.json and merges.txt.
type vocabulary struct {
	tokens               []string
	merges               []string
	vocabJSON, mergesTXT []byte
}

// gpt2 parses GPT-2's vocabulary once per process and checks the structure
// narrower vocabularies rely on: ids 0..255 are the byte tokens, merge i
// makes token 256+i, and <|endoftext|> is the last id.
var gpt2 = sync.OnceValues(func() (*vocabulary, error) {
	vocabJSON, mergesTXT, err := model.GPT2Vocabulary()
	if err != nil {
		return nil, err
	}
	var ids map[string]int
	if err := json.Unmarshal(vocabJSON, &ids); err != nil {
		return nil, fmt.Errorf("testmodel: GPT-2's vocab.json: %w", err)
	}
	v := &vocabulary{tokens: make([]string, GPTVocab), vocabJSON: vocabJSON, mergesTXT: mergesTXT}
	for tok, id := range ids {
		if id < 0 || id >= GPTVocab || v.tokens[id] != "" {
			return nil, fmt.Errorf("testmodel: GPT-2's vocab.json: id %d of %q out of range or repeated", id, tok)
		}
		v.tokens[id] = tok
	}
	lines := strings.Split(string(mergesTXT), "\n")
	if !strings.HasPrefix(lines[0], "#version") || lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("testmodel: GPT-2's merges.txt: no #version line or no final newline")
	}
	v.merges = lines[1 : len(lines)-1]
	if len(v.merges) != GPTVocab-minVocab {
		return nil, fmt.Errorf("testmodel: GPT-2's merges.txt has %d merges, want %d", len(v.merges), GPTVocab-minVocab)
	}
	for i, m := range v.merges {
		if a, b, _ := strings.Cut(m, " "); a+b != v.tokens[256+i] {
			return nil, fmt.Errorf("testmodel: GPT-2's merge %d %q does not make token %d %q", i, m, 256+i, v.tokens[256+i])
		}
	}
	if v.tokens[GPTVocab-1] != eotText {
		return nil, fmt.Errorf("testmodel: GPT-2's last token is %q, want %s", v.tokens[GPTVocab-1], eotText)
	}
	return v, nil
})

// vocabularyOf returns GPT-2's vocabulary cut to size ids: its byte tokens,
// its first size−257 merges and <|endoftext|> last. GPT-2's own size keeps
// its files byte for byte.
func vocabularyOf(size int) (*vocabulary, error) {
	full, err := gpt2()
	if err != nil || size == GPTVocab {
		return full, err
	}
	n := size - minVocab
	v := &vocabulary{
		tokens: append(full.tokens[:256+n:256+n], eotText),
		merges: full.merges[:n],
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for id, tok := range v.tokens {
		if id > 0 {
			b.WriteString(", ")
		}
		writeJSONString(&b, tok)
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(id))
	}
	b.WriteByte('}')
	v.vocabJSON = b.Bytes()
	v.mergesTXT = []byte("#version: 0.2\n" + strings.Join(v.merges, "\n") + "\n")
	return v, nil
}

// tokenizerJSON is the Hugging Face tokenizer.json of v: a byte-level BPE
// with <|endoftext|> as its one added token, the vocabulary in id order and
// the merges as "a b" strings or ["a", "b"] pairs.
func tokenizerJSON(v *vocabulary, format MergesFormat) []byte {
	var vocab bytes.Buffer
	vocab.WriteByte('{')
	for id, tok := range v.tokens {
		if id > 0 {
			vocab.WriteByte(',')
		}
		writeJSONString(&vocab, tok)
		vocab.WriteByte(':')
		vocab.WriteString(strconv.Itoa(id))
	}
	vocab.WriteByte('}')
	var merges any = v.merges
	if format == MergePairs {
		pairs := make([][2]string, len(v.merges))
		for i, m := range v.merges {
			pairs[i][0], pairs[i][1], _ = strings.Cut(m, " ")
		}
		merges = pairs
	}
	type byteLevel struct {
		Type           string `json:"type"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
		TrimOffsets    bool   `json:"trim_offsets"`
		UseRegex       bool   `json:"use_regex"`
	}
	doc := struct {
		Version     string    `json:"version"`
		Truncation  any       `json:"truncation"`
		Padding     any       `json:"padding"`
		AddedTokens []any     `json:"added_tokens"`
		Normalizer  any       `json:"normalizer"`
		PreTok      byteLevel `json:"pre_tokenizer"`
		PostProc    byteLevel `json:"post_processor"`
		Decoder     byteLevel `json:"decoder"`
		Model       struct {
			Type                    string          `json:"type"`
			Dropout                 any             `json:"dropout"`
			UnkToken                any             `json:"unk_token"`
			ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
			EndOfWordSuffix         string          `json:"end_of_word_suffix"`
			FuseUnk                 bool            `json:"fuse_unk"`
			ByteFallback            bool            `json:"byte_fallback"`
			IgnoreMerges            bool            `json:"ignore_merges"`
			Vocab                   json.RawMessage `json:"vocab"`
			Merges                  any             `json:"merges"`
		} `json:"model"`
	}{
		Version: "1.0",
		AddedTokens: []any{struct {
			ID         int    `json:"id"`
			Content    string `json:"content"`
			SingleWord bool   `json:"single_word"`
			Lstrip     bool   `json:"lstrip"`
			Rstrip     bool   `json:"rstrip"`
			Normalized bool   `json:"normalized"`
			Special    bool   `json:"special"`
		}{ID: len(v.tokens) - 1, Content: eotText, Normalized: true, Special: true}},
		PreTok:   byteLevel{"ByteLevel", false, true, true},
		PostProc: byteLevel{"ByteLevel", true, false, true},
		Decoder:  byteLevel{"ByteLevel", true, true, true},
	}
	doc.Model.Type = "BPE"
	doc.Model.Vocab = vocab.Bytes()
	doc.Model.Merges = merges
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		panic("testmodel: " + err.Error()) // only our own fixed types are encoded
	}
	return b.Bytes()
}

// writeJSONString writes s as a JSON string, escaping only what JSON
// requires.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
