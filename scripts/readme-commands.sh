#!/usr/bin/env bash
# Run the README's commands top to bottom on a fresh clone; stop at the first that fails.
#
#   scripts/readme-commands.sh [REPO]     # REPO: a path or URL git can clone (default: this one)
#
# Every ```bash block of README.md runs, in order, in one shell (so a variable set in one block
# is seen by the next), with `set -euo pipefail` and each command echoed. A block needs a line
#   <!-- readme-commands: skip, REASON -->
# right above it to be left out (it needs a cluster, an exchange, Docker, your cloud account…);
# the reasons are printed at the end, so what was not run is never silent.
set -euo pipefail

repo=${1:-$(git -C "$(dirname "$0")" rev-parse --show-toplevel)}
work=$(mktemp -d "${TMPDIR:-/tmp}/quantrain-readme.XXXXXX")
echo "readme-commands: cloning $repo into $work/clone"
git clone --quiet "$repo" "$work/clone"
cd "$work/clone"
echo "readme-commands: at $(git log -1 --format='%h %s' | cut -c1-100)"

python3 - README.md "$work/commands.sh" "$work/skipped.txt" <<'EOF'
import re
import sys

readme, script, skipped = sys.argv[1:]
lines = open(readme, encoding="utf-8").read().splitlines()
runs, skips = [], []
i = 0
while i < len(lines):
    if lines[i].strip() == "```bash":
        start = i
        j = i + 1
        while lines[j].strip() != "```":
            j += 1
        body = lines[i + 1 : j]
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = re.match(r"<!-- readme-commands: skip, (.+?) -->", before.strip())
        if marker:
            skips.append(f"README.md:{start + 1}: {marker.group(1)}")
        else:
            runs.append(f"echo '--- README.md:{start + 1}'\n" + "\n".join(body))
        i = j
    i += 1
with open(script, "w", encoding="utf-8") as out:
    out.write("set -euo pipefail\nset -x\n" + "\n".join(runs) + "\n")
with open(skipped, "w", encoding="utf-8") as out:
    out.write("".join(f"{s}\n" for s in skips))
print(f"readme-commands: {len(runs)} blocks to run, {len(skips)} marked skip")
EOF

started=$(date +%s)
COLUMNS=${COLUMNS:-120} bash "$work/commands.sh"
echo "readme-commands: every block ran and succeeded in $(( $(date +%s) - started )) s"
echo "readme-commands: not run here (each says why):"
sed 's/^/  /' "$work/skipped.txt"
rm -rf "$work"  # kept when a command failed, to look at
