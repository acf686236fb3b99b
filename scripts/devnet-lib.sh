# Sourced by the scripts that drive a devnet (console-test.sh, idle-growth.sh): `devnet_up SIGIL` starts a 4-node
# devnet in a fresh temporary directory, waits for its devnet.json, and sets `dir` (the directory), `pid` (the
# devnet) and `api` (node 0's URL); an EXIT trap stops the devnet and removes the directory.
devnet_up() {
  local sigil=$1
  dir=$(mktemp -d)
  pid=
  trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
  "$sigil" devnet --nodes 4 --data "$dir/pod" >"$dir/devnet.out" 2>"$dir/devnet.err" &
  pid=$!
  for _ in $(seq 1 300); do
    [ -f "$dir/pod/devnet.json" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/devnet.err" >&2; exit 1; }
    sleep 0.5
  done
  [ -f "$dir/pod/devnet.json" ] || { echo "the devnet did not come up" >&2; cat "$dir/devnet.err" >&2; exit 1; }
  api=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['api'][0])" "$dir/pod/devnet.json")
}
