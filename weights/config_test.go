package weights

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gpt2SmallConfig is the config.json of Hugging Face's "gpt2", trimmed of
// fields the parser ignores.
const gpt2SmallConfig = `{
  "activation_function": "gelu_new",
  "architectures": ["GPT2LMHeadModel"],
  "layer_norm_epsilon": 1e-05,
  "model_type": "gpt2",
  "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
  "reorder_and_upcast_attn": false,
  "scale_attn_by_inverse_layer_idx": false,
  "scale_attn_weights": true,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
  "vocab_size": 50257
}`

// withField returns the JSON object base with field k set to the raw JSON
// value v, or deleted when v is "".
func withField(t *testing.T, base, k, v string) string {
	t.Helper()
	m := map[string]any{}
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	if v == "" {
		delete(m, k)
	} else {
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatal(err)
		}
		m[k] = x
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseConfigGPT2Small(t *testing.T) {
	c, err := ParseConfig([]byte(gpt2SmallConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{NLayer: 12, NEmbd: 768, NHead: 12, NPositions: 1024, VocabSize: 50257,
		LayerNormEpsilon: 1e-5, ActivationFunction: "gelu_new"}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if c.HeadDim() != 64 {
		t.Errorf("HeadDim = %d", c.HeadDim())
	}
	if c.CheckVocab(50257) != nil || c.CheckVocab(50258) == nil {
		t.Error("CheckVocab accepts the wrong sizes")
	}
}

func TestParseConfigDefaultsAndAliases(t *testing.T) {
	cases := []struct {
		name, field, value string
		check              func(Config) bool
	}{
		{"no epsilon", "layer_norm_epsilon", "", func(c Config) bool { return c.LayerNormEpsilon == 1e-5 }},
		{"epsilon", "layer_norm_epsilon", "1e-6", func(c Config) bool { return c.LayerNormEpsilon == 1e-6 }},
		{"no activation", "activation_function", "", func(c Config) bool { return c.ActivationFunction == "gelu_new" }},
		{"pytorch tanh", "activation_function", `"gelu_pytorch_tanh"`, func(c Config) bool { return c.ActivationFunction == "gelu_new" }},
		{"no n_positions uses n_ctx", "n_positions", "", func(c Config) bool { return c.NPositions == 1024 }},
		{"n_positions wins over n_ctx", "n_positions", "2048", func(c Config) bool { return c.NPositions == 2048 }},
		{"reorder_and_upcast_attn", "reorder_and_upcast_attn", "true", func(c Config) bool { return c.NLayer == 12 }},
		{"n_inner null", "n_inner", "null", func(c Config) bool { return c.NEmbd == 768 }},
		{"n_inner 4C", "n_inner", "3072", func(c Config) bool { return c.NEmbd == 768 }},
		{"GPT2Model", "architectures", `["GPT2Model"]`, func(c Config) bool { return c.NLayer == 12 }},
		{"no architectures", "architectures", "", func(c Config) bool { return c.NLayer == 12 }},
		{"no model_type", "model_type", "", func(c Config) bool { return c.NLayer == 12 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(withField(t, gpt2SmallConfig, tc.field, tc.value)))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("got %+v", c)
			}
		})
	}
}

func TestParseConfigRefuses(t *testing.T) {
	cases := []struct {
		name, field, value, want string
	}{
		{"erf gelu", "activation_function", `"gelu"`, "activation_function"},
		{"relu", "activation_function", `"relu"`, `activation_function "relu"`},
		{"model_type", "model_type", `"llama"`, `model_type "llama"`},
		{"architectures", "architectures", `["GPT2DoubleHeadsModel"]`, "architectures"},
		{"head split", "n_head", "7", "not a multiple of n_head"},
		{"zero layers", "n_layer", "0", "n_layer = 0"},
		{"negative embd", "n_embd", "-768", "n_embd = -768"},
		{"zero vocab", "vocab_size", "0", "vocab_size = 0"},
		{"huge vocab", "vocab_size", "1e12", "vocab_size"},
		{"missing layers", "n_layer", "", "n_layer missing"},
		{"string size", "n_embd", `"768"`, "field n_embd"},
		{"fractional size", "n_head", "1.5", "field n_head"},
		{"zero epsilon", "layer_norm_epsilon", "0", "layer_norm_epsilon"},
		{"negative epsilon", "layer_norm_epsilon", "-1e-5", "layer_norm_epsilon"},
		{"inverse layer idx", "scale_attn_by_inverse_layer_idx", "true", "scale_attn_by_inverse_layer_idx"},
		{"unscaled attention", "scale_attn_weights", "false", "scale_attn_weights"},
		{"cross attention", "add_cross_attention", "true", "add_cross_attention"},
		{"n_inner", "n_inner", "1000", "n_inner"},
		{"non-positive n_positions", "n_positions", "0", "n_positions = 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(withField(t, gpt2SmallConfig, tc.field, tc.value)))
			if err == nil || !strings.HasPrefix(err.Error(), "weights: config.json: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	noPos := withField(t, withField(t, gpt2SmallConfig, "n_positions", ""), "n_ctx", "")
	if _, err := ParseConfig([]byte(noPos)); err == nil || !strings.Contains(err.Error(), "n_positions missing") {
		t.Errorf("no n_positions/n_ctx: err = %v", err)
	}
	anon := withField(t, withField(t, gpt2SmallConfig, "model_type", ""), "architectures", "")
	if _, err := ParseConfig([]byte(anon)); err == nil || !strings.Contains(err.Error(), "model_type missing") {
		t.Errorf("no model_type/architectures: err = %v", err)
	}
	for _, bad := range []string{"", "{", "[]", "null x", `{"model_type": 3}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "weights: config.json: ") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "no config.json") {
		t.Errorf("empty dir: err = %v", err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), []byte(gpt2SmallConfig))
	c, err := LoadConfig(dir)
	if err != nil || c.NEmbd != 768 {
		t.Errorf("LoadConfig = %+v, %v", c, err)
	}
	if err := os.Chmod(filepath.Join(dir, "config.json"), 0); err == nil && os.Getuid() != 0 {
		if _, err := LoadConfig(dir); err == nil {
			t.Error("unreadable config.json: no error")
		}
	}
}

// FuzzConfig checks that ParseConfig never panics and that whatever it
// accepts is usable by the forward pass.
func FuzzConfig(f *testing.F) {
	f.Add([]byte(gpt2SmallConfig))
	f.Add([]byte(`{"model_type":"gpt2","n_layer":2,"n_embd":64,"n_head":4,"n_ctx":128,"vocab_size":50257}`))
	f.Add([]byte(`{"architectures":["GPT2Model"],"n_layer":1,"n_embd":1,"n_head":1,"n_positions":1,"vocab_size":1,"activation_function":"gelu_pytorch_tanh","layer_norm_epsilon":1e-300}`))
	f.Add([]byte(`{"model_type":"gpt2","n_layer":-1}`))
	f.Add([]byte(`{"model_type":"gpt2","n_embd":1e400}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "weights: config.json: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			if msg := err.Error(); len(msg) > 1000 || strings.ContainsAny(msg, "\n\x1b\x07") {
				t.Fatalf("error is not one short line: %.300q (%d bytes)", msg, len(msg))
			}
			return
		}
		if c.NLayer <= 0 || c.NEmbd <= 0 || c.NHead <= 0 || c.NPositions <= 0 || c.VocabSize <= 0 ||
			c.NEmbd%c.NHead != 0 || !(c.LayerNormEpsilon > 0) || c.ActivationFunction != "gelu_new" {
			t.Fatalf("accepted unusable config %+v from %q", c, data)
		}
	})
}
