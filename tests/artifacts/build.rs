//! Builds the two guest workspaces for `wasm32-wasip2` (release, into
//! `<workspace root>/target/guests`) and describes what they produced:
//!
//! - `tests/components` → `OUT_DIR/components.rs`: a path constant per component, `ALL`,
//!   and the `foreach_component!` macro;
//! - `plugins` → `OUT_DIR/plugins.rs`: per plugin a constant for its `.wasm` and one
//!   for its `relo-plugin.toml`, `ALL`, and the `foreach_plugin!` macro.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip2";

/// Inherited variables that would change or break the nested build: flags and wrappers
/// meant for this crate, and what cargo sets for this build script only.
const REMOVED: &[&str] = &[
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
];
const REMOVED_PREFIXES: &[&str] = &[
    "CARGO_PROFILE_",
    "CARGO_CFG_",
    "CARGO_FEATURE_",
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
];

/// A component of a guest workspace.
struct Component {
    /// The folder and crate name, `fuel-infinite-loop`.
    name: String,
    /// The crate's `description`.
    description: String,
    /// The crate's folder.
    dir: PathBuf,
    /// The built `.wasm`.
    wasm: PathBuf,
}

impl Component {
    /// The name as a Rust constant, `FUEL_INFINITE_LOOP`.
    fn constant(&self) -> String {
        self.name.replace('-', "_").to_uppercase()
    }

    /// The name as a Rust identifier, `fuel_infinite_loop`.
    fn ident(&self) -> String {
        self.name.replace('-', "_")
    }
}

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/artifacts is two levels below the workspace root")
        .to_path_buf();
    let target_dir = root.join("target/guests");
    watch_sdk(&root);

    let components = build_guests(&root.join("tests/components"), &target_dir);
    let plugins = build_guests(&root.join("plugins"), &target_dir);
    // Both workspaces build into one target directory: a shared name would make one
    // `.wasm` overwrite the other.
    for plugin in &plugins {
        assert!(
            components.iter().all(|c| c.name != plugin.name),
            "`{}` is both a test component and a plugin; rename one",
            plugin.name
        );
    }

    let out = PathBuf::from(env("OUT_DIR"));
    write(
        &out.join("components.rs"),
        &generate_components(&components),
    );
    write(&out.join("plugins.rs"), &generate_plugins(&plugins));
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
}

/// Builds the guest workspace in `guests` and returns its components, each checked to
/// have been built.
fn build_guests(guests: &Path, target_dir: &Path) -> Vec<Component> {
    let members = members(&guests.join("Cargo.toml"));
    watch_workspace(guests, &members);
    let components: Vec<Component> = members
        .iter()
        .filter_map(|member| component(guests, target_dir, member))
        .collect();
    build(guests, target_dir);
    for component in &components {
        assert!(
            component.wasm.is_file(),
            "the guest build did not produce {}",
            component.wasm.display()
        );
    }
    components
}

/// The `members` of the guest workspace's `[workspace]` table.
fn members(manifest: &Path) -> Vec<String> {
    let text = read(manifest);
    let list = text
        .split_once("members")
        .and_then(|(_, rest)| rest.split_once('['))
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .unwrap_or_else(|| panic!("no `members = [...]` in {}", manifest.display()));
    let members: Vec<String> = list
        .lines()
        .map(|line| line.split_once('#').map_or(line, |(code, _)| code))
        .flat_map(|line| line.split(','))
        .map(|item| item.trim().trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect();
    assert!(!members.is_empty(), "no members in {}", manifest.display());
    members
}

/// The member as a component, or `None` if it is a library (not a `cdylib`).
fn component(guests: &Path, target_dir: &Path, member: &str) -> Option<Component> {
    let dir = guests.join(member);
    let manifest = read(&dir.join("Cargo.toml"));
    let compact: String = manifest.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains(r#"crate-type=["cdylib"]"#) {
        return None;
    }
    let description = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("description"))
        .and_then(|rest| rest.trim().strip_prefix('='))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .unwrap_or_default();
    let wasm = target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join(format!("{}.wasm", member.replace('-', "_")));
    Some(Component {
        name: member.to_owned(),
        description,
        dir,
        wasm,
    })
}

/// What every guest is built from: the SDK and the WIT.
fn watch_sdk(root: &Path) {
    for path in [
        "sdk/rust/Cargo.toml",
        "sdk/rust/src",
        "sdk/rust/macros/Cargo.toml",
        "sdk/rust/macros/src",
        "wit",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
}

/// What one guest workspace is built from: its manifest, lock file and members.
fn watch_workspace(guests: &Path, members: &[String]) {
    let mut paths = vec![guests.join("Cargo.toml"), guests.join("Cargo.lock")];
    paths.extend(members.iter().map(|member| guests.join(member)));
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn build(guests: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(GUEST_TARGET)
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if REMOVED.contains(&name)
            || REMOVED_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix))
        {
            command.env_remove(name);
        }
    }
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run cargo to build the guests: {error}"));
    if !output.status.success() {
        panic!(
            "building the guest workspace {} failed ({}):\n{:?}\n--- stdout\n{}\n--- stderr\n{}",
            guests.display(),
            output.status,
            command,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

/// A `#[macro_export]` macro `name` that calls `$mac!(ident)` once per component.
fn foreach_macro(src: &mut String, name: &str, components: &[Component]) {
    let _ = write!(
        src,
        "#[macro_export]\nmacro_rules! {name} {{\n    ($mac:ident) => {{\n"
    );
    for component in components {
        let _ = writeln!(src, "        $mac!({});", component.ident());
    }
    src.push_str("    };\n}\n");
}

fn generate_components(components: &[Component]) -> String {
    let mut src = String::from("// Generated by tests/artifacts/build.rs.\n\n");
    for component in components {
        let _ = writeln!(
            src,
            "/// `{name}`: {description}\n///\n/// The component built from \
             `tests/components/{name}`; see its line in `tests/components/README.md`.\n\
             pub const {constant}: &str = {path:?};\n",
            name = component.name,
            description = component.description,
            constant = component.constant(),
            path = component.wasm.display().to_string(),
        );
    }

    src.push_str(
        "/// Every component as `(name, path)`, in the guest workspace's member order. The\n\
         /// name is the folder name, `fuel-infinite-loop`.\n\
         pub const ALL: &[(&str, &str)] = &[\n",
    );
    for component in components {
        let _ = writeln!(src, "    ({:?}, {}),", component.name, component.constant());
    }
    src.push_str("];\n\n");

    src.push_str(
        "/// Calls `$mac!(name)` once for every component, with its snake_case name\n\
         /// (`fuel_infinite_loop`), so a test file can require a test for each one:\n\
         ///\n\
         /// ```ignore\n\
         /// macro_rules! assert_test_exists {\n\
         ///     ($name:ident) => {\n\
         ///         #[expect(unused_imports, reason = \"only checks the test exists\")]\n\
         ///         use self::$name as _;\n\
         ///     };\n\
         /// }\n\
         /// relo_test_components::foreach_component!(assert_test_exists);\n\
         /// ```\n",
    );
    foreach_macro(&mut src, "foreach_component", components);
    src
}

fn generate_plugins(plugins: &[Component]) -> String {
    let mut src = String::from("// Generated by tests/artifacts/build.rs.\n\n");
    for plugin in plugins {
        let manifest = plugin.dir.join("relo-plugin.toml");
        assert!(
            manifest.is_file(),
            "the plugin `{}` has no relo-plugin.toml beside its Cargo.toml",
            plugin.name
        );
        let _ = writeln!(
            src,
            "/// `relo/{name}`: {description}\n///\n/// The component built from \
             `plugins/{name}`; its manifest is [`{constant}_MANIFEST`].\n\
             pub const {constant}: &str = {wasm:?};\n\n\
             /// The `relo-plugin.toml` of [`{constant}`].\n\
             pub const {constant}_MANIFEST: &str = {manifest:?};\n",
            name = plugin.name,
            description = plugin.description,
            constant = plugin.constant(),
            wasm = plugin.wasm.display().to_string(),
            manifest = manifest.display().to_string(),
        );
    }

    src.push_str(
        "/// Every plugin, in the guest workspace's member order.\n\
         pub const ALL: &[Plugin] = &[\n",
    );
    for plugin in plugins {
        let _ = writeln!(
            src,
            "    Plugin {{ name: {name:?}, wasm: {constant}, manifest: {constant}_MANIFEST }},",
            name = plugin.name,
            constant = plugin.constant(),
        );
    }
    src.push_str("];\n\n");

    src.push_str(
        "/// Calls `$mac!(name)` once for every plugin under `plugins/`, with its snake_case\n\
         /// name (`verify_release`), so a test file can require a test module for each one,\n\
         /// as [`foreach_component!`](crate::foreach_component) does for the test components.\n",
    );
    foreach_macro(&mut src, "foreach_plugin", plugins);
    src
}
