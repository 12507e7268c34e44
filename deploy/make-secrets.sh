#!/usr/bin/env bash
# Writes fresh secrets for deploy/compose.yaml and deploy/kubernetes into deploy/secrets/ (git
# ignores it), leaving existing files alone:
#   cluster_key   the cluster key: 64 hex characters (what `shoal keygen` writes)
#   api_tokens    shoald's token file: an admin token and a read-only token, one a line
#   admin_token   the admin token alone, for the CLI:
#                 SHOAL_API_TOKEN=$(cat deploy/secrets/admin_token) shoal node info
#   read_token    the read-only token alone
# The directory is private (0700). The files in it are 0644 because compose bind-mounts them with
# their host owner, and the container's user (UID 10001) must read them.
set -euo pipefail
dir=${1:-$(dirname "$0")/secrets}
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

write() {  # write FILE: stdin to FILE unless it exists
  if [[ -e $dir/$1 ]]; then
    echo "make-secrets: keeping $dir/$1"
    cat >/dev/null
  else
    cat >"$dir/$1"
    chmod 0644 "$dir/$1"
    echo "make-secrets: wrote $dir/$1"
  fi
}

openssl rand -hex 32 | write cluster_key
openssl rand -hex 32 | write admin_token
openssl rand -hex 32 | write read_token
{
  echo "# shoald API tokens: TOKEN [admin|read]"
  echo "$(cat "$dir/admin_token") admin"
  echo "$(cat "$dir/read_token") read"
} | write api_tokens
