//! The guest components under `tests/components`, built for `wasm32-wasip2` by this
//! crate's build script, for the sandbox's tests and benchmarks.
//!
//! Each component has a constant holding the absolute path of its `.wasm`
//! ([`ECHO`], [`FUEL_INFINITE_LOOP`], ...); [`ALL`] and [`path`] list them by name, and
//! [`foreach_component!`] expands a macro once per component, so that a test file can fail
//! to compile when a component has no test. What each component does and what must happen
//! is in `tests/components/README.md`.
//!
//! ```
//! let wasm = std::fs::read(relo_test_components::ECHO)?;
//! assert_eq!(&wasm[..4], b"\0asm");
//! assert_eq!(relo_test_components::path("echo"), Some(relo_test_components::ECHO));
//! # Ok::<(), std::io::Error>(())
//! ```

include!(concat!(env!("OUT_DIR"), "/components.rs"));

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
    fn paths_by_either_name() {
        assert_eq!(path("fuel-infinite-loop"), Some(FUEL_INFINITE_LOOP));
        assert_eq!(path("fuel_infinite_loop"), Some(FUEL_INFINITE_LOOP));
        assert_eq!(path("probe"), None);
    }
}
