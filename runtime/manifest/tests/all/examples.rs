//! The example manifests under `manifests/` stay valid.

use relo_manifest::{check_plugin_against_config, parse_operator, parse_workflow};

use crate::repo_root;

#[test]
fn the_reference_release_workflow_and_config_are_valid() {
    let dir = repo_root().join("manifests");
    let config = std::fs::read(dir.join("relo.toml")).unwrap();
    let config =
        parse_operator("manifests/relo.toml", &config).unwrap_or_else(|p| panic!("{}", p.render()));
    let workflow = std::fs::read(dir.join("release.yaml")).unwrap();
    let workflow = parse_workflow("manifests/release.yaml", &workflow)
        .unwrap_or_else(|p| panic!("{}", p.render()));
    assert!(
        workflow.steps.iter().any(|step| step.approval.is_some()),
        "the release needs an approval gate"
    );
    // Every plugin manifest in the repository must run under the example config.
    let plugins = repo_root().join("plugins");
    for entry in std::fs::read_dir(&plugins).into_iter().flatten() {
        let manifest = entry.unwrap().path().join("relo-plugin.toml");
        if let Ok(bytes) = std::fs::read(&manifest) {
            let name = manifest.display().to_string();
            let plugin = relo_manifest::parse_plugin(&name, &bytes)
                .unwrap_or_else(|p| panic!("{}", p.render()));
            let problems = check_plugin_against_config(&plugin, &config);
            assert!(problems.is_empty(), "{name}: {problems:#?}");
        }
    }
}

#[test]
fn the_examples_in_docs_manifests_md_are_valid() {
    let text =
        std::fs::read_to_string(repo_root().join("docs/manifests.md")).expect("docs/manifests.md");
    let mut blocks: Vec<(&str, String)> = Vec::new();
    let mut current: Option<(&str, String)> = None;
    for line in text.lines() {
        match (&mut current, line) {
            (None, "```toml") => current = Some(("toml", String::new())),
            (None, "```yaml") => current = Some(("yaml", String::new())),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some((_, body)), line) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    let tomls: Vec<&String> = blocks
        .iter()
        .filter(|(lang, _)| *lang == "toml")
        .map(|(_, b)| b)
        .collect();
    let yamls: Vec<&String> = blocks
        .iter()
        .filter(|(lang, _)| *lang == "yaml")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        (tomls.len(), yamls.len()),
        (2, 1),
        "the doc's examples moved"
    );
    let plugin = relo_manifest::parse_plugin("plugin example", tomls[0].as_bytes());
    assert!(
        plugin.is_ok(),
        "{}",
        plugin.err().map(|p| p.render()).unwrap_or_default()
    );
    let workflow = parse_workflow("workflow example", yamls[0].as_bytes());
    assert!(
        workflow.is_ok(),
        "{}",
        workflow.err().map(|p| p.render()).unwrap_or_default()
    );
    let operator = parse_operator("operator example", tomls[1].as_bytes());
    assert!(
        operator.is_ok(),
        "{}",
        operator.err().map(|p| p.render()).unwrap_or_default()
    );
}
