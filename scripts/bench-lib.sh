# shellcheck shell=bash
# Helpers shared by scripts/bench-launch, bench-hotplug and bench-overcommit. Source it; it defines functions and
# sets BENCH_ROOT (the repository) only.

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# bench_setup [--guest]: installs deps (apt only when missing), finds swift, builds corral, corrald, corral-local and
# corral-bench
# with scripts/build-release (the installed build: release, static Swift runtime; scratch dir $SCRATCH_PATH, default
# .build-bench), optionally the test guest. Sets CORRAL and BENCH. Both sides of every A/B use that one build.
# BENCH_SKIP_BUILD=1 uses the binaries already built there (e.g. while the tree does not compile).
bench_setup() {
    cd "$BENCH_ROOT"
    "$BENCH_ROOT/scripts/install-deps" >&2
    if ! command -v swift >/dev/null 2>&1; then
        for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            [[ -x "$candidate/swift" ]] && export PATH="$candidate:$PATH" && break
        done
    fi
    if [[ "${1:-}" == "--guest" ]]; then
        "$BENCH_ROOT/scripts/build-test-guest" >&2
    fi
    local scratch="${SCRATCH_PATH:-.build-bench}" bin
    bin="$("$BENCH_ROOT/scripts/build-release" --scratch-path "$scratch" --print-bin-path)"
    CORRAL="$bin/corral"
    BENCH="$bin/corral-bench"
    if [[ "${BENCH_SKIP_BUILD:-0}" == 1 && -x "$CORRAL" && -x "$bin/corrald" && -x "$bin/corral-local" && -x "$BENCH" ]]; then
        echo "bench: BENCH_SKIP_BUILD=1: using the binaries already in $bin" >&2
        return
    fi
    echo "bench: building corral, corrald, corral-local and corral-bench (scripts/build-release --scratch-path $scratch)…" >&2
    "$BENCH_ROOT/scripts/build-release" --scratch-path "$scratch" corral corrald corral-local corral-bench >&2
}

# bench_need_tool COMMAND [PACKAGE]: installs PACKAGE (default: COMMAND) with apt when COMMAND is missing.
bench_need_tool() {
    local tool="$1" package="${2:-$1}"
    command -v "$tool" >/dev/null 2>&1 && return
    echo "bench: installing $package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$package" >/dev/null 2>&1 || {
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "$package" >/dev/null
    }
}

# bench_machine: one line describing where the figures come from.
bench_machine() {
    local qemu
    qemu="$(qemu-system-x86_64 --version | head -1 | sed -e 's/^QEMU emulator version //' -e 's/ (.*//')"
    local commit
    commit="$(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    [[ "${BENCH_SKIP_BUILD:-0}" == 1 ]] && commit="$commit, binaries built earlier (BENCH_SKIP_BUILD=1)"
    echo "$(date -u +%Y-%m-%d), corral $commit, $(nproc) cores (shared), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, QEMU $qemu, -accel tcg, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
}

# bench_daemon_has FLAG: true when `corral daemon --help` lists FLAG.
bench_daemon_has() {
    "$CORRAL" daemon --help 2>&1 | grep -q -- "$1"
}

# bench_wait_socket PATH PID [SECONDS]: waits until PATH is a socket while PID lives.
bench_wait_socket() {
    local path="$1" pid="$2" tries=$(( ${3:-30} * 20 ))
    while (( tries-- > 0 )); do
        [[ -S "$path" ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# bench_kill_state_qemus STATE_DIR: SIGKILLs every QEMU whose pid file is under STATE_DIR/vms (the daemon's QEMUs
# outlive it) and waits for them to go.
bench_kill_state_qemus() {
    local dir="$1" pidfile pid pids=()
    for pidfile in "$dir"/vms/*/qemu.pid; do
        [[ -f "$pidfile" ]] || continue
        pid="$(tr -dc 0-9 <"$pidfile")"
        [[ -n "$pid" ]] && [[ -e "/proc/$pid" ]] && grep -q qemu "/proc/$pid/comm" 2>/dev/null && pids+=("$pid")
    done
    ((${#pids[@]})) || return 0
    kill -9 "${pids[@]}" 2>/dev/null || true
    for pid in "${pids[@]}"; do
        while [[ -e "/proc/$pid" ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do sleep 0.05; done
    done
}

# bench_stop_pid PID: SIGTERM, then SIGKILL after 10 s; waits for it when it is our child.
bench_stop_pid() {
    local pid="$1" i
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# bench_spread N1 N2 …: "median (min–max)" with one decimal.
bench_spread() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) { print "–"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f (%.1f–%.1f)\n", m, v[1], v[NR] }'
}

# bench_pss_kib PID…: sum of Pss over the processes (smaps_rollup), in KiB.
bench_pss_kib() {
    local pid total=0 value
    for pid in "$@"; do
        value="$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)"
        total=$(( total + ${value:-0} ))
    done
    echo "$total"
}

# bench_update_doc ID FILE: puts FILE's contents between `<!-- bench:ID -->` and `<!-- /bench:ID -->` in
# docs/benchmarks.md, replacing what was there, or appends the section (with the markers) when it is new.
bench_update_doc() {
    local id="$1" body="$2" doc="$BENCH_ROOT/docs/benchmarks.md"
    [[ -f "$doc" ]] || printf '# Benchmarks\n' >"$doc"
    awk -v start="<!-- bench:$id -->" -v end="<!-- /bench:$id -->" -v body="$body" '
        BEGIN { while ((getline line < body) > 0) text = text line "\n" }
        $0 == start { printf "%s\n%s", start, text; inside = 1; found = 1; next }
        $0 == end { inside = 0; print; next }
        !inside { print }
        END { if (!found) printf "\n%s\n%s%s\n", start, text, end }
    ' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
    echo "bench: updated docs/benchmarks.md (section $id)" >&2
}
