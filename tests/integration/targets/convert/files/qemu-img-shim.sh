#!/usr/bin/env bash
# Put first on PATH: records every qemu-img call, then runs the real one. With
# IMAGEGOV_TEST_SLOW_CONVERT=N a convert waits N seconds first (a long conversion to interrupt).
printf '%s\n' "$*" >>"${IMAGEGOV_TEST_QEMU_LOG:?}"
real=$(PATH=${PATH#*:} command -v qemu-img)
if [[ ${1:-} == convert && -n ${IMAGEGOV_TEST_SLOW_CONVERT:-} ]]; then
  exec python3 -c 'import os, sys, time; time.sleep(float(sys.argv[1])); os.execv(sys.argv[2], sys.argv[2:])' \
    "$IMAGEGOV_TEST_SLOW_CONVERT" "$real" "$@"
fi
exec "$real" "$@"
