#!/bin/sh
# curl through authsome: curl reads HTTPS_PROXY (with the session token) and CURL_CA_BUNDLE from the
# environment that `authsome run` (or `eval "$(authsome proxy env)"`) sets. No token in this script.
#
#   authsome run -- sh examples/curl.sh https://api.github.com/user
#   AUTHSOME_CONNECTION=work authsome run -- sh examples/curl.sh https://api.github.com/user
set -eu
url="${1:-${AUTHSOME_EXAMPLE_URL:-https://api.github.com/user}}"
if [ -z "${HTTPS_PROXY:-${https_proxy:-}}" ]; then
  echo "HTTPS_PROXY is not set: run this under \`authsome run -- sh $0\`" >&2
  exit 2
fi
if [ -n "${AUTHSOME_CONNECTION:-}" ]; then
  exec curl -sS --fail-with-body -H "X-Authsome-Connection: $AUTHSOME_CONNECTION" "$url"
fi
exec curl -sS --fail-with-body "$url"
