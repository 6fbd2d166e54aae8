#!/usr/bin/env bash
# Drives the real explorer in tmux at 80×24 and 200×50: waits for the grid,
# types, moves the cursor, reads the panel, toggles help, resizes down to
# 40×10 and 30×8 and back, quits, and asserts on capture-pane text.
#
#   bash tui/testdata/tmux.sh BIN MODEL_DIR [CAPTURE_DIR]
#
# Exits non-zero on the first failed check, printing the screen. Captures
# of every step are left in CAPTURE_DIR (default: a temporary directory)
# for a person to look at.
set -euo pipefail
bin=$(realpath "${1:?usage: tmux.sh BIN MODEL_DIR [CAPTURE_DIR]}")
model=$(realpath "${2:?usage: tmux.sh BIN MODEL_DIR [CAPTURE_DIR]}")
caps=${3:-$(mktemp -d)}
mkdir -p "$caps"
sock=logitlens-tmux-$$
tm() { tmux -L "$sock" "$@"; }
trap 'tm kill-server 2>/dev/null || true' EXIT

fail() {
  echo "FAIL [$size] $*" >&2
  tm capture-pane -p -t lt >&2 2>/dev/null || true
  exit 1
}
cap() { tm capture-pane -p -t lt; }
# waitfor NAME REGEX [SECONDS]: poll the screen until it matches.
waitfor() {
  local name=$1 re=$2 secs=${3:-30} i
  for ((i = 0; i < secs * 10; i++)); do
    if cap | grep -Eq -- "$re"; then
      cap >"$caps/$size-$name.txt"
      return 0
    fi
    sleep 0.1
  done
  fail "waiting for $name (/$re/)"
}
# gone NAME REGEX: poll until the screen no longer matches.
gone() {
  local name=$1 re=$2 i
  for ((i = 0; i < 100; i++)); do
    cap | grep -Eq -- "$re" || return 0
    sleep 0.1
  done
  fail "$name still shown (/$re/)"
}
keys() { tm send-keys -t lt "$@"; sleep 0.15; }

for size in 80x24 200x50; do
  w=${size%x*} h=${size#*x}
  status=$caps/$size-exit
  rm -f "$status"
  tm new-session -d -s lt -x "$w" -y "$h" \
    "'$bin' --model '$model' --prompt 'The cat' 2>'$caps/$size-stderr'; echo \$? >'$status'; sleep 60"

  waitfor grid '[0-9]+ out '
  cap | grep -q '^› The cat' || fail "prompt line"
  cap | grep -Eq ' emb ' || fail "embedding row"

  # Typing edits the focused prompt at once; the grid follows.
  keys -l ' sat on the mat'
  waitfor typed '␣mat'
  waitfor recomputed ' 6 tok '
  gone computing 'computing'

  # Into the grid: the cursor starts on the output row, last token.
  keys Tab
  waitfor panel-end 'pos 6 of 6'
  cap | grep -q 'layer [0-9]* (output)' || fail "panel names the output row"
  cap | grep -q 'next   (end of prompt)' || fail "panel next token at the end"
  keys h h j
  waitfor panel-moved 'pos 4 of 6'
  cap | grep -q 'input  ␣on' || fail "panel input token"
  cap | grep -q 'next   ␣the' || fail "panel next token"
  cap | grep -Eq '(^|[ │])1 .*[0-9]%' || fail "top-k list"
  cap | grep -Eq 'entropy [0-9.]+ nats' || fail "entropy"

  keys m
  waitfor metric 'colour p\((next token|final top-1)\)'
  keys '?'
  waitfor help 'logitlens keys'
  keys '?'
  gone help 'logitlens keys'

  tm resize-window -t lt -x 40 -y 10
  waitfor small-40x10 '[0-9]+ out '
  tm resize-window -t lt -x 30 -y 8
  waitfor small-30x8 'too small'
  tm resize-window -t lt -x "$w" -y "$h"
  waitfor restored '[0-9]+ out '

  keys q
  for ((i = 0; i < 50; i++)); do [ -s "$status" ] && break; sleep 0.1; done
  [ -s "$status" ] || fail "q did not quit"
  [ "$(cat "$status")" = 0 ] || fail "exit status $(cat "$status")"
  if grep -Eq 'panic|goroutine [0-9]+' "$caps/$size-stderr"; then
    fail "stack trace on stderr: $(head -5 "$caps/$size-stderr")"
  fi
  tm kill-session -t lt
  echo "ok   $size"
done
echo "captures in $caps"
