"""GPT-2 in PyTorch with Hugging Face GPT2Model parameter names and layouts.

Shapes: B batch, T time, C n_embd, H n_head, D = C/H, V vocab (50257), L n_layer.
Blocks are pre-LN: x += attn(ln_1(x)); x += mlp(ln_2(x)). GELU is the tanh form (gelu_new).
Linear layers are HF Conv1D: weight stored [in, out], y = x @ W + b. The LM head is tied to wte.
state_dict() keys are exactly the checkpoint keys: wte.weight, wpe.weight, h.N.ln_1.weight, h.N.attn.c_attn.weight,
h.N.attn.c_proj.weight, h.N.ln_2.weight, h.N.mlp.c_fc.weight, h.N.mlp.c_proj.weight, ln_f.weight (+ biases).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Conv1D(nn.Module):
    """y = x @ weight + bias with weight [in, out] (HF transformers.pytorch_utils.Conv1D)."""

    def __init__(self, n_in, n_out, std):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * std)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], -1)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


class Attention(nn.Module):
    def __init__(self, cfg, proj_std):
        super().__init__()
        C = cfg["n_embd"]
        self.n_head = cfg["n_head"]
        self.c_attn = Conv1D(C, 3 * C, 0.02)
        self.c_proj = Conv1D(C, C, proj_std)

    def forward(self, x):  # [B,T,C] -> [B,T,C]
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)  # [B,T,3C] -> 3 x [B,T,C]
        q = q.view(B, T, H, C // H).transpose(1, 2)  # [B,H,T,D]
        k = k.view(B, T, H, C // H).transpose(1, 2)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)  # [B,H,T,T]
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)  # [B,T,C]
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg, proj_std):
        super().__init__()
        C = cfg["n_embd"]
        self.c_fc = Conv1D(C, 4 * C, 0.02)
        self.c_proj = Conv1D(4 * C, C, proj_std)

    def forward(self, x):  # [B,T,C] -> [B,T,4C] -> [B,T,C]
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg, proj_std):
        super().__init__()
        C, eps = cfg["n_embd"], cfg["layer_norm_epsilon"]
        self.ln_1 = nn.LayerNorm(C, eps=eps)
        self.attn = Attention(cfg, proj_std)
        self.ln_2 = nn.LayerNorm(C, eps=eps)
        self.mlp = MLP(cfg, proj_std)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        proj_std = 0.02 / math.sqrt(2 * cfg["n_layer"])  # GPT-2's scaled init of residual projections
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        nn.init.normal_(self.wte.weight, std=0.02)
        nn.init.normal_(self.wpe.weight, std=0.01)
        self.h = nn.ModuleList(Block(cfg, proj_std) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])

    def hidden(self, ids):  # [B,T] -> ln_f(h[L]) [B,T,C]
        T = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))  # [B,T,C]
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def forward(self, ids):  # [B,T] -> logits [B,T,V]
        return self.hidden(ids) @ self.wte.weight.t()  # [B,T,C] @ [C,V] -> [B,T,V]


def config(n_layer, n_embd, n_head, n_positions):
    """config.json of the exported checkpoint (also the model's constructor argument)."""
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": 50257,
        "n_layer": n_layer,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_positions": n_positions,
        "n_ctx": n_positions,
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "initializer_range": 0.02,
        "bos_token_id": 50256,
        "eos_token_id": 50256,
        "tie_word_embeddings": True,
        "torch_dtype": "float16",
    }
