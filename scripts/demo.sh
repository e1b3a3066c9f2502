#!/usr/bin/env bash
# The main job: the reference release workflow (manifests/release.yaml) end to end on this
# machine, on the embedded default (SQLite, local keys, no server), offline.
#
#   scripts/demo.sh                 # build, then run the release in a fresh demo home
#
# 1. builds relo, the demo's stand-ins and the official plugins (plugins/, for WASI 0.2);
# 2. creates a relo home from manifests/relo.toml (keys for every person and signer, the
#    release signing key, the evidence key, SQLite) and a development secrets file;
# 3. starts the demo's stand-ins for the forge and the deploy target on 127.0.0.1 (they
#    are part of the demo, not real services);
# 4. ivan signs the plugins, olga reviews and approves them;
# 5. olga requests the release run: it stops at the approval gate (exit 3); rita, a
#    release manager, approves it with her key, and the run is resumed to the end;
# 6. prints each step's status, fuel, peak memory, time, egress and secrets, verifies
#    the evidence log and exports the run's signed evidence and provenance.
#
# Everything lands in target/demo/ (the home in target/demo/home).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. build relo, the demo's stand-ins and the official plugins"
cargo build -q -p relo -p relo-stand-ins
relo="$PWD/target/debug/relo"
plugins=(verify-release pin-image-digest sign-artifact verify-signature publish-release deploy)
# On a fresh clone nothing has made target/guests yet (the test suite is not a prerequisite).
mkdir -p target/guests
for plugin in "${plugins[@]}"; do
    "$relo" plugin build "plugins/$plugin" --target-dir target/guests --json >"target/guests/$plugin.build.json"
done

started=$(date +%s%N)
demo="$PWD/target/demo"
home="$demo/home"
rm -rf "$demo"
mkdir -p "$demo"
export RELO_HOME="$home"

say "2. a relo home from manifests/relo.toml"
"$relo" init --from manifests/relo.toml
# The file secrets provider (development only): the forge token the publish step's
# requests carry, injected by the host. The stand-in forge requires the same token.
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf '{"demo/forge": {"token": "%s"}}\n' "$token" >"$home/secrets.json")
(umask 077 && printf '%s\n' "$token" >"$demo/forge-token")

say "3. the demo's stand-ins for the forge and the deploy target (not real services)"
# Tied to this script: they exit when the pipe to them closes, however the script ends.
exec {keepalive}> >(exec target/debug/relo-stand-ins --forge 127.0.0.1:18081 \
    --target 127.0.0.1:18082 --token-file "$demo/forge-token" --tag v1.3.0 \
    --until-stdin-closes 2>"$demo/stand-ins.log")
for _ in $(seq 50); do
    grep -q "forge at" "$demo/stand-ins.log" 2>/dev/null && break
    if (exec 3<>/dev/tcp/127.0.0.1/18082) 2>/dev/null; then break; fi
    sleep 0.1
done

say "4. ivan signs the plugins; olga reviews and approves them"
for plugin in "${plugins[@]}"; do
    wasm=$(sed -n 's/.*"wasm": "\(.*\)".*/\1/p' "target/guests/$plugin.build.json")
    cp "$wasm" "$demo/$plugin.wasm"
    "$relo" plugin sign "$demo/$plugin.wasm" --manifest "plugins/$plugin/relo-plugin.toml" \
        --key "$home/keys/relo-plugins.key" >/dev/null
    "$relo" plugin add "$demo/$plugin.wasm" "$demo/$plugin.attestation.json" >/dev/null
    "$relo" plugin approve "relo/$plugin@0.1.0" --key "$home/keys/olga.key" >/dev/null
    echo "  relo/$plugin@0.1.0 signed by ivan, approved by olga"
done
"$relo" plan manifests/release.yaml | sed -n '1,12p'

say "5. olga requests the release; the run stops at the approval gate"
image_digest="sha256:$(printf 'registry.example.com/acme/checkout 1.4.0' | sha256sum | cut -c1-64)"
set +e
"$relo" run manifests/release.yaml --as olga \
    --param "image_digest=$image_digest" --param "public_key=@$home/keys/release.pub"
code=$?
set -e
if [ "$code" != 3 ]; then
    echo "expected the run to wait for approval (exit 3), got exit $code" >&2
    exit 1
fi
run=$("$relo" runs list --limit 1 --json | sed -n 's/.*"id": "\(run-[^"]*\)".*/\1/p' | head -1)

echo
echo "  olga cannot approve the run she requested (separation of duties):"
"$relo" approve --run "$run" --step approve-release --as olga || true
echo "  rita, a release manager, approves it with her key:"
"$relo" approve --run "$run" --step approve-release --as rita
"$relo" resume "$run"

say "6. the evidence: verify the log, export the run's attestation"
"$relo" evidence verify
"$relo" evidence verify --run "$run"
"$relo" evidence export --run "$run" --out "$demo/$run.evidence.json"
denials=$("$relo" runs show "$run" --json | sed -n 's/.*"denials": \([0-9]*\).*/\1/p')
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
echo
echo "release v1.4.0 of checkout: run $run succeeded, $denials denial(s) recorded"
echo "evidence and provenance: $demo/$run.evidence.json (and beside it)"
echo "steps 2-6 took ${elapsed} ms"
exec {keepalive}>&-
