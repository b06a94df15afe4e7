# shellcheck shell=bash
# The opt-in Nova tier: RabbitMQ, Placement, a Neutron API server, nova-api,
# nova-conductor, nova-scheduler and nova-compute (the fake virt driver, with a
# snapshot that uploads a small qcow2: lib/imagegov_devcloud_virt.py), and Cinder
# (lib/cinder.sh).

# shellcheck disable=SC2034  # used by the entry script
nova_services=(rabbitmq placement neutron nova-api nova-conductor nova-scheduler nova-compute
    "${cinder_services[@]}")
# shellcheck disable=SC2034
nova_databases=(placement neutron nova_api nova nova_cell0 cinder)

RABBIT_BIN=/usr/lib/rabbitmq/bin

# A private node: own name, cookie (HOME), data, config and epmd, so neither
# a system RabbitMQ nor its /etc/rabbitmq settings can interfere.
rabbit_env() {
    RABBIT_ENV=(
        HOME="$STATE/rabbitmq"
        RABBITMQ_NODENAME=devcloud@localhost
        RABBITMQ_NODE_IP_ADDRESS="$HOST"
        RABBITMQ_NODE_PORT="$RABBIT_PORT"
        RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT"
        ERL_EPMD_ADDRESS="$HOST"
        ERL_EPMD_PORT="$EPMD_PORT"
        RABBITMQ_CONF_ENV_FILE="$ETC/rabbitmq/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$ETC/rabbitmq/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$ETC/rabbitmq/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$ETC/rabbitmq/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$STATE/rabbitmq/mnesia"
        RABBITMQ_LOG_BASE="$LOGS/rabbitmq"
        RABBITMQ_LOGS=-
        RABBITMQ_PID_FILE="$RUN/rabbitmq-beam.pid"
    )
}

rabbitmqctl_() {
    rabbit_env
    env "${RABBIT_ENV[@]}" "$RABBIT_BIN/rabbitmqctl" -q "$@"
}

start_rabbitmq() {
    [[ -x $RABBIT_BIN/rabbitmq-server ]] || die "rabbitmq-server is not installed (run: $0 install --nova)"
    if svc_alive rabbitmq; then
        log "rabbitmq already running"
        return 0
    fi
    mkdir -p "$STATE/rabbitmq/mnesia" "$LOGS/rabbitmq"
    chmod 700 "$STATE/rabbitmq"
    require_free_port rabbitmq "$RABBIT_PORT"
    require_free_port rabbitmq-dist "$RABBIT_DIST_PORT"
    if ! svc_alive epmd; then
        require_free_port epmd "$EPMD_PORT"
        spawn epmd "$LOGS/epmd.log" epmd -address "$HOST" -port "$EPMD_PORT"
    fi
    # The wrapper script traps SIGTERM and stops the Erlang node cleanly.
    rabbit_env
    spawn rabbitmq "$LOGS/rabbitmq.log" env "${RABBIT_ENV[@]}" "$RABBIT_BIN/rabbitmq-server"
}

wait_rabbitmq() {
    local t0
    t0=$(now_ms)
    until tcp_open "$HOST" "$RABBIT_PORT"; do
        svc_alive rabbitmq || fail_with_log "rabbitmq exited during start-up" "$LOGS/rabbitmq.log"
        (( $(now_ms) - t0 < 60000 )) || fail_with_log "rabbitmq did not listen on $RABBIT_PORT within 60s" "$LOGS/rabbitmq.log"
        sleep 0.2
    done
    log "rabbitmq listens on $HOST:$RABBIT_PORT after $(( $(now_ms) - t0 ))ms"
}

setup_placement() {
    [[ -f $STATE/done/placement-db ]] && return 0
    OS_PLACEMENT_CONFIG_DIR=$ETC/placement "$VENV/bin/placement-manage" \
        --config-dir "$ETC/placement" db sync >>"$LOGS/setup.log" 2>&1 || return 1
    touch "$STATE/done/placement-db"
}

# Neutron 29.0.0's migrations only run on MySQL: build the schema from the
# models, then tell alembic it is at head.
setup_neutron() {
    mkdir -p "$DATA/neutron"
    [[ -f $STATE/done/neutron-db ]] && return 0
    "$VENV/bin/python" "$DEVCLOUD_HOME/lib/neutron_schema.py" "$DC_DB/neutron" \
        >>"$LOGS/setup.log" 2>&1 || return 1
    "$VENV/bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
        --config-file "$ETC/neutron/plugins/ml2/ml2_conf.ini" stamp heads \
        >>"$LOGS/setup.log" 2>&1 || return 1
    touch "$STATE/done/neutron-db"
}

setup_nova() {
    mkdir -p "$DATA/nova/instances"
    [[ -f $STATE/done/nova-db ]] && return 0
    "$VENV/bin/python" "$DEVCLOUD_HOME/lib/nova_db.py" "$ETC/nova/nova.conf" \
        "$ETC/nova/nova-db.conf" "$DC_DB/nova_cell0" \
        >>"$LOGS/setup.log" 2>&1 || return 1
    touch "$STATE/done/nova-db"
}

nova_setup_steps() {
    bg_step placement-setup setup_placement
    bg_step neutron-setup setup_neutron
    bg_step nova-setup setup_nova
    bg_step cinder-setup setup_cinder
}

# Nova loads compute_driver as nova.virt.<value>, so the devcloud's own driver
# (lib/imagegov_devcloud_virt.py, see nova.conf) is copied into the venv's
# nova/virt/ on every start of nova-compute: a reinstalled venv gets it again.
install_virt_driver() {
    local virt
    virt=$(echo "$VENV"/lib/python3*/site-packages/nova/virt)
    [[ -d $virt ]] || die "nova is not installed in $VENV (run: $0 install --nova)"
    cmp -s "$DEVCLOUD_HOME/lib/imagegov_devcloud_virt.py" "$virt/imagegov_devcloud.py" \
        || install -m 644 "$DEVCLOUD_HOME/lib/imagegov_devcloud_virt.py" "$virt/imagegov_devcloud.py"
}

start_nova_service() {
    local name=$1 confs=(--config-file "$ETC/nova/nova.conf")
    if svc_alive "$name"; then
        log "$name already running"
        return 0
    fi
    if [[ $name == nova-compute ]]; then
        install_virt_driver
    else
        confs+=(--config-file "$ETC/nova/nova-db.conf")
    fi
    spawn "$name" "$LOGS/$name.log" "$VENV/bin/$name" "${confs[@]}"
}

# A service is ready for RPC once its queue has a consumer; a message sent
# earlier (e.g. the first boot) can be lost, so start waits for all three.
wait_queue_consumers() {
    local t0 out q missing
    t0=$(now_ms)
    while :; do
        out=$(rabbitmqctl_ list_queues --no-table-headers name consumers 2>/dev/null || true)
        missing=()
        for q in "$@"; do
            awk -v q="$q" '$1 == q && $2 > 0 { found = 1 } END { exit !found }' <<<"$out" || missing+=("$q")
        done
        ((${#missing[@]} == 0)) && break
        for q in "${missing[@]}"; do
            case $q in
                conductor) svc_alive nova-conductor || fail_with_log "nova-conductor exited" "$LOGS/nova-conductor.log" ;;
                scheduler) svc_alive nova-scheduler || fail_with_log "nova-scheduler exited" "$LOGS/nova-scheduler.log" ;;
                compute*) svc_alive nova-compute || fail_with_log "nova-compute exited" "$LOGS/nova-compute.log" ;;
                cinder-*) svc_alive "${q%%.*}" || fail_with_log "${q%%.*} exited" "$LOGS/${q%%.*}.log" ;;
            esac
        done
        if (( $(now_ms) - t0 > 90000 )); then
            fail_with_log "no consumer on queue(s) ${missing[*]} after 90s" "$LOGS/nova-${missing[0]%%.*}.log"
        fi
        sleep 0.5
    done
    log "queues $* have consumers after $(( $(now_ms) - t0 ))ms"
}

admin_token() {
    curl -s -m 10 -o /dev/null -D - -H 'Content-Type: application/json' \
        -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$ADMIN_PASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
        "http://$HOST:$KEYSTONE_PORT/v3/auth/tokens" | awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }'
}

# Map the compute host into cell1 the first time it registers. Polls the
# cell database directly: cheaper than repeated nova-manage runs (~3 s each).
discover_compute_host() {
    local t0 n
    n=$("$(pg_bindir)/psql" -X -q -h "$HOST" -p "$PG_PORT" -U devcloud -d nova_api -tAc \
        "SELECT count(*) FROM host_mappings WHERE host = 'devcloud'")
    [[ $n -gt 0 ]] && return 0
    t0=$(now_ms)
    until [[ $("$(pg_bindir)/psql" -X -q -h "$HOST" -p "$PG_PORT" -U devcloud -d nova -tAc \
        "SELECT count(*) FROM compute_nodes WHERE host = 'devcloud' AND deleted = 0") -gt 0 ]]; do
        svc_alive nova-compute || fail_with_log "nova-compute exited" "$LOGS/nova-compute.log"
        (( $(now_ms) - t0 < 90000 )) || fail_with_log "nova-compute did not register its node in 90s" "$LOGS/nova-compute.log"
        sleep 0.5
    done
    "$VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf" \
        --config-file "$ETC/nova/nova-db.conf" cell_v2 discover_hosts --verbose \
        >>"$LOGS/setup.log" 2>&1 || fail_with_log "nova-manage cell_v2 discover_hosts failed" "$LOGS/setup.log"
    log "compute host 'devcloud' mapped to cell1"
}

start_nova_tier() {
    join_step placement-setup
    start_uwsgi placement
    join_step neutron-setup
    start_uwsgi neutron
    join_step nova-setup
    start_uwsgi nova-api nova

    wait_rabbitmq
    # Service users exist by now (seeded): started earlier they fail with 401.
    start_nova_service nova-conductor
    start_nova_service nova-scheduler
    join_step cinder-setup
    start_cinder
    bg_step cinder-scheduler start_cinder_scheduler
    wait_http placement "$(endpoint_of placement)" "$LOGS/placement.log" 90
    # Compute calls the conductor at start-up: without a consumer it sits in a
    # 10 s RPC retry.
    wait_queue_consumers conductor
    start_nova_service nova-compute

    wait_http neutron "$(endpoint_of neutron)" "$LOGS/neutron.log" 90
    local token
    token=$(admin_token)
    # The first GET /v2.0/ports after a fresh start returned 500 once;
    # listing networks first avoids it.
    curl -s -o /dev/null -m 30 -H "X-Auth-Token: $token" "http://$HOST:$NEUTRON_PORT/v2.0/networks" || true
    wait_http nova-api "$(endpoint_of nova-api)" "$LOGS/nova-api.log" 90
    wait_queue_consumers conductor scheduler compute.devcloud
    discover_compute_host
    ensure_flavor "$token"
    join_step cinder-scheduler
    wait_cinder "$token"
}

# One tiny public flavor so tests can boot servers without admin setup.
ensure_flavor() {
    local token=$1
    [[ -f $STATE/done/flavor ]] && return 0
    local code
    code=$(curl -s -o /dev/null -m 30 -w '%{http_code}' -H "X-Auth-Token: $token" \
        -H 'Content-Type: application/json' \
        -d '{"flavor":{"name":"devcloud.tiny","id":"devcloud-tiny","ram":64,"vcpus":1,"disk":1,"os-flavor-access:is_public":true}}' \
        "http://$HOST:$NOVA_PORT/v2.1/flavors")
    [[ $code == 200 || $code == 409 ]] || fail_with_log "creating flavor devcloud.tiny failed (HTTP $code)" "$LOGS/nova-api.log"
    touch "$STATE/done/flavor"
}

# nova services want SIGTERM, uwsgi SIGINT; RabbitMQ's wrapper script turns
# SIGTERM into a clean node stop. epmd goes last: the node deregisters first.
stop_nova_tier() {
    stop_cinder
    stop_services 30 nova-compute:TERM nova-scheduler:TERM nova-conductor:TERM \
        nova-api:INT neutron:INT placement:INT
    stop_services 60 rabbitmq:TERM
    stop_services 10 epmd:TERM
}
