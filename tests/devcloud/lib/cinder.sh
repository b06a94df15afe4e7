# shellcheck shell=bash
# Cinder, part of the Nova tier: cinder-api (uwsgi), cinder-scheduler and cinder-volume
# with the fake driver of the cinder package, file-backed (lib/devcloud_volume_driver.py),
# so volumes can be made from images, servers booted from volumes and volumes uploaded to
# images.

# shellcheck disable=SC2034  # used by lib/nova.sh and the entry script
cinder_services=(cinder-api cinder-scheduler cinder-volume)

setup_cinder() {
    mkdir -p "$DATA/cinder/volumes" "$DATA/cinder/conversion" "$STATE/lock/cinder"
    [[ -f $STATE/done/cinder-db ]] && return 0
    "$VENV/bin/cinder-manage" --config-file "$ETC/cinder/cinder.conf" db sync \
        >>"$LOGS/setup.log" 2>&1 || return 1
    touch "$STATE/done/cinder-db"
}

start_cinder_service() {
    local name=$1
    if svc_alive "$name"; then
        log "$name already running"
        return 0
    fi
    # PYTHONPATH: cinder-volume loads devcloud_volume_driver from lib/.
    spawn "$name" "$LOGS/$name.log" env PYTHONPATH="$DEVCLOUD_HOME/lib" \
        "$VENV/bin/$name" --config-file "$ETC/cinder/cinder.conf"
}

# API and volume service; the scheduler follows in the background (start_cinder_scheduler).
start_cinder() {
    start_uwsgi cinder-api cinder
    start_cinder_service cinder-volume
}

# The scheduler asks the backends for their capabilities once, at start, and then only
# hears of them every minute: it starts once cinder-volume listens. Run with bg_step so
# the Nova services start meanwhile.
start_cinder_scheduler() {
    wait_queue_consumers cinder-volume.devcloud@fake
    start_cinder_service cinder-scheduler
}

# Ready when the scheduler knows the backend's pool: a volume create before that
# fails with "No valid backend".
wait_cinder() {
    local token=$1 t0 out
    wait_http cinder-api "$(endpoint_of cinder-api)" "$LOGS/cinder-api.log" 90
    wait_queue_consumers cinder-scheduler
    t0=$(now_ms)
    until out=$(curl -s -m 10 -H "X-Auth-Token: $token" -H 'OpenStack-API-Version: volume 3.0' \
        "http://$HOST:$CINDER_PORT/v3/scheduler-stats/get_pools") && [[ $out == *'"name"'* ]]; do
        svc_alive cinder-scheduler || fail_with_log "cinder-scheduler exited" "$LOGS/cinder-scheduler.log"
        svc_alive cinder-volume || fail_with_log "cinder-volume exited" "$LOGS/cinder-volume.log"
        (( $(now_ms) - t0 < 90000 )) || fail_with_log "the scheduler knew no Cinder pool after 90s" "$LOGS/cinder-scheduler.log"
        sleep 0.5
    done
    log "cinder backend pool known to the scheduler after $(( $(now_ms) - t0 ))ms"
}

stop_cinder() {
    stop_services 30 cinder-volume:TERM cinder-scheduler:TERM cinder-api:INT
}
