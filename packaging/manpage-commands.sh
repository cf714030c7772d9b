#!/usr/bin/env bash
# Prints the roff for the COMMANDS section of sundial(1) from the SUBCOMMANDS list of
# `sundial --help` (swift-argument-parser's layout: two-space indent, the name, two or more
# spaces, the abstract; wrapped abstracts continue on more deeply indented lines).
#   packaging/manpage-commands.sh /path/to/sundial
set -euo pipefail
"$1" --help | awk '
  /^SUBCOMMANDS:/ { in_list = 1; next }
  in_list && /^  See / { exit }
  in_list && /^  [a-z][a-z0-9-]*( \(default\))?  +/ {
    if (name != "") print_item()
    name = $1; text = $0; sub(/^  [a-z][a-z0-9-]*( \(default\))? +/, "", text); next
  }
  in_list && /^      +[^ ]/ && name != "" { t = $0; sub(/^ +/, "", t); text = text " " t; next }
  function print_item() {
    gsub(/\\/, "\\\\", text); gsub(/-/, "\\-", name)
    printf ".TP\n.B %s\n%s\n", name, text
  }
  END { if (name != "") print_item() }
'
