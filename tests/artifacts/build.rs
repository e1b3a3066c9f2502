//! Builds the guest components under `tests/components` for `wasm32-wasip2` (release,
//! into `<workspace root>/target/guests`) and writes `OUT_DIR/components.rs`: a path
//! constant per component, `ALL`, `path()` and the `foreach_component!` macro.

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

/// A component of the guest workspace.
struct Component {
    /// The folder and crate name, `fuel-infinite-loop`.
    name: String,
    /// The crate's `description`.
    description: String,
    /// The built `.wasm`.
    wasm: PathBuf,
}

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/artifacts is two levels below the workspace root")
        .to_path_buf();
    let guests = root.join("tests/components");
    let target_dir = root.join("target/guests");

    let members = members(&guests.join("Cargo.toml"));
    watch(&root, &guests, &members);

    let components: Vec<Component> = members
        .iter()
        .filter_map(|member| component(&guests, &target_dir, member))
        .collect();
    build(&guests, &target_dir);
    for component in &components {
        assert!(
            component.wasm.is_file(),
            "the guest build did not produce {}",
            component.wasm.display()
        );
    }

    let out = PathBuf::from(env("OUT_DIR")).join("components.rs");
    std::fs::write(&out, generate(&components))
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", out.display()));
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
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
    let manifest = read(&guests.join(member).join("Cargo.toml"));
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
        wasm,
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Everything the guests are built from: the guest workspace, the SDK and the WIT.
fn watch(root: &Path, guests: &Path, members: &[String]) {
    let mut paths = vec![
        guests.join("Cargo.toml"),
        guests.join("Cargo.lock"),
        root.join("sdk/rust/Cargo.toml"),
        root.join("sdk/rust/src"),
        root.join("sdk/rust/macros/Cargo.toml"),
        root.join("sdk/rust/macros/src"),
        root.join("wit"),
    ];
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
            "building the guest components failed ({}):\n{:?}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            command,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
}

fn generate(components: &[Component]) -> String {
    let mut src = String::from("// Generated by tests/artifacts/build.rs.\n\n");
    for component in components {
        let _ = writeln!(
            src,
            "/// `{name}`: {description}\n///\n/// The component built from \
             `tests/components/{name}`; see its line in `tests/components/README.md`.\n\
             pub const {constant}: &str = {path:?};\n",
            name = component.name,
            description = component.description,
            constant = component.name.replace('-', "_").to_uppercase(),
            path = component.wasm.display().to_string(),
        );
    }

    src.push_str(
        "/// Every component as `(name, path)`, in the guest workspace's member order. The\n\
         /// name is the folder name, `fuel-infinite-loop`.\n\
         pub const ALL: &[(&str, &str)] = &[\n",
    );
    for component in components {
        let _ = writeln!(
            src,
            "    ({:?}, {}),",
            component.name,
            component.name.replace('-', "_").to_uppercase()
        );
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
         /// ```\n\
         #[macro_export]\n\
         macro_rules! foreach_component {\n\
         \x20   ($mac:ident) => {\n",
    );
    for component in components {
        let _ = writeln!(src, "        $mac!({});", component.name.replace('-', "_"));
    }
    src.push_str("    };\n}\n");
    src
}
