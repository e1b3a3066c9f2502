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

# Independent verifiers for the interop checks (DSSE envelopes, in-toto Statements).
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore 'securesystemslib[crypto]' in-toto-attestation

# PostgreSQL-backed tests (added with the store) find the server here; start it if down.
export RELO_TEST_POSTGRES_URL="${RELO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

# Host workspace: unit tests, the sandbox's integration tests (which build every
# component under tests/components), doc tests.
cargo test --workspace "$@"

# The plugin template must keep building for plugin authors.
cargo build --release --target wasm32-wasip2 \
    --manifest-path sdk/rust/template/Cargo.toml --target-dir target/guests
