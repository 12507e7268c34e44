#!/bin/bash
# The image's entrypoint: runs shoald with the container's defaults followed by the container's
# arguments (a repeated flag takes its last value, so they override; --path-root and --bootstrap
# add up). Arguments that don't start with '-' run as a command instead: `docker run IMAGE shoal
# keygen -o /data/cluster_key`.
#
# Secrets, when the files exist (Docker and compose secrets appear under /run/secrets):
#   SHOAL_API_TOKEN_FILE  (default /run/secrets/shoal_api_tokens): API tokens; with it the API
#                         listens on 0.0.0.0:7080, without it on 127.0.0.1:7080 only
#   SHOAL_CLUSTER_KEY_FILE (default /run/secrets/shoal_cluster_key): the cluster key
set -euo pipefail

if [[ $# -gt 0 && $1 != -* ]]; then
  exec "$@"
fi

token_file=${SHOAL_API_TOKEN_FILE:-/run/secrets/shoal_api_tokens}
key_file=${SHOAL_CLUSTER_KEY_FILE:-/run/secrets/shoal_cluster_key}

args=(--data-dir /data --path-root /data --listen 0.0.0.0:6881 --metrics 0.0.0.0:9090)
if [[ -e $token_file ]]; then
  args+=(--api 0.0.0.0:7080 --api-token-file "$token_file")
else
  echo "shoal-entrypoint: no $token_file, so the API listens on 127.0.0.1:7080 only" >&2
  args+=(--api 127.0.0.1:7080)
fi
if [[ -e $key_file ]]; then
  args+=(--cluster-key-file "$key_file")
fi
exec shoald "${args[@]}" "$@"
