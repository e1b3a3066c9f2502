//! Hostile input: the parsers never panic, never overflow the stack, and refuse what is
//! too big, too deep or not text with the named code.

use proptest::prelude::*;
use relo_manifest::{Code, FileKind, MAX_FILE_BYTES, parse};

use crate::repo_root;

fn codes(kind: FileKind, bytes: &[u8]) -> Vec<Code> {
    match parse(kind, "generated", bytes) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.items().iter().map(|p| p.code).collect(),
    }
}

#[test]
fn a_ten_megabyte_file_is_refused_without_parsing() {
    let mut big = b"apiVersion: relo.dev/v1\nkind: Workflow\nname: x\nsteps:\n".to_vec();
    while big.len() < 10 * 1024 * 1024 {
        big.extend_from_slice(b"  - { id: a, uses: acme/a@0.1.0 }\n");
    }
    assert!(big.len() > MAX_FILE_BYTES);
    for kind in FileKind::ALL {
        assert_eq!(codes(*kind, &big), [Code::TooLarge]);
    }
}

#[test]
fn deep_nesting_is_too_deep_not_a_stack_overflow() {
    let depth = 200_000;
    let header = "apiVersion: relo.dev/v1\nkind: Workflow\nname: x\nsteps:\n  - id: a\n    uses: acme/a@0.1.0\n    with: ";
    let cases: Vec<(FileKind, String)> = vec![
        (FileKind::Workflow, format!("{header}{}", "[".repeat(depth))),
        (
            FileKind::Workflow,
            format!("{header}{}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
        ),
        (FileKind::Workflow, {
            let mut text = String::from("steps:\n");
            for level in 1..2_000 {
                text.push_str(&" ".repeat(level));
                text.push_str("- \n");
            }
            text
        }),
        (FileKind::Plugin, format!("x = {}", "[".repeat(depth))),
        (
            FileKind::Plugin,
            format!("x = {}1{}", "{a=".repeat(depth), "}".repeat(depth)),
        ),
        (
            FileKind::Operator,
            format!("[{}]\n", vec!["a"; 50_000].join(".")),
        ),
        (
            FileKind::Workflow,
            format!(
                "{header}\"${{{{ {}true{} }}}}\"",
                "(".repeat(10_000),
                ")".repeat(10_000)
            ),
        ),
        (
            FileKind::Workflow,
            format!("{header}\"${{{{ {}true }}}}\"", "!".repeat(10_000)),
        ),
    ];
    for (index, (kind, text)) in cases.into_iter().enumerate() {
        let found = codes(kind, text.as_bytes());
        assert!(found.contains(&Code::TooDeep), "case {index}: {found:?}");
    }
}

#[test]
fn a_workflow_may_have_at_most_a_thousand_steps() {
    let mut text = String::from("apiVersion: relo.dev/v1\nkind: Workflow\nname: x\nsteps:\n");
    for index in 0..1_001 {
        let needs = if index == 0 {
            String::new()
        } else {
            format!(", needs: [s{}]", index - 1)
        };
        text.push_str(&format!("  - {{ id: s{index}, uses: acme/a@0.1.0{needs}, with: {{ x: \"${{{{ steps.s0.outputs.x }}}}\" }} }}\n"));
    }
    assert_eq!(
        codes(FileKind::Workflow, text.as_bytes()),
        [Code::OutOfRange]
    );
    let under: String = text
        .lines()
        .take(4 + 1_000)
        .map(|line| format!("{line}\n"))
        .collect();
    let found = codes(FileKind::Workflow, under.as_bytes());
    assert_eq!(
        found,
        [Code::NotUpstream],
        "only s0 reading itself is wrong"
    );
}

#[test]
fn non_utf8_anywhere_names_its_offset() {
    let text = std::fs::read(repo_root().join("tests/manifests/valid/workflow-design-sketch.yaml"))
        .expect("the corpus is readable");
    for offset in [0, 1, text.len() / 2, text.len() - 1] {
        let mut bytes = text.clone();
        bytes[offset] = 0xff;
        let problems = parse(FileKind::Workflow, "w.yaml", &bytes).unwrap_err();
        let first = &problems.items()[0];
        assert_eq!(first.code, Code::NotUtf8);
        assert_eq!(first.offset, offset);
    }
}

#[test]
fn aliases_cannot_blow_up() {
    let mut text = String::from(
        "apiVersion: relo.dev/v1\nkind: Workflow\nname: x\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
    );
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        text.push_str(&format!(
            "a{level}: &a{level} [{}]\n",
            [previous.as_str(); 10].join(", ")
        ));
    }
    assert!(codes(FileKind::Workflow, text.as_bytes()).contains(&Code::TooManyAliases));
}

/// The valid corpus files, with their kinds.
fn seeds() -> Vec<(FileKind, Vec<u8>)> {
    let dir = repo_root().join("tests/manifests/valid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("the corpus is readable") {
        let path = entry.expect("the corpus is readable").path();
        let name = path
            .file_name()
            .expect("the corpus is readable")
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".expected") {
            continue;
        }
        let kind = if name.starts_with("plugin-") {
            FileKind::Plugin
        } else if name.starts_with("operator-") {
            FileKind::Operator
        } else {
            FileKind::Workflow
        };
        out.push((kind, std::fs::read(path).expect("the corpus is readable")));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Bytes that matter to the formats, so mutations reach past the first syntax error.
const INTERESTING: &[u8] = b"[]{}:,-#'\"\t\n =.*@/${}!&|()0123456789abc\\\xff\xc3";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for kind in FileKind::ALL {
            let _ = parse(*kind, "fuzz", &bytes);
        }
    }

    #[test]
    fn structured_noise_never_panics(bytes in proptest::collection::vec(proptest::sample::select(INTERESTING), 0..256)) {
        for kind in FileKind::ALL {
            let _ = parse(*kind, "fuzz", &bytes);
        }
    }

    #[test]
    fn mutated_valid_files_never_panic(
        seed in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..3, proptest::sample::select(INTERESTING)), 1..8),
    ) {
        let seeds = seeds();
        let (kind, mut bytes) = seeds[seed.index(seeds.len())].clone();
        for (at, op, byte) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => bytes.push(byte),
            }
        }
        if let Err(problems) = parse(kind, "mutated", &bytes) {
            // Every problem renders and serialises without panicking.
            let _ = problems.render();
            let _ = serde_json::to_string(problems.items()).expect("the corpus is readable");
        }
    }
}
