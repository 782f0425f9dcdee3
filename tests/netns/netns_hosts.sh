#!/usr/bin/env bash
# Separate "hosts" on one Linux machine, made of network namespaces, for multi-host MPI tests.
#
#   netns_hosts.sh check                          exit 0 if namespaces work here, else 77 + reason
#   netns_hosts.sh up <prefix> <nhosts> <statedir> create hosts <prefix>h0 .. <prefix>h<n-1>
#   netns_hosts.sh run <statedir> -- <command...>  run a command on host 0 with Open MPI's env
#   netns_hosts.sh agent <ssh-style args>          Open MPI plm_rsh_agent (used via <statedir>/agent)
#   netns_hosts.sh down <statedir>                 kill everything, delete everything (idempotent)
#
# Each host is a network namespace <prefix>-hI with one interface, eth0 (10.213.X.(10+I)/24), a
# veth whose other end sits on a bridge in a namespace of its own, <prefix>-br: nothing is added
# to the root namespace. A holder process per host owns the host's UTS namespace (hostname
# <prefix>hI) and mount namespace (its own /dev/shm, and an /etc/hosts that names every host);
# commands enter a host with `nsenter -t <holder pid> -n -u -m`. The machine's file system is
# otherwise shared, so binaries and /tmp are the same on every host. docs/multihost-testing.md
# explains the whole setup.
set -u
set -o pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
T=${NETNS_CMD_TIMEOUT:-10}       # bound for every single ip/nsenter/mount command
IFACE=eth0                      # the host's interface, the same name in every host namespace

die() { echo "netns_hosts: $*" >&2; exit 1; }
valid_prefix() { [[ "$1" =~ ^[a-z][a-z0-9]{1,15}$ ]]; }

# ---------------------------------------------------------------------------------------- check
cmd_check() {
  local reason="" t="rmpchk$$"
  skip() { echo "netns_hosts: cannot make namespace hosts here: $*"; exit 77; }
  [ "$(id -u)" = 0 ] || skip "not root (needs root, or CAP_SYS_ADMIN + CAP_NET_ADMIN)"
  local tool
  for tool in ip nsenter unshare setsid timeout mount; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' is not installed"
  done
  if ! reason=$(timeout "$T" ip netns add "$t-a" 2>&1); then
    skip "'ip netns add' failed: $reason"
  fi
  timeout "$T" ip netns add "$t-b" >/dev/null 2>&1
  if ! reason=$(timeout "$T" ip -n "$t-a" link add eth0 type veth peer name p0 netns "$t-b" 2>&1 &&
                timeout "$T" ip -n "$t-b" link add br0 type bridge 2>&1); then
    timeout "$T" ip netns del "$t-a" 2>/dev/null; timeout "$T" ip netns del "$t-b" 2>/dev/null
    skip "veth/bridge between namespaces failed: $reason"
  fi
  if ! reason=$(timeout "$T" ip netns exec "$t-a" unshare --uts --mount --propagation private \
                  sh -c 'hostname rmpchk && mount -t tmpfs shm /dev/shm' 2>&1); then
    timeout "$T" ip netns del "$t-a" 2>/dev/null; timeout "$T" ip netns del "$t-b" 2>/dev/null
    skip "a UTS + mount namespace with its own /dev/shm failed: $reason"
  fi
  timeout "$T" ip netns del "$t-a"; timeout "$T" ip netns del "$t-b"
  echo "netns_hosts: network namespaces, veth, bridge and UTS/mount namespaces work here"
}

# ------------------------------------------------------------------------------------------- up
cmd_up() {
  [ $# -eq 3 ] || die "usage: up <prefix> <nhosts> <statedir>"
  local prefix=$1 n=$2 state=$3
  valid_prefix "$prefix" || die "prefix '$prefix' must match [a-z][a-z0-9]{1,15}"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "nhosts must be 1..200"
  mkdir -p "$state" || die "cannot create $state"
  state=$(readlink -f "$state")
  [ -e "$state/prefix" ] && die "$state is in use (run down first)"
  # Written before anything exists, so `down` can always clean a half-built setup.
  echo "$prefix" >"$state/prefix"
  local slots=${NETNS_SLOTS:-$(nproc)}
  # A subnet per prefix (the bridges are isolated anyway; this only helps reading logs).
  local x=$(( $(printf '%s' "$prefix" | cksum | cut -d' ' -f1) % 250 + 1 ))
  local br="$prefix-br" i ns host ip
  timeout "$T" ip netns add "$br" || die "ip netns add $br failed"
  timeout "$T" ip -n "$br" link set lo up
  timeout "$T" ip -n "$br" link add br0 type bridge || die "bridge in $br failed"
  timeout "$T" ip -n "$br" link set br0 up || die "bridge up failed"
  # /etc/hosts for every host: the machine's own, plus the fake hosts.
  { grep -v "$prefix" /etc/hosts 2>/dev/null || true
    for ((i = 0; i < n; i++)); do echo "10.213.$x.$((10 + i)) ${prefix}h$i"; done
  } >"$state/etc-hosts"
  : >"$state/hostfile"
  : >"$state/hosts.map"
  for ((i = 0; i < n; i++)); do
    ns="$prefix-h$i"; host="${prefix}h$i"; ip="10.213.$x.$((10 + i))"
    timeout "$T" ip netns add "$ns" || die "ip netns add $ns failed"
    timeout "$T" ip -n "$ns" link set lo up
    timeout "$T" ip -n "$ns" link add "$IFACE" type veth peer name "vh$i" netns "$br" ||
      die "veth for $ns failed"
    timeout "$T" ip -n "$br" link set "vh$i" master br0 up || die "attaching vh$i failed"
    timeout "$T" ip -n "$ns" addr add "$ip/24" dev "$IFACE" || die "address on $ns failed"
    timeout "$T" ip -n "$ns" link set "$IFACE" up || die "link up in $ns failed"
    # The holder: its own hostname, /dev/shm and /etc/hosts; sleeps until `down`.
    setsid ip netns exec "$ns" unshare --uts --mount --propagation private sh -c '
        set -e
        hostname "$1"
        mount -t tmpfs shm /dev/shm
        mount --bind "$2/etc-hosts" /etc/hosts
        echo $$ >"$2/$1.pid.tmp"; mv "$2/$1.pid.tmp" "$2/$1.pid"
        exec sleep infinity' holder "$host" "$state" </dev/null >"$state/$host.log" 2>&1 &
    echo $! >"$state/$host.launch"    # so `down` finds a holder that is not in its namespace yet
    echo "$host slots=$slots" >>"$state/hostfile"
  done
  # Wait for the holders (each writes its pid once its namespaces are ready).
  local deadline=$((SECONDS + T)) pid
  for ((i = 0; i < n; i++)); do
    host="${prefix}h$i"
    while [ ! -s "$state/$host.pid" ]; do
      [ $SECONDS -lt $deadline ] || die "holder of $host did not start: $(cat "$state/$host.log")"
      sleep 0.05
    done
    pid=$(cat "$state/$host.pid")
    echo "$host 10.213.$x.$((10 + i)) $pid $prefix-h$i" >>"$state/hosts.map"
  done
  # The launcher agent Open MPI calls instead of ssh (plm_rsh_agent takes one program).
  cat >"$state/agent" <<EOF
#!/bin/sh
NETNS_HOSTS_STATE='$state' exec '$SELF' agent "\$@"
EOF
  chmod +x "$state/agent"
  # Stay on the fake hosts' network: the same interface name exists in every host namespace.
  echo "$IFACE" >"$state/iface"
  # Connectivity: host 0 must reach every host. A TCP connect to a closed port that is refused
  # (a reset came back) proves the path works; a timeout or "no route" does not.
  local out
  for ((i = 1; i < n; i++)); do
    ip="10.213.$x.$((10 + i))"
    out=$(timeout "$T" ip netns exec "$prefix-h0" timeout 3 bash -c "exec 3<>/dev/tcp/$ip/9" 2>&1)
    case "$out" in
      *"Connection refused"*) ;;
      *) die "host 0 cannot reach $ip: ${out:-timeout}" ;;
    esac
  done
}

# ----------------------------------------------------------------------------------------- agent
# Called by Open MPI like ssh: [options] host command words... The words are joined and run by
# a shell on that host, as sshd would.
cmd_agent() {
  local state=${NETNS_HOSTS_STATE:?agent needs NETNS_HOSTS_STATE (use <statedir>/agent)}
  while [ $# -gt 0 ]; do
    case "$1" in
      --) shift; break ;;
      -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;            # ssh options that take an argument
      -*) shift ;;
      *) break ;;
    esac
  done
  [ $# -ge 1 ] || die "agent: no host given"
  local target=$1; shift
  target=${target#*@}                                # user@host
  local name ip pid ns found=""
  while read -r name ip pid ns; do
    if [ "$target" = "$name" ] || [ "$target" = "$ip" ]; then found=$pid; break; fi
  done <"$state/hosts.map"
  [ -n "$found" ] || die "agent: unknown host '$target' (hosts: $(cut -d' ' -f1 "$state/hosts.map" | tr '\n' ' '))"
  exec nsenter -t "$found" -n -u -m --wd="$PWD" -- sh -c "$*"
}

# ------------------------------------------------------------------------------------------- run
cmd_run() {
  [ $# -ge 1 ] || die "usage: run <statedir> -- <command...>"
  local state=$1; shift
  [ "${1:-}" = "--" ] && shift
  [ $# -ge 1 ] || die "run: no command"
  state=$(readlink -f "$state")
  [ -s "$state/hosts.map" ] || die "run: $state holds no hosts (run up first)"
  local pid iface
  pid=$(head -1 "$state/hosts.map" | cut -d' ' -f3)
  iface=$(cat "$state/iface")
  kill -0 "$pid" 2>/dev/null || die "run: the holder of host 0 ($pid) is gone"
  exec env OMPI_MCA_plm_rsh_agent="$state/agent" \
    OMPI_MCA_btl_tcp_if_include="$iface" OMPI_MCA_oob_tcp_if_include="$iface" \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMPI_MCA_mpi_yield_when_idle=1 \
    timeout -k 10 "${NETNS_RUN_TIMEOUT:-600}" \
    nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"
}

# ------------------------------------------------------------------------------------------ down
# Pids in one of our hosts: in one of our network namespaces (ip netns pids), or in a holder's
# UTS or mount namespace (a process that entered a host without its network). $2: those ids.
our_pids() {
  local ns
  {
    for ns in $(timeout "$T" ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1-"); do
      timeout "$T" ip netns pids "$ns" 2>/dev/null
    done
    if [ -n "$2" ]; then
      find /proc/[0-9]*/ns -maxdepth 1 \( -name uts -o -name mnt \) -printf '%h %l\n' 2>/dev/null |
        while read -r dir id; do
          [ -n "$id" ] && case " $2 " in *" $id "*) d=${dir#/proc/}; echo "${d%/ns}" ;; esac
        done
    fi
  } | sort -u
}

# A process that still runs (a zombie has exited: its namespaces are released already).
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

cmd_down() {
  [ $# -eq 1 ] || die "usage: down <statedir>"
  local state=$1 prefix
  [ -f "$state/prefix" ] || { rm -rf "$state" 2>/dev/null; return 0; }   # nothing was made
  prefix=$(cat "$state/prefix")
  valid_prefix "$prefix" || die "down: bad prefix '$prefix' in $state/prefix"
  # The holders' UTS and mount namespaces, while the holders still run. A recorded pid counts
  # only if it is still a holder (pids get reused) and its namespaces are not this shell's.
  local f p id holder_ns=""
  local mine=" $(readlink /proc/$$/ns/uts) $(readlink /proc/$$/ns/mnt) "
  for f in "$state"/*.pid; do
    [ -f "$f" ] || continue
    p=$(cat "$f")
    [ "$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" = "sleep infinity " ] || continue
    for id in $(readlink "/proc/$p/ns/uts" "/proc/$p/ns/mnt" 2>/dev/null); do
      case "$mine" in *" $id "*) ;; *) holder_ns+=" $id" ;; esac
    done
  done
  local pids round sig
  for round in 1 2 3 4 5 6; do
    pids=$(our_pids "$prefix" "$holder_ns")
    [ -n "$pids" ] || break
    sig=TERM; [ $round -ge 3 ] && sig=KILL
    kill -s $sig $pids 2>/dev/null
    # Give them a moment to go (up to 2 s per round).
    local w
    for w in $(seq 20); do
      pids=$(for p in $pids; do alive "$p" && echo "$p"; done)
      [ -n "$pids" ] || break
      sleep 0.1
    done
  done
  # Holders that never made it into their namespace (a half-built setup).
  # Only processes that still look like a holder: a recorded pid may have been reused.
  local cmd
  for f in "$state"/*.pid "$state"/*.launch; do
    [ -f "$f" ] || continue
    p=$(cat "$f"); cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline") || continue
    case "$cmd" in
      "sleep infinity "|*" holder ${prefix}h"*) kill -KILL "$p" 2>/dev/null ;;
    esac
  done
  local ns
  for ns in $(timeout "$T" ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-"); do
    timeout "$T" ip netns del "$ns" 2>/dev/null ||
      echo "netns_hosts: could not delete namespace $ns" >&2
  done
  rm -rf /tmp/ompi."$prefix"h[0-9]* 2>/dev/null
  rm -rf "$state"
  local left
  left=$(timeout "$T" ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix-")
  [ -z "$left" ] || { echo "netns_hosts: namespaces left: $left" >&2; return 1; }
  return 0
}

case "${1:-}" in
  check) shift; cmd_check "$@" ;;
  up) shift; cmd_up "$@" ;;
  agent) shift; cmd_agent "$@" ;;
  run) shift; cmd_run "$@" ;;
  down) shift; cmd_down "$@" ;;
  *) sed -n '2,9p' "$SELF" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
