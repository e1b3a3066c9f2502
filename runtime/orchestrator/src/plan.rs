//! A workflow as a DAG: its steps in waves, each wave's steps needing only steps of
//! earlier waves, so every step of a wave can run at once.

use std::collections::BTreeMap;

use relo_manifest::{Step, Workflow};

/// The steps of `workflow` in waves: wave 0 needs nothing, wave n needs only steps of
/// waves before it.
///
/// Workflows come from relo-manifest, which refuses unknown `needs` and cycles, so every
/// step lands in a wave; a step that cannot (only possible for a workflow built by hand)
/// is left out, and [`unplaced`] names it.
pub fn waves(workflow: &Workflow) -> Vec<Vec<&Step>> {
    let mut wave_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut waves: Vec<Vec<&Step>> = Vec::new();
    loop {
        let mut placed = false;
        for step in &workflow.steps {
            if wave_of.contains_key(step.id.as_str()) {
                continue;
            }
            let needs: Option<Vec<usize>> = step
                .needs
                .iter()
                .map(|need| wave_of.get(need.as_str()).copied())
                .collect();
            if let Some(needs) = needs {
                let wave = needs.iter().map(|w| w + 1).max().unwrap_or(0);
                wave_of.insert(step.id.as_str(), wave);
                if waves.len() <= wave {
                    waves.resize_with(wave + 1, Vec::new);
                }
                waves[wave].push(step);
                placed = true;
            }
        }
        if !placed {
            break;
        }
    }
    waves
}

/// Steps of `workflow` that [`waves`] cannot place (a cycle or an unknown `needs`).
pub fn unplaced<'a>(workflow: &'a Workflow, waves: &[Vec<&Step>]) -> Vec<&'a Step> {
    workflow
        .steps
        .iter()
        .filter(|step| !waves.iter().flatten().any(|placed| placed.id == step.id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(steps: &str) -> Workflow {
        let text = format!("apiVersion: relo.dev/v1\nkind: Workflow\nname: t\nsteps:\n{steps}");
        relo_manifest::parse_workflow("t.yaml", text.as_bytes()).unwrap()
    }

    fn ids(waves: &[Vec<&Step>]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|wave| wave.iter().map(|s| s.id.as_str().to_owned()).collect())
            .collect()
    }

    #[test]
    fn steps_fall_into_waves_by_their_needs() {
        let wf = workflow(
            "  - {id: a, uses: acme/x@1.0.0}\n\
             \x20 - {id: b, uses: acme/x@1.0.0, needs: [a]}\n\
             \x20 - {id: c, uses: acme/x@1.0.0}\n\
             \x20 - {id: d, uses: acme/x@1.0.0, needs: [b, c]}\n\
             \x20 - {id: e, uses: acme/x@1.0.0, needs: [a]}\n",
        );
        let waves = waves(&wf);
        assert_eq!(ids(&waves), [vec!["a", "c"], vec!["b", "e"], vec!["d"]]);
        assert!(unplaced(&wf, &waves).is_empty());
    }
}
