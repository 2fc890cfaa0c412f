#!/usr/bin/env bash
# postfix_env.sh - a private Postfix on loopback that relays to smtp-sink,
# for the end-to-end tests and the benchmark. Source it, then:
#   pf_start DIR SMTP_PORT SINK_PORT MILTER   (MILTER "" = no milter)
#     PF_MAIN_EXTRA: "name = value" lines set in main.cf (postconf -e) before
#     Postfix starts (settings a reload does not take, e.g.
#     default_process_limit, which sizes the listen backlog of the SMTP port)
#   pf_stop DIR
# smtp-sink saves every delivered message under DIR/sink/ (PF_SINK_DUMP=0:
# it keeps nothing, for benchmarks). Nothing listens
# outside 127.0.0.1; every process started here is stopped by pf_stop.

pf_start() {
  local dir=$1 smtp_port=$2 sink_port=$3 milter=$4
  mkdir -p "$dir/conf" "$dir/queue" "$dir/data" "$dir/sink"
  chown postfix "$dir/sink" "$dir/data" 2> /dev/null || true
  cat > "$dir/conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.example
mydomain = test.example
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = all
mynetworks = 127.0.0.0/8
relay_domains = example.net
relayhost = [127.0.0.1]:$sink_port
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_authorized_xclient_hosts = 127.0.0.0/8
message_size_limit = 104857600
mailbox_size_limit = 0
alias_maps =
alias_database =
local_recipient_maps =
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtpd_peername_lookup = no
maillog_file_prefixes = $dir
maillog_file = $dir/maillog
smtpd_milters = $milter
non_smtpd_milters = $milter
milter_default_action = accept
milter_protocol = 6
milter_connect_timeout = 5s
milter_command_timeout = 30s
milter_content_timeout = 60s
default_process_limit = 20
in_flow_delay = 0
CF
  # Edited in place, never appended: a parameter set twice makes every
  # Postfix process warn "overriding earlier entry" as it starts, and postlogd,
  # which logs to its own socket until it is initialised, then fills that
  # socket and blocks for good (master and every logging process behind it).
  if [ -n "${PF_MAIN_EXTRA:-}" ]; then
    local line settings=()
    while IFS= read -r line; do [ -n "$line" ] && settings+=("$line"); done <<< "$PF_MAIN_EXTRA"
    postconf -c "$dir/conf" -e "${settings[@]}"
  fi
  # Debian's master.cf, with our loopback smtpd, no chroot, and the log service.
  sed -e 's/^smtp \{1,\}inet .*/127.0.0.1:'"$smtp_port"' inet n - n - - smtpd/' \
      -e '/^[a-z]/ s/^\([^ ]\{1,\} \{1,\}[a-z]\{1,\} \{1,\}[-yn] \{1,\}[-yn] \{1,\}\)[-y]/\1n/' \
      /etc/postfix/master.cf > "$dir/conf/master.cf"
  grep -q '^postlog' "$dir/conf/master.cf" || \
    echo 'postlog   unix-dgram n  -       n       -       1       postlogd' >> "$dir/conf/master.cf"
  if [ "${PF_SINK_DUMP:-1}" = 1 ]; then
    smtp-sink -u postfix -R "$dir/sink" -d "%Y%m%d%H%M%S." "127.0.0.1:$sink_port" 256 > "$dir/sink.log" 2>&1 &
  else  # benchmarks: count deliveries in the sink's log, keep no files
    smtp-sink -u postfix -c "127.0.0.1:$sink_port" 256 > "$dir/sink.log" 2>&1 &
  fi
  echo $! > "$dir/sink.pid"
  postfix -c "$dir/conf" check > "$dir/check.log" 2>&1 || true
  postfix -c "$dir/conf" start > "$dir/start.log" 2>&1
}

pf_stop() {
  local dir=$1
  postfix -c "$dir/conf" stop > /dev/null 2>&1 || true
  if [ -f "$dir/sink.pid" ]; then kill "$(cat "$dir/sink.pid")" 2> /dev/null || true; fi
  # master waits for its children; make sure nothing of ours is left
  for _ in $(seq 1 50); do
    pgrep -f "$dir/conf" > /dev/null || break
    sleep 0.1
  done
  pkill -9 -f "$dir/conf" 2> /dev/null || true
}

# Reloads Postfix's configuration and waits until it is in force: master
# logged the reload and the smtpd processes that ran before it have exited
# (each finishes its client first; idle ones go at once).
pf_reload() {
  local dir=$1 n old p end
  n=$(grep -c 'reload -- version' "$dir/maillog" 2> /dev/null || true)
  old=$(pgrep -P "$(tr -d ' ' < "$dir/queue/pid/master.pid" 2> /dev/null)" smtpd 2> /dev/null | tr '\n' ' ')
  postfix -c "$dir/conf" reload > /dev/null 2>&1
  end=$((SECONDS + ${WAIT_MAX:-180}))
  while [ "$(grep -c 'reload -- version' "$dir/maillog" 2> /dev/null || true)" -le "$n" ]; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
  for p in $old; do
    while kill -0 "$p" 2> /dev/null; do
      [ "$SECONDS" -ge "$end" ] && return 1
      sleep 0.1
    done
  done
}

# Waits until DIR/sink holds N messages (or T seconds pass); prints the count.
pf_wait_delivered() {
  local dir=$1 n=$2 t=${3:-30} i c=0
  for i in $(seq 1 $((t * 10))); do
    c=$(find "$dir/sink" -type f | wc -l)
    [ "$c" -ge "$n" ] && break
    sleep 0.1
  done
  # smtp-sink creates a file when DATA starts and fills it as bytes arrive:
  # a large message is complete once Postfix has handed it over (nothing left
  # in incoming/active) and the sink's files stop growing.
  local size last=-1
  for i in $(seq 1 $((t * 10))); do
    if [ -z "$(find "$dir/queue/incoming" "$dir/queue/active" -type f 2> /dev/null | head -n 1)" ]; then
      size=$(du -sb "$dir/sink" | cut -f1)
      [ "$size" = "$last" ] && break
      last=$size
    fi
    sleep 0.1
  done
  echo "$c"
}
