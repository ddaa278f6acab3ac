#!/usr/bin/env bash
# The main job: build the module, install Envoy 1.40.0 and moto into .venv, start moto on
# 127.0.0.1:5000 as a local Lambda endpoint (signature checking ON, functions echo and hello,
# alias echo:live), start Envoy with envoy/quickstart.yaml on 127.0.0.1:10000, print curl lines.
#
#   scripts/run.sh                  run until Ctrl-C
#   scripts/run.sh --check          run the curl lines once, verify the answers, stop (used by tests)
#   scripts/run.sh --assume-role    the same, but the upstream signs with an assumed role: Envoy's
#                                   environment holds the IAM user's key (credentials source env),
#                                   the module calls moto's STS AssumeRole (AWS_ENDPOINT_URL_STS)
#                                   and signs every Invoke with the role's temporary key
#   scripts/run.sh --assume-role --check
#
# Everything listens on loopback only. MOTO_PORT/ENVOY ports are those of envoy/quickstart.yaml.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MODE=serve
ASSUME_ROLE=0
for arg in "$@"; do
  case "$arg" in
    --check) MODE=--check ;;
    --assume-role) ASSUME_ROLE=1 ;;
    *) echo "usage: scripts/run.sh [--assume-role] [--check]" >&2; exit 2 ;;
  esac
done
CONFIG=envoy/quickstart.yaml
RUN="$ROOT/run"
MOTO_PORT=5000
LISTEN="http://127.0.0.1:10000"
ADMIN="http://127.0.0.1:9901"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for port in "$MOTO_PORT" 10000 9901; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is already in use; stop what runs there first" >&2
    exit 1
  fi
done

say "installing Envoy 1.40.0 and moto into .venv (scripts/bootstrap.sh)"
scripts/bootstrap.sh
ENVOY="$(scripts/envoy_path.sh)"

say "building the module (cargo build --release)"
cargo build --release --quiet

rm -rf "$RUN" && mkdir -p "$RUN/sds"
say "starting moto on 127.0.0.1:$MOTO_PORT (Lambda, IAM; signature checking on)"
.venv/bin/python tests/peers/moto_peer.py --port "$MOTO_PORT" --functions echo,hello \
  --alias echo:live --verify --json-out "$RUN/moto.json" --log "$RUN/moto.log" >/dev/null &
pids+=($!)
for _ in $(seq 1 120); do
  [ -s "$RUN/moto.json" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "moto failed to start; see $RUN/moto.log" >&2; exit 1; }
  sleep 0.5
done
[ -s "$RUN/moto.json" ] || { echo "moto did not become ready in 60 s" >&2; exit 1; }

# The IAM user's key, in the seed's secret format, delivered to Envoy over SDS (file).
.venv/bin/python - "$RUN/moto.json" "$RUN/sds/lambda-credentials.yaml" <<'PY'
import json, os, sys
info = json.load(open(sys.argv[1]))
secret = f"access_key: {info['access_key']}\nsecret_key: {info['secret_key']}\n"
doc = {"resources": [{
    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
    "name": "lambda-credentials",
    "generic_secret": {"secret": {"inline_string": secret}},
}]}
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f)
os.rename(tmp, sys.argv[2])  # atomic: Envoy's file watch sees one complete version
PY

envoy_env=()
if [ "$ASSUME_ROLE" = 1 ]; then
  say "creating role quickstart-invoker in moto (lambda:*), which the IAM user may assume"
  # Writes run/quickstart-assume-role.yaml: envoy/quickstart.yaml with the upstream's
  # secret_ref replaced by credentials {source: env} + assume_role, and run/env-keys with the
  # IAM user's key for Envoy's environment (never in the config).
  .venv/bin/python - "$RUN" "$MOTO_PORT" <<'PY'
import json, sys, urllib.request
sys.path.insert(0, "tests/peers")
from moto_peer import MotoPeer
run, port = sys.argv[1], int(sys.argv[2])
info = json.load(open(f"{run}/moto.json"))
peer = MotoPeer(port=port)
peer._post("/moto-api/reset-auth", b"1000000000", "text/plain")  # checking off to set up
iam = peer.client("iam")
doc = lambda effect: json.dumps(effect)
role = iam.create_role(RoleName="quickstart-invoker", AssumeRolePolicyDocument=doc({
    "Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))["Role"]
def allow(name, action):
    return iam.create_policy(PolicyName=name, PolicyDocument=doc({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}))["Policy"]["Arn"]
iam.attach_role_policy(RoleName="quickstart-invoker", PolicyArn=allow("qs-invoke", "lambda:*"))
iam.attach_user_policy(UserName=info["user_name"], PolicyArn=allow("qs-assume", "sts:AssumeRole"))
peer.enable_auth()
text = open("envoy/quickstart.yaml").read()
old = ('"secret_ref": "lambda-credentials",\n'
       '                      "secret_source": {"path_config_source": {"path": "run/sds/lambda-credentials.yaml"}},')
assert old in text, "envoy/quickstart.yaml changed: update scripts/run.sh"
new = ('"credentials": {"source": "env"},\n'
       f'                      "assume_role": {{"role_arn": "{role["Arn"]}", "duration": "900s"}},')
open(f"{run}/quickstart-assume-role.yaml", "w").write(text.replace(old, new))
with open(f"{run}/env-keys", "w") as f:
    f.write(f"AWS_ACCESS_KEY_ID={info['access_key']}\nAWS_SECRET_ACCESS_KEY={info['secret_key']}\n")
PY
  CONFIG="$RUN/quickstart-assume-role.yaml"
  while IFS= read -r kv; do envoy_env+=("$kv"); done < "$RUN/env-keys"
  # STS is moto too; no profile files, no instance metadata.
  envoy_env+=("AWS_ENDPOINT_URL_STS=http://127.0.0.1:$MOTO_PORT"
              "AWS_CONFIG_FILE=/nonexistent" "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
fi

say "starting Envoy 1.40.0 with $CONFIG on $LISTEN (admin $ADMIN)"
env ${envoy_env[@]+"${envoy_env[@]}"} \
  ENVOY_DYNAMIC_MODULES_SEARCH_PATH="$ROOT/target/release" AWS_EC2_METADATA_DISABLED=true \
  "$ENVOY" -c "$CONFIG" --concurrency 2 --disable-hot-restart \
  --log-path "$RUN/envoy.log" &
pids+=($!)
for _ in $(seq 1 120); do
  curl -fs "$ADMIN/ready" >/dev/null 2>&1 && break
  kill -0 "${pids[1]}" 2>/dev/null || { echo "Envoy failed to start; see $RUN/envoy.log" >&2; tail -5 "$RUN/envoy.log" >&2; exit 1; }
  sleep 0.5
done
# The SDS secret arrives about a second after start-up.
for _ in $(seq 1 40); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$LISTEN/echo" || true)
  [ "$code" = 200 ] && break
  sleep 0.25
done

cat <<TXT

envoy-lambda is running. Try:

  curl -i $LISTEN/echo
  curl -i $LISTEN/echo  -H 'content-type: application/json' -d '{"hello":"world"}'
  curl -i $LISTEN/live  -H 'content-type: application/json' -d '{"alias":"live"}'
  curl -i $LISTEN/hello -H 'content-type: application/json' -d '[1,2,3]'
  curl -i $LISTEN/lambda/hello -H 'content-type: application/json' -d '{"discovered":true}'
  curl -i $LISTEN/lambda/echo:live -H 'content-type: application/json' -d '{"alias":"discovered"}'
  curl -s $ADMIN/stats | grep envoy_lambda
  curl -s "$ADMIN/stats?filter=discovered_function"

Logs: $RUN/envoy.log, $RUN/moto.log. Stop with Ctrl-C.
TXT

if [ "$MODE" = "--check" ]; then
  fail=0
  expect() { # expect NAME WANT_STATUS WANT_BODY curl-args...
    local name=$1 want=$2 body=$3; shift 3
    local out status
    out=$(curl -s -w '\n%{http_code}' --max-time 10 "$@")
    status=${out##*$'\n'}; out=${out%$'\n'*}
    if [ "$status" = "$want" ] && [ "$out" = "$body" ]; then
      echo "ok   $name -> $status $out"
    else
      echo "FAIL $name -> $status $out (wanted $want $body)"; fail=1
    fi
  }
  expect "GET /echo" 200 "Simple Lambda happy path OK" "$LISTEN/echo"
  expect "POST /echo" 200 '{"hello":"world"}' "$LISTEN/echo" -H 'content-type: application/json' -d '{"hello":"world"}'
  expect "POST /live" 200 '{"alias":"live"}' "$LISTEN/live" -H 'content-type: application/json' -d '{"alias":"live"}'
  expect "POST /hello" 200 '[1,2,3]' "$LISTEN/hello" -H 'content-type: application/json' -d '[1,2,3]'
  # Discovery lists the account within a few seconds of start-up (its first attempt may come
  # before the first credentials); give it up to 10 s. (hello is also a configured function,
  # so the discovered alias is what shows the listing is done.)
  for _ in $(seq 1 40); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' -H 'content-type: application/json' "$LISTEN/lambda/echo:live")" = 200 ] && break
    sleep 0.25
  done
  expect "POST /lambda/hello (discovered)" 200 '{"d":1}' "$LISTEN/lambda/hello" -H 'content-type: application/json' -d '{"d":1}'
  expect "POST /lambda/echo:live (discovered alias)" 200 '{"a":1}' "$LISTEN/lambda/echo:live" -H 'content-type: application/json' -d '{"a":1}'
  if [ "$ASSUME_ROLE" = 1 ]; then
    src=$(curl -s "$ADMIN/stats?filter=credentials_source" | awk '/assume_role/ {print $2}')
    echo "envoy_lambda.credentials_source ... assume_role: $src"
    [ "$src" = 1 ] || { echo "FAIL: not signed with the assumed role"; fail=1; }
  fi
  invocations=$(curl -s "$ADMIN/stats?filter=envoy_lambda.invocations" | awk '{print $2}')
  echo "envoy_lambda.invocations: $invocations"
  [ "${invocations:-0}" -ge 6 ] || { echo "FAIL invocations counter"; fail=1; }
  exit $fail
fi
wait
