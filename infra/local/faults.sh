#!/usr/bin/env bash
# A multi-host pod on one machine, and the network faults it must survive.
#
#   sudo infra/local/faults.sh [SIGIL_BINARY]
#
# Builds a small network out of Linux network namespaces: one namespace per node (its own address, 10.77.0.1X/24,
# which exists only inside these namespaces) and one "switch" namespace with a bridge; each node is wired to the
# switch by a veth pair. Four `sigil node run` processes (simulated TEEs) form a pod across them. Then:
#
#   1. all links up               every node commits
#   2. node 3's link cut          the majority (3 of 4) keeps committing; node 3 stalls
#   3. link restored              node 3 catches up with the majority
#   4. nodes 2 and 3 cut          no quorum (3 of 4 needed): nobody commits
#   5. links restored             everyone commits again, on one chain (same root at a common height)
#   6. 40 ms ± 10 ms, 5% loss     (tc netem on every node's link) the pod still commits; on a kernel without
#                                 netem: 5% loss (nftables) and 2 Mbit/s token-bucket links (tc tbf) instead
#
# Exit 0 when every step holds, 1 when one does not (the nodes' logs are printed), 2 when it cannot run here
# (not root, no `ip netns`). Everything it made (namespaces, processes, files) is removed on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/../.."
sigil="${1:-${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}/debug/sigil}"
[ -x "$sigil" ] || { echo "faults: $sigil is not built (cargo build -p sigil)" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "faults: needs root (network namespaces)" >&2; exit 2; }
command -v ip >/dev/null && command -v tc >/dev/null || { echo "faults: needs iproute2 (ip, tc)" >&2; exit 2; }
command -v curl >/dev/null || { echo "faults: needs curl" >&2; exit 2; }

n=4
tag="sg$$"                      # unique per run: namespaces sg<pid>-n0.., sg<pid>-sw
sw="$tag-sw"
dir=$(mktemp -d)
pids=()
host() { echo "10.77.0.$((10 + $1))"; }

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for i in $(seq 0 $((n - 1))); do ip netns del "$tag-n$i" 2>/dev/null || true; done
  ip netns del "$sw" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
if ! ip netns add "$sw" 2>/dev/null; then
  echo "faults: cannot create network namespaces here" >&2
  exit 2
fi
ip -n "$sw" link set lo up
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
for i in $(seq 0 $((n - 1))); do
  ns="$tag-n$i"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "$tag-v$i" netns "$ns" type veth peer name "s$i" netns "$sw"
  ip -n "$ns" link set "$tag-v$i" name eth0
  ip -n "$ns" addr add "$(host "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$sw" link set "s$i" master br0
  ip -n "$sw" link set "s$i" up
done

hosts=$(for i in $(seq 0 $((n - 1))); do host "$i"; done | paste -sd,)
"$sigil" devnet --configs-only --hosts "$hosts" --data "$dir/pod" >"$dir/init.out"
# No traffic runs here and the checks count heights: an idle pod commits an empty block every 0.5 s, not every 10 s
# (the default `idle_interval_ms`), so heights move while each step waits.
for i in $(seq 0 $((n - 1))); do
  grep -q '^idle_interval_ms = ' "$dir/pod/node-$i.toml" || { echo "faults: node-$i.toml has no idle_interval_ms" >&2; exit 1; }
  sed -i 's/^idle_interval_ms = .*/idle_interval_ms = 500/' "$dir/pod/node-$i.toml"
done
for i in $(seq 0 $((n - 1))); do
  ip netns exec "$tag-n$i" "$sigil" node run --config "$dir/pod/node-$i.toml" >"$dir/node-$i.log" 2>&1 &
  pids+=($!)
done

# The height node i reports on its API, asked from inside its own namespace (-k: a probe, not a trust decision;
# the certificate is the node's attested one). -1 when it does not answer.
height() {
  ip netns exec "$tag-n$1" curl -sk --max-time 2 "https://$(host "$1"):8443/healthz" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])' 2>/dev/null || echo -1
}
root_at() {
  ip netns exec "$tag-n$1" curl -sk --max-time 2 "https://$(host "$1"):8443/v1/pod" 2>/dev/null |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["height"], v["root"])' 2>/dev/null || echo "-1 -"
}
heights() { for i in "$@"; do printf '%s ' "$(height "$i")"; done; }
fail() {
  echo "FAIL: $*" >&2
  for i in $(seq 0 $((n - 1))); do echo "--- node-$i (last lines)" >&2; tail -n 15 "$dir/node-$i.log" >&2; done
  exit 1
}
# Waits up to $2 seconds until every node in "$3" (a list) is past height $1.
wait_past() {
  local target=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    local ok=1
    for i in "$@"; do [ "$(height "$i")" -gt "$target" ] || ok=0; done
    [ $ok -eq 1 ] && return 0
    sleep 0.5
  done
  return 1
}
max_height() { local m=-1; for i in "$@"; do h=$(height "$i"); [ "$h" -gt "$m" ] && m=$h; done; echo "$m"; }
cut() { ip -n "$sw" link set "s$1" down; }
restore() { ip -n "$sw" link set "s$1" up; }
all=$(seq 0 $((n - 1)))

echo "== 1. a pod of $n nodes on $hosts"
wait_past 3 90 $all || fail "the pod did not start committing: heights $(heights $all)"
echo "   heights: $(heights $all)"

echo "== 2. node 3 cut off: the majority commits, node 3 stalls"
cut 3
sleep 1
h3=$(height 3); hm=$(max_height 0 1 2)
wait_past $((hm + 5)) 30 0 1 2 || fail "the majority did not commit with node 3 cut: $(heights $all)"
sleep 2
[ "$(height 3)" -le $((h3 + 1)) ] || fail "node 3 committed while cut off: $h3 -> $(height 3)"
echo "   majority $(heights 0 1 2)  node 3 stalled at $(height 3)"

echo "== 3. node 3's link restored: it catches up"
restore 3
hm=$(max_height 0 1 2)
wait_past "$hm" 60 3 || fail "node 3 did not catch up to $hm: $(heights $all)"
echo "   heights: $(heights $all)"

echo "== 4. nodes 2 and 3 cut off: no quorum, nobody commits"
cut 2; cut 3
sleep 3  # a block in flight may still land
before=$(heights 0 1)
sleep 8
after=$(heights 0 1)
[ "$before" = "$after" ] || fail "committed without a quorum: $before -> $after"
echo "   stalled at: $after"

echo "== 5. links restored: all commit again, on one chain"
restore 2; restore 3
hm=$(max_height $all)
wait_past $((hm + 3)) 90 $all || fail "the pod did not resume: $(heights $all)"
# Same root at the same height: ask until two nodes report the same height.
same=0
for _ in $(seq 1 40); do
  read -r ha ra <<<"$(root_at 0)"; read -r hb rb <<<"$(root_at 3)"
  if [ "$ha" = "$hb" ] && [ "$ha" != -1 ]; then
    [ "$ra" = "$rb" ] || fail "node 0 and node 3 disagree at height $ha: $ra vs $rb"
    same=1; break
  fi
  sleep 0.1
done
[ $same -eq 1 ] || echo "   (node 0 and node 3 were never caught at the same height; heights $(heights $all))"
echo "   heights: $(heights $all)"

# tc netem where the kernel has it; else (e.g. a Firecracker guest kernel without sch_netem) 5% random loss with
# nftables and a 2 Mbit/s token-bucket link (queueing delay), and it says so.
if ip netns exec "$tag-n0" tc qdisc add dev eth0 root netem delay 40ms 10ms loss 5% 2>/dev/null; then
  echo "== 6. 40 ms ± 10 ms latency and 5% loss (netem) on every link: the pod still commits"
  for i in $(seq 1 $((n - 1))); do ip netns exec "$tag-n$i" tc qdisc add dev eth0 root netem delay 40ms 10ms loss 5%; done
elif command -v nft >/dev/null; then
  echo "== 6. this kernel has no netem: 5% random loss (nftables) and 2 Mbit/s links (tc tbf) instead; the pod still commits"
  for i in $all; do
    ip netns exec "$tag-n$i" tc qdisc add dev eth0 root tbf rate 2mbit burst 32kbit latency 100ms
    ip netns exec "$tag-n$i" nft add table inet faults
    ip netns exec "$tag-n$i" nft add chain inet faults in '{ type filter hook input priority 0; }'
    ip netns exec "$tag-n$i" nft add rule inet faults in numgen random mod 100 '<' 5 drop
  done
else
  echo "== 6. skipped: this kernel has no netem and nft is not installed" >&2
  echo "faults: ok (steps 1-5 held; step 6 could not run here)"
  exit 0
fi
hm=$(max_height $all)
wait_past $((hm + 5)) 90 $all || fail "the pod did not commit under the degraded links: $(heights $all)"
echo "   heights: $(heights $all)"
for i in $all; do
  ip netns exec "$tag-n$i" tc qdisc del dev eth0 root 2>/dev/null || true
  ip netns exec "$tag-n$i" nft delete table inet faults 2>/dev/null || true
done

echo "faults: ok (every step held)"
