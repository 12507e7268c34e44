#!/bin/bash
# Exits 0 when shoald's metrics server answers 200 on PATH (default /healthz; /readyz also needs
# the cluster DHT bootstrapped). Plain bash (/dev/tcp), so the image needs no curl.
#   shoal-healthcheck [PATH]      SHOAL_METRICS: HOST:PORT, default 127.0.0.1:9090
set -euo pipefail
path=${1:-/healthz}
addr=${SHOAL_METRICS:-127.0.0.1:9090}
exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$addr" >&3
read -r -t 5 _ code _ <&3   # the status line: HTTP/1.x CODE REASON
[[ ${code%$'\r'} == 200 ]]
