#!/usr/bin/env bash
# Lightweight supervisor for the local stack, started in the background by `stack/stack.sh up`
# and stopped first by `stack/stack.sh down`. Every STACK_SUPERVISE_INTERVAL seconds (2) it checks
# the parts of the last `up` (.stack/run/parts) and restarts, via the same start + health-wait
# code as `up`, any part whose process died although its pid file is still there (a part stopped
# by `down`/`restart` has no pid file or a .stopping marker, so it is left alone). It gives up on
# a part after STACK_SUPERVISE_MAX_RESTARTS (5) restarts within 300 s.
# Restarts are logged to .stack/logs/supervisor.log.
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/stack.sh" _supervise
