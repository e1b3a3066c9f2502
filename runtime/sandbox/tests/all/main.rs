//! Integration tests of relo-sandbox: every test component under `tests/components` runs
//! here with its named outcome and the evidence it must produce, followed by a normal
//! step on the same engine to show the host kept serving.

mod capabilities;
mod circuit;
mod egress;
mod filesystem;
mod limits;
mod loading;
mod secrets;
mod support;

/// Every component's test, by the component's name.
mod component_tests {
    pub use crate::capabilities::*;
    pub use crate::circuit::*;
    pub use crate::egress::*;
    pub use crate::filesystem::*;
    pub use crate::limits::*;
    pub use crate::loading::*;
    pub use crate::secrets::*;
}

/// Fails to compile when a component under `tests/components` has no test of its name.
macro_rules! assert_component_has_test {
    ($name:ident) => {
        #[expect(unused_imports, reason = "the import only proves the test exists")]
        use crate::component_tests::$name as _;
    };
}
relo_test_components::foreach_component!(assert_component_has_test);
