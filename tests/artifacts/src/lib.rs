//! The guest components under `tests/components` and the official plugins under
//! `plugins/`, built for `wasm32-wasip2` by this crate's build script, for the host's
//! tests and benchmarks.
//!
//! Each component has a constant holding the absolute path of its `.wasm`
//! ([`ECHO`], [`FUEL_INFINITE_LOOP`], ...); [`ALL`] and [`path`] list them by name, and
//! [`foreach_component!`] expands a macro once per component, so that a test file can fail
//! to compile when a component has no test. What each component does and what must happen
//! is in `tests/components/README.md`. The plugins are in the [`plugins`] module, with
//! the path of each one's `relo-plugin.toml` too.
//!
//! ```
//! let wasm = std::fs::read(relo_test_components::ECHO)?;
//! assert_eq!(&wasm[..4], b"\0asm");
//! assert_eq!(relo_test_components::path("echo"), Some(relo_test_components::ECHO));
//! # Ok::<(), std::io::Error>(())
//! ```

include!(concat!(env!("OUT_DIR"), "/components.rs"));

/// The official release plugins under `plugins/`, built from their guest workspace.
///
/// Each plugin has a constant holding the absolute path of its `.wasm`
/// ([`VERIFY_RELEASE`](plugins::VERIFY_RELEASE), ...) and one holding the path of its
/// `relo-plugin.toml` ([`VERIFY_RELEASE_MANIFEST`](plugins::VERIFY_RELEASE_MANIFEST),
/// ...); [`ALL`](plugins::ALL) lists them and [`find`](plugins::find) finds one by name,
/// and [`foreach_plugin!`] expands a macro once per plugin.
///
/// ```
/// use relo_test_components::plugins;
///
/// let wasm = std::fs::read(plugins::VERIFY_RELEASE)?;
/// assert_eq!(&wasm[..4], b"\0asm");
/// let manifest = std::fs::read_to_string(plugins::VERIFY_RELEASE_MANIFEST)?;
/// assert!(manifest.contains("name = \"relo/verify-release\""));
/// assert_eq!(plugins::find("verify-release").map(|p| p.wasm), Some(plugins::VERIFY_RELEASE));
/// # Ok::<(), std::io::Error>(())
/// ```
pub mod plugins {
    /// One built plugin.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Plugin {
        /// The folder and crate name, `verify-release`; the plugin is `relo/<name>`.
        pub name: &'static str,
        /// The absolute path of the built component.
        pub wasm: &'static str,
        /// The absolute path of its `relo-plugin.toml`.
        pub manifest: &'static str,
    }

    include!(concat!(env!("OUT_DIR"), "/plugins.rs"));

    /// The plugin named `name`: its folder name (`verify-release`) or the snake_case
    /// name [`foreach_plugin!`](crate::foreach_plugin) uses (`verify_release`).
    pub fn find(name: &str) -> Option<&'static Plugin> {
        let name = name.replace('_', "-");
        ALL.iter().find(|plugin| plugin.name == name)
    }
}

/// The path of the component named `name`: its folder name (`fuel-infinite-loop`) or the
/// snake_case name [`foreach_component!`] uses (`fuel_infinite_loop`).
pub fn path(name: &str) -> Option<&'static str> {
    let name = name.replace('_', "-");
    ALL.iter()
        .find(|(candidate, _)| *candidate == name)
        .map(|(_, path)| *path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_component_is_built_and_listed_once() {
        let mut names: Vec<&str> = ALL.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for (name, path) in ALL {
            let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
        }
    }

    #[test]
    fn the_macro_lists_every_component() {
        let mut listed = Vec::new();
        macro_rules! collect {
            ($name:ident) => {
                listed.push(stringify!($name));
            };
        }
        foreach_component!(collect);
        assert_eq!(listed.len(), ALL.len());
        for name in listed {
            assert!(path(name).is_some(), "{name}");
        }
    }

    #[test]
    fn every_plugin_is_built_with_its_manifest() {
        assert!(!plugins::ALL.is_empty());
        let mut listed = Vec::new();
        macro_rules! collect {
            ($name:ident) => {
                listed.push(stringify!($name));
            };
        }
        foreach_plugin!(collect);
        assert_eq!(listed.len(), plugins::ALL.len());
        for plugin in plugins::ALL {
            let bytes =
                std::fs::read(plugin.wasm).unwrap_or_else(|e| panic!("{}: {e}", plugin.name));
            assert_eq!(&bytes[..4], b"\0asm", "{}", plugin.name);
            let manifest = std::fs::read_to_string(plugin.manifest)
                .unwrap_or_else(|e| panic!("{}: {e}", plugin.name));
            assert!(
                manifest.contains(&format!("name = \"relo/{}\"", plugin.name)),
                "{}",
                plugin.name
            );
        }
        assert_eq!(
            plugins::find("pin_image_digest").map(|p| p.wasm),
            Some(plugins::PIN_IMAGE_DIGEST)
        );
        assert_eq!(plugins::find("release-common"), None);
    }

    #[test]
    fn paths_by_either_name() {
        assert_eq!(path("fuel-infinite-loop"), Some(FUEL_INFINITE_LOOP));
        assert_eq!(path("fuel_infinite_loop"), Some(FUEL_INFINITE_LOOP));
        assert_eq!(path("probe"), None);
    }
}
