# shellcheck shell=bash
# More regions of the one cloud, for fleet tests: each region its own Glance (own database,
# store, port and log, logs/glance-<region>.log) with image and identity endpoints in that
# region of the one Keystone, as a multi-region cloud with a shared Keystone has them.
#   devcloud region start RegionTwo RegionThree   (the cloud must run)
#   devcloud region stop [REGION...]              (the endpoints stay: a region that is down)

REGIONS_FILE=$STATE/regions

region_service() { echo "glance-$1"; }

valid_region() { [[ $1 =~ ^[A-Za-z][A-Za-z0-9_-]{0,30}$ && $1 != RegionOne ]]; }

known_regions() {
    if [[ -f $REGIONS_FILE ]]; then awk '{ print $1 }' "$REGIONS_FILE"; fi
}

# A region's Glance port is given at its first start and kept: the first region's + n.
region_port() {
    local region=$1 name port count=0
    if [[ -f $REGIONS_FILE ]]; then
        while read -r name port; do
            if [[ $name == "$region" ]]; then echo "$port"; return 0; fi
            count=$((count + 1))
        done <"$REGIONS_FILE"
    fi
    port=$((GLANCE_PORT + count + 1))
    echo "$region $port" >>"$REGIONS_FILE"
    echo "$port"
}

region_url() { echo "http://$HOST:$(region_port "$1")"; }

region_up() {
    local code
    svc_alive "$(region_service "$1")" || return 1
    code=$(http_code "$(region_url "$1")/versions")
    [[ $code =~ ^[1-4][0-9][0-9]$ ]]
}

# Needs render_config's exports; renders the Glance templates with the region's names.
start_region() {
    local region=$1 name port db
    name=$(region_service "$region")
    port=$(region_port "$region")
    # Lower case for PostgreSQL, plus a digest of the exact name: Region-Two and region_two
    # are two regions, so two databases.
    db=glance_$(tr 'A-Z-' 'a-z_' <<<"$region")_$(printf '%s' "$region" | sha256sum | cut -c1-8)
    if region_up "$region"; then
        log "$name already running"
        return 0
    fi
    ensure_databases "$db"
    (
        export DC_GLANCE_NAME=$name DC_GLANCE_DB=$db DC_GLANCE_PORT=$port
        "$VENV/bin/python" "$DEVCLOUD_HOME/lib/render.py" "$DEVCLOUD_HOME/templates/glance" "$ETC/$name"
    ) || die "rendering the configuration of $name failed"
    mkdir -p "$DATA/$name/images" "$DATA/$name/staging" "$DATA/$name/tasks"
    if [[ ! -f $STATE/done/$db ]]; then
        "$VENV/bin/glance-manage" --config-file "$ETC/$name/glance-api.conf" db_sync >>"$LOGS/setup.log" 2>&1 \
            || fail_with_log "database setup of $name failed" "$LOGS/setup.log"
        touch "$STATE/done/$db"
    fi
    require_free_port "$name" "$port"
    spawn "$name" "$LOGS/$name.log" "$VENV/bin/uwsgi" --ini "$ETC/$name/uwsgi.ini"
}

seed_regions() {
    local region pairs=()
    for region in "$@"; do pairs+=("$region=$(region_url "$region")"); done
    DC_KEYSTONE_URL="http://$HOST:$KEYSTONE_PORT" DC_PASSWORDS=$PASSWORDS DC_REGIONS="${pairs[*]}" \
        "$VENV/bin/python" "$DEVCLOUD_HOME/lib/seed.py" >>"$LOGS/setup.log" 2>&1 \
        || fail_with_log "registering regions $* in Keystone failed" "$LOGS/setup.log"
}

stop_regions() {
    local region items=()
    for region in "$@"; do items+=("$(region_service "$region"):INT"); done
    ((${#items[@]} == 0)) || stop_services 30 "${items[@]}"
}

print_regions() {
    local region state pid
    for region in $(known_regions); do
        state=stopped pid=-
        if svc_alive "$(region_service "$region")"; then
            state=running
            pid=$(pid_of "$(region_service "$region")")
            region_up "$region" || state=starting
        fi
        printf '%-15s %-8s %-8s %s\n' "$(region_service "$region")" "$state" "$pid" "$(region_url "$region")/versions ($region)"
    done
}

cmd_region() {
    local action=${1:-} region t0
    shift || true
    take_lock
    load_ports
    case $action in
        start)
            (($#)) || die "usage: $0 region start REGION..."
            for region in "$@"; do
                valid_region "$region" || die "region $region: letters, digits, _ and - (at most 31), not RegionOne"
            done
            svc_alive keystone || die "the cloud is not running: $0 start first"
            t0=$(now_ms)
            ensure_passwords
            render_config
            for region in "$@"; do start_region "$region"; done
            for region in "$@"; do
                wait_http "$(region_service "$region")" "$(region_url "$region")/versions" \
                    "$LOGS/$(region_service "$region").log" 60
            done
            seed_regions "$@"
            log "regions $* up in $(elapsed "$t0") s"
            print_regions
            ;;
        stop)
            local asked=() wanted=()
            if (($#)); then asked=("$@"); else mapfile -t asked < <(known_regions); fi
            for region in "${asked[@]}"; do
                if known_regions | grep -qxF -- "$region"; then wanted+=("$region"); fi
            done
            stop_regions "${wanted[@]}"
            ;;
        status)
            print_regions
            for region in "$@"; do
                known_regions | grep -qxF -- "$region" && region_up "$region" || return 3
            done
            ;;
        *) die "usage: $0 region start REGION... | stop [REGION...] | status [REGION...]" ;;
    esac
}
