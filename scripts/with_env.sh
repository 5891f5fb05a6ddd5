#!/usr/bin/env bash
# Runs a command inside the built workspace's environment (see env.sh).
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$@"
