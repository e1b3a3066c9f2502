//! Host-side tests of the official release plugins under `plugins/`.
//!
//! Each plugin runs in relo-sandbox exactly as a run would run it: its grant is computed
//! from its own `relo-plugin.toml` (declared ∩ an approval equal to the declaration ∩ the
//! offline demo's ceilings, which let 127.0.0.0/8 through), its endpoints are bound to
//! the demo's stand-ins started by the test on free loopback ports, and its workspace is
//! a copy of `manifests/examples/release-demo`. Every test asserts the output or the
//! named error, and the evidence. Nothing here reaches beyond 127.0.0.1: the sandbox's
//! second guard refuses any other address.

mod capabilities;
mod deploy;
mod pin_image_digest;
mod publish_release;
mod sign_artifact;
mod support;
mod verify_release;
mod verify_signature;

/// Fails to compile when a plugin under `plugins/` has no test module of its name.
macro_rules! assert_plugin_has_tests {
    ($name:ident) => {
        #[expect(unused_imports, reason = "the import only proves the module exists")]
        use crate::$name as _;
    };
}
relo_test_components::foreach_plugin!(assert_plugin_has_tests);
