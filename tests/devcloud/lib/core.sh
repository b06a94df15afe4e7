# shellcheck shell=bash
# PostgreSQL, Keystone and Glance: the tier every start brings up.

PASSWORDS=$STATE/passwords.env
PASSWORD_KEYS=(ADMIN ALPHA_MEMBER BETA_MEMBER READER GLANCE NOVA PLACEMENT NEUTRON RABBIT CINDER)

# Random per-state passwords, made once and kept with the state so a restart
# (and clouds.yaml) keeps working; hex only, so they are safe in URLs and INI.
ensure_passwords() {
    if [[ ! -s $PASSWORDS ]]; then
        mkdir -p "$STATE"
        (
            umask 077
            "$VENV/bin/python" - "${PASSWORD_KEYS[@]}" >"$PASSWORDS.tmp" <<'EOF'
import secrets, sys
for key in sys.argv[1:]:
    print("%s_PASSWORD=%s" % (key, secrets.token_hex(16)))
EOF
        )
        mv "$PASSWORDS.tmp" "$PASSWORDS"
    fi
    # A state made before a key existed (e.g. CINDER) gets the missing ones appended.
    local key missing=()
    for key in "${PASSWORD_KEYS[@]}"; do
        grep -q "^${key}_PASSWORD=" "$PASSWORDS" || missing+=("$key")
    done
    if ((${#missing[@]})); then
        "$VENV/bin/python" -c 'import secrets, sys; [print("%s_PASSWORD=%s" % (k, secrets.token_hex(16))) for k in sys.argv[1:]]' \
            "${missing[@]}" >>"$PASSWORDS"
    fi
    # shellcheck disable=SC1090
    . "$PASSWORDS"
}

# Exports what the templates may use (DC_NAME fills @NAME@) and renders them.
render_config() {
    export DC_HOST=$HOST DC_VENV=$VENV DC_STATE=$STATE DC_ETC=$ETC DC_LOGS=$LOGS \
        DC_DATA=$DATA DC_RUN=$RUN
    export DC_DB="postgresql+psycopg2://devcloud@$HOST:$PG_PORT"
    export DC_KEYSTONE_PORT=$KEYSTONE_PORT DC_GLANCE_PORT=$GLANCE_PORT DC_PG_PORT=$PG_PORT \
        DC_PLACEMENT_PORT=$PLACEMENT_PORT DC_NOVA_PORT=$NOVA_PORT \
        DC_NEUTRON_PORT=$NEUTRON_PORT DC_RABBIT_PORT=$RABBIT_PORT DC_CINDER_PORT=$CINDER_PORT \
        DC_EPMD_PORT=$EPMD_PORT DC_RABBIT_DIST_PORT=$RABBIT_DIST_PORT
    # The first region's Glance; another region's renders the same templates (lib/regions.sh).
    export DC_GLANCE_NAME=glance DC_GLANCE_DB=glance
    export DC_TRANSPORT_URL="rabbit://devcloud:$RABBIT_PASSWORD@$HOST:$RABBIT_PORT/"
    local key var
    for key in "${PASSWORD_KEYS[@]}"; do
        var=${key}_PASSWORD
        export "DC_$var=${!var}"
    done
    mkdir -p "$ETC" "$LOGS" "$DATA" "$RUN" "$STATE/lock"
    "$VENV/bin/python" "$DEVCLOUD_HOME/lib/render.py" "$DEVCLOUD_HOME/templates" "$ETC"
    apply_glance_overrides
}

# Settings given with `devcloud glance-settings`, kept across restarts: oslo.config merges
# a repeated section, so an appended snippet overrides the rendered values, and
# oslo.policy finds policy.yaml beside glance-api.conf.
GLANCE_OVERRIDES=$STATE/overrides/glance

apply_glance_overrides() {
    rm -f "$ETC/glance/policy.yaml"
    if [[ -f $GLANCE_OVERRIDES/glance-api.conf ]]; then
        printf '\n' >>"$ETC/glance/glance-api.conf"
        cat "$GLANCE_OVERRIDES/glance-api.conf" >>"$ETC/glance/glance-api.conf"
    fi
    if [[ -f $GLANCE_OVERRIDES/policy.yaml ]]; then
        cp "$GLANCE_OVERRIDES/policy.yaml" "$ETC/glance/policy.yaml"
    fi
}

# --- PostgreSQL ----------------------------------------------------------------

PGDIR=$STATE/pg
PGDATA_DIR=$PGDIR/data
PGSOCK=$PGDIR/run

# PostgreSQL refuses to run as root: when root, its files belong to `postgres`.
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_running() {
    local pid
    [[ -s $PGDATA_DIR/postmaster.pid ]] || return 1
    pid=$(head -n1 "$PGDATA_DIR/postmaster.pid")
    pid_alive "$pid"
}

psql_q() {
    "$(pg_bindir)/psql" -X -q -h "$HOST" -p "$PG_PORT" -U devcloud -d postgres -tAc "$1"
}

start_postgres() {
    local bindir
    bindir=$(pg_bindir)
    mkdir -p "$PGDIR" "$PGSOCK" "$LOGS"
    touch "$LOGS/postgres.log"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "user 'postgres' is missing (run: $0 install)"
        chown postgres: "$PGDIR" "$PGSOCK" "$LOGS/postgres.log"
        # The postgres user must be able to reach the state directory.
        if ! runuser -u postgres -- test -x "$PGDIR"; then
            die "user 'postgres' cannot enter $PGDIR; set IMAGEGOV_DEVCLOUD_DIR to a path it can reach"
        fi
    fi
    if [[ ! -f $PGDATA_DIR/PG_VERSION ]]; then
        log "initialising PostgreSQL cluster in $PGDATA_DIR"
        as_pg "$bindir/initdb" -D "$PGDATA_DIR" -U devcloud -A trust --no-sync \
            -E UTF8 --locale=C.UTF-8 >>"$LOGS/setup.log" 2>&1 \
            || fail_with_log "initdb failed" "$LOGS/setup.log"
    fi
    if pg_running; then
        log "PostgreSQL already running"
    else
        require_free_port postgres "$PG_PORT"
        # Durability is worthless for a throw-away test cloud; speed is not.
        as_pg "$bindir/pg_ctl" -D "$PGDATA_DIR" -l "$LOGS/postgres.log" -w -t 60 -o \
            "-p $PG_PORT -h $HOST -k $PGSOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
            start >>"$LOGS/setup.log" 2>&1 </dev/null 9>&- \
            || fail_with_log "PostgreSQL did not start" "$LOGS/postgres.log"
    fi
    record_pid postgres "$(head -n1 "$PGDATA_DIR/postmaster.pid")"
}

ensure_databases() {
    local have db
    have=$(psql_q "SELECT datname FROM pg_database") \
        || fail_with_log "cannot query PostgreSQL" "$LOGS/postgres.log"
    for db in "$@"; do
        if ! grep -qx "$db" <<<"$have"; then
            psql_q "CREATE DATABASE \"$db\"" >/dev/null
        fi
    done
}

stop_postgres() {
    if pg_running; then
        as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >>"$LOGS/setup.log" 2>&1 \
            || log "pg_ctl stop failed, see $LOGS/setup.log"
        log "stopped postgres"
    fi
    rm -f "$(pidfile postgres)"
}

# --- Keystone ------------------------------------------------------------------

# Fernet and credential keys are plain Fernet keys (urlsafe base64 of 32
# random bytes), "0" staged and "1" primary: writing them here saves two
# keystone-manage runs (~2 s of imports each).
make_fernet_repo() {
    local dir=$1
    [[ -s $dir/0 && -s $dir/1 ]] && return 0
    mkdir -p "$dir"
    chmod 700 "$dir"
    "$VENV/bin/python" - "$dir" <<'EOF'
import base64, os, sys
d = sys.argv[1]
for name in ("0", "1"):
    path = os.path.join(d, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.urlsafe_b64encode(os.urandom(32)))
EOF
}

setup_keystone() {
    make_fernet_repo "$ETC/keystone/fernet-keys"
    make_fernet_repo "$ETC/keystone/credential-keys"
    [[ -f $STATE/done/keystone-db ]] && return 0
    local km=("$VENV/bin/keystone-manage" --config-dir "$ETC/keystone")
    "${km[@]}" db_sync >>"$LOGS/setup.log" 2>&1 || return 1
    "${km[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
        --bootstrap-region-id RegionOne \
        --bootstrap-admin-url "http://$HOST:$KEYSTONE_PORT/v3/" \
        --bootstrap-public-url "http://$HOST:$KEYSTONE_PORT/v3/" \
        --bootstrap-internal-url "http://$HOST:$KEYSTONE_PORT/v3/" \
        >>"$LOGS/setup.log" 2>&1 || return 1
    touch "$STATE/done/keystone-db"
}

setup_glance() {
    mkdir -p "$DATA/glance/images" "$DATA/glance/staging" "$DATA/glance/tasks"
    [[ -f $STATE/done/glance-db ]] && return 0
    "$VENV/bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync \
        >>"$LOGS/setup.log" 2>&1 || return 1
    touch "$STATE/done/glance-db"
}

# start_uwsgi NAME [CONFIG_DIR]: CONFIG_DIR defaults to NAME (nova-api's is nova).
start_uwsgi() {
    local name=$1 confdir=${2:-$1}
    if svc_alive "$name"; then
        log "$name already running"
        return 0
    fi
    require_free_port "$name" "$(port_of "$name")"
    spawn "$name" "$LOGS/$name.log" "$VENV/bin/uwsgi" --ini "$ETC/$confdir/uwsgi.ini"
}
