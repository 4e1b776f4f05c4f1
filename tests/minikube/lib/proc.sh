# Process bookkeeping for ./stack: what we started has a pid file in $RUN; `down`
# stops only those. Sourced; relies on say/die from ./stack.

pidfile() { echo "$RUN/$1.pid"; }

# running NAME : true when we started NAME and it is still alive. The pid file holds
# "pid executable", so a pid reused by another program after a reboot is not mistaken.
running() {
  local f pid exe; f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  read -r pid exe <"$f"
  kill -0 "$pid" 2>/dev/null && [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$exe" ]
}

# port_owner PORT : "pid/name" of whoever listens on 127.0.0.1:PORT, empty if free.
port_owner() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\"\([^\"]*\)\",pid=\([0-9]*\).*/\2 (\1)/p' | head -n1
}

port_busy() { [ -n "$(ss -ltnH "sport = :$1" 2>/dev/null)" ]; }

# require_free_port NAME PORT VAR : fails naming the port, the process and the variable to change.
require_free_port() {
  local name=$1 port=$2 var=$3 owner
  if port_busy "$port"; then
    owner=$(port_owner "$port")
    die "port $port, needed by $name, is already in use${owner:+ by pid $owner}. Stop that process or choose another port: export $var=<port>"
  fi
}

# start NAME LOG CMD... : starts CMD detached in its own session, records its pid.
start() {
  local name=$1 log=$2; shift 2
  mkdir -p "$(dirname "$log")" "$RUN"
  : >"$log"
  local exe; exe=$(readlink -f "$(command -v "$1")") || die "$1 not found (for $name)"
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo "$! $exe" >"$(pidfile "$name")"
}

# alive PID : the process exists and is not a zombie (ours are reparented to init once
# the shell that started them is gone, and init may reap them seconds later).
alive() {
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# stop NAME : SIGTERM, then SIGKILL after 10 s; only for processes we started.
stop() {
  local name=$1 f pid i
  f=$(pidfile "$name")
  [ -f "$f" ] || return 0
  read -r pid _ <"$f"
  if running "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    say "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# wait_for NAME LOG SECONDS CMD... : polls CMD until it succeeds; on timeout or when the
# process died, fails naming the log file and showing its tail.
wait_for() {
  local name=$1 log=$2 secs=$3; shift 3
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if [ -f "$(pidfile "$name")" ] && ! running "$name"; then
      tail -n 15 "$log" >&2 || true
      die "$name exited during start-up; its log is $log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 15 "$log" >&2 || true
      die "$name did not become ready within ${secs}s; its log is $log"
    fi
    sleep 0.3
  done
}
