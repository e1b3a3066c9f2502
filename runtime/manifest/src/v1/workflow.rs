//! The workflow, `apiVersion: relo.dev/v1`, `kind: Workflow`: parameters, steps, their
//! order (`needs`), their inputs (`with`), approval gates and concurrency.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    MAX_STEPS, QUORUM_RANGE, RETRIES_RANGE, TIMEOUT_RANGE_MS, duration_in, no_duplicates, optional,
};
use crate::decode::{Cx, Decode, Path, suggest};
use crate::diagnostic::Code;
use crate::expr::{Condition, ExpressionError, Reference, Template};
use crate::origin::Origin;
use crate::tree::{Kind, Node};
use crate::values::{
    DurationSpec, OnConflict, ParamName, ParamType, Pattern, PluginRef, RelativePath, Role, StepId,
    WorkflowName,
};

pub(crate) const ROOT: &[&str] = &[
    "apiVersion",
    "kind",
    "name",
    "description",
    "params",
    "workspace",
    "concurrency",
    "steps",
];
pub(crate) const PARAM: &[&str] = &["type", "pattern", "default", "description"];
pub(crate) const CONCURRENCY: &[&str] = &["group", "on_conflict"];
pub(crate) const STEP: &[&str] = &[
    "id", "uses", "approval", "with", "needs", "if", "timeout", "retries",
];
pub(crate) const APPROVAL: &[&str] = &["roles", "quorum"];

/// The `apiVersion` this module reads.
pub const API_VERSION: &str = "relo.dev/v1";

/// `apiVersion: relo.dev/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// `relo.dev/v1`
    #[serde(rename = "relo.dev/v1")]
    V1,
}

/// `kind: Workflow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WorkflowKind {
    /// `Workflow`
    Workflow,
}

/// A workflow, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "relo workflow, apiVersion relo.dev/v1")]
pub struct Workflow {
    /// `relo.dev/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// `Workflow`.
    pub kind: WorkflowKind,
    /// The workflow's name.
    pub name: WorkflowName,
    /// What it does, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The parameters a run is started with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<ParamName, Param>,
    /// A folder (relative to the workflow file) copied into each run's workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<RelativePath>,
    /// At most one run of a group at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// The steps, in the order written (they run as `needs` allows).
    pub steps: Vec<Step>,
    #[serde(skip)]
    #[schemars(skip)]
    origin: Origin,
}

impl Workflow {
    /// Where this workflow was read from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|step| step.id.as_str() == id)
    }
}

/// A parameter of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// `string`, `number` or `boolean`.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// A regular expression a string value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<Pattern>,
    /// The value when a run gives none; without a default the parameter is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// What it is, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `concurrency`: one run of the group at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// The group's name; may use `${{ params.NAME }}`.
    pub group: Template,
    /// `wait` (the default) or `refuse`.
    #[serde(default)]
    pub on_conflict: OnConflict,
}

/// One step: a plugin to run (`uses`) or an approval gate (`approval`), never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The step's id, unique in the workflow.
    pub id: StepId,
    /// The plugin: `namespace/name@version` or `namespace/name@sha256:<digest>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<PluginRef>,
    /// An approval gate instead of a plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The plugin's input (JSON); strings may hold `${{ … }}` expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<serde_json::Value>,
    /// Steps that must finish first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<StepId>,
    /// Run the step only when this holds.
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Wall-clock limit of one attempt, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Attempts after a failed one, at most 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub retries: Option<u32>,
}

/// An approval gate: a quorum of people holding one of the roles must approve. The run's
/// requester never counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Roles whose holders may approve; at least one.
    pub roles: Vec<Role>,
    /// How many approvals are needed; at least 1.
    #[schemars(range(min = 1, max = 100))]
    pub quorum: u32,
}

/// What the checks across steps need to know about one step, read from the tree even
/// when the step itself has other problems.
struct StepFacts {
    index: usize,
    id: Option<(String, Range<usize>, Path)>,
    needs: Vec<(String, Range<usize>, Path)>,
    references: Vec<(Reference, Range<usize>, Path)>,
}

/// Reports the `apiVersion` problems; `false` when the file is of a version this build
/// does not read (nothing else is checked then).
pub(crate) fn check_version(cx: &mut Cx<'_>, root: &Node) -> bool {
    if root.entries().is_none() {
        return true;
    }
    let path = Path::root().field("apiVersion");
    match root.get("apiVersion") {
        None => {
            cx.error(
                Code::MissingField,
                root.span.start..root.span.start,
                &Path::root(),
                "missing field `apiVersion` in the workflow",
            )
            .hint = Some(format!("start the file with `apiVersion: {API_VERSION}`"));
            true
        }
        Some(node) => match node.as_str() {
            Some(API_VERSION) => true,
            Some(other) if other.starts_with("relo.dev/") => {
                cx.error(
                    Code::UnsupportedVersion,
                    node.span.clone(),
                    &path,
                    format!("`{other}` is not a workflow version this relo reads"),
                )
                .hint = Some(format!("this relo reads `{API_VERSION}`"));
                false
            }
            Some(other) => {
                cx.error(
                    Code::InvalidValue,
                    node.span.clone(),
                    &path,
                    format!("`{other}` is not a relo workflow version"),
                )
                .hint = Some(format!("write `apiVersion: {API_VERSION}`"));
                true
            }
            None => {
                cx.wrong_type(node, &path, "a string");
                true
            }
        },
    }
}

/// Reads a workflow from its tree and checks it as a whole.
pub(crate) fn decode(cx: &mut Cx<'_>, root: &Node, origin: Origin) -> Option<Workflow> {
    let table = cx.table(root, &Path::root(), "the workflow", ROOT)?;
    let kind = table.required(cx, "kind").and_then(|(node, path)| {
        let text = cx.string(node, &path)?;
        if text == "Workflow" {
            Some(WorkflowKind::Workflow)
        } else {
            cx.error(
                Code::InvalidValue,
                node.span.clone(),
                &path,
                format!("`{text}` is not a kind this file can be: expected `Workflow`"),
            );
            None
        }
    });
    let name = table.req::<WorkflowName>(cx, "name");
    let description = table.opt::<String>(cx, "description");
    let params_node = table.get("params");
    let params = optional(cx, params_node.clone(), |cx, node, path| {
        cx.map(node, path, decode_param)
    });
    let declared: Vec<String> = params_node
        .and_then(|(node, _)| node.entries())
        .map(|entries| entries.iter().map(|entry| entry.key.clone()).collect())
        .unwrap_or_default();
    let workspace = table.opt::<RelativePath>(cx, "workspace");
    let concurrency = optional(cx, table.get("concurrency"), |cx, node, path| {
        decode_concurrency(cx, node, path, &declared)
    });
    let mut facts = Vec::new();
    let steps = table.required(cx, "steps").and_then(|(node, path)| {
        let Kind::Seq(items) = &node.kind else {
            cx.wrong_type(node, &path, "a list of steps");
            return None;
        };
        if items.is_empty() {
            cx.error(
                Code::InvalidValue,
                node.span.clone(),
                &path,
                "the workflow has no steps",
            );
            return None;
        }
        if items.len() > MAX_STEPS {
            cx.error(
                Code::OutOfRange,
                node.span.start..node.span.start,
                &path,
                format!(
                    "the workflow has {} steps; at most {MAX_STEPS} are allowed",
                    items.len()
                ),
            )
            .hint = Some("split it into several workflows".into());
            return None;
        }
        let mut steps = Vec::new();
        let mut complete = true;
        for (index, item) in items.iter().enumerate() {
            let (step, fact) = decode_step(cx, item, &path.index(index), index);
            facts.push(fact);
            match step {
                Some(step) => steps.push(step),
                None => complete = false,
            }
        }
        complete.then_some(steps)
    });
    check_steps(cx, &facts, &declared);
    Some(Workflow {
        api_version: ApiVersion::V1,
        kind: kind?,
        name: name?,
        description: description.ok()?,
        params: params.ok()?.unwrap_or_default(),
        workspace: workspace.ok()?,
        concurrency: concurrency.ok()?,
        steps: steps?,
        origin,
    })
}

fn decode_param(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Param> {
    let fields = cx.table(node, path, "a parameter", PARAM)?;
    let kind = fields.req::<ParamType>(cx, "type");
    let pattern = fields.opt::<Pattern>(cx, "pattern");
    let description = fields.opt::<String>(cx, "description");
    if let (Some(kind), Some((pattern_node, pattern_path))) = (kind, fields.get("pattern"))
        && kind != ParamType::String
    {
        cx.error(
            Code::InvalidValue,
            pattern_node.span.clone(),
            &pattern_path,
            format!("a pattern applies only to string parameters; this one is a {kind}"),
        );
    }
    let default = match (fields.get("default"), kind) {
        (None, _) => Ok(None),
        (Some((node, path)), kind) => {
            let matches_type = match kind {
                Some(ParamType::String) => matches!(node.kind, Kind::Str(_)),
                Some(ParamType::Number) => matches!(node.kind, Kind::Int(_) | Kind::Float(_)),
                Some(ParamType::Boolean) => matches!(node.kind, Kind::Bool(_)),
                None => true,
            };
            if let (false, Some(kind)) = (matches_type, kind) {
                cx.wrong_type(node, &path, &format!("a {kind} (the parameter's type)"));
                Err(())
            } else if let (Some(text), Ok(Some(pattern))) = (node.as_str(), &pattern)
                && !pattern.is_match(text)
            {
                cx.error(
                    Code::InvalidValue,
                    node.span.clone(),
                    &path,
                    format!("the default `{text}` does not match the pattern `{pattern}`"),
                );
                Err(())
            } else {
                to_json(cx, node, &path).map(Some).ok_or(())
            }
        }
    };
    Some(Param {
        kind: kind?,
        pattern: pattern.ok()?,
        default: default.ok()?,
        description: description.ok()?,
    })
}

fn decode_concurrency(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &Path,
    declared: &[String],
) -> Option<Concurrency> {
    let fields = cx.table(node, path, "`concurrency`", CONCURRENCY)?;
    let on_conflict = fields.opt::<OnConflict>(cx, "on_conflict");
    let group = fields.required(cx, "group").and_then(|(node, path)| {
        let text = cx.string(node, &path)?;
        let template = match Template::parse_located(text) {
            Ok(template) => template,
            Err(error) => {
                report_expression_error(cx, node, &path, text, &error);
                return None;
            }
        };
        let mut ok = true;
        for (reference, at) in template.references() {
            let span = inner_span(cx, node, text, at);
            match reference {
                Reference::Param(name) => ok &= check_param(cx, name, span, &path, declared),
                Reference::StepOutput { .. } => {
                    cx.error(
                        Code::BadExpression,
                        span,
                        &path,
                        "the concurrency group is known before any step runs: it can use only `params`",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(template)
    });
    Some(Concurrency {
        group: group?,
        on_conflict: on_conflict.ok()?.unwrap_or_default(),
    })
}

fn decode_step(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &Path,
    index: usize,
) -> (Option<Step>, StepFacts) {
    let mut facts = StepFacts {
        index,
        id: None,
        needs: Vec::new(),
        references: Vec::new(),
    };
    let Some(fields) = cx.table(node, path, "a step", STEP) else {
        return (None, facts);
    };
    let id = fields.required(cx, "id").and_then(|(node, path)| {
        let id = StepId::decode(cx, node, &path)?;
        facts.id = Some((id.as_str().to_owned(), node.span.clone(), path));
        Some(id)
    });
    let uses = fields.opt::<PluginRef>(cx, "uses");
    let approval = optional(cx, fields.get("approval"), decode_approval);
    match (fields.get("uses"), fields.get("approval")) {
        (Some(_), Some((approval_node, approval_path))) => {
            cx.error(
                Code::ConflictingFields,
                approval_node.span.clone(),
                &approval_path,
                "a step has either `uses` or `approval`, not both",
            )
            .hint = Some("split it into a plugin step and an approval step that `needs` it".into());
        }
        (None, None) => {
            cx.error(
                Code::MissingField,
                fields.header_span(),
                path,
                "a step needs `uses` (a plugin to run) or `approval` (a gate)",
            );
        }
        _ => {}
    }
    if fields.get("approval").is_some() {
        for field in ["with", "retries"] {
            if let Some((node, path)) = fields.get(field) {
                cx.error(
                    Code::ConflictingFields,
                    node.span.clone(),
                    &path,
                    format!("an approval step takes no `{field}`"),
                );
            }
        }
    }
    let with = optional(cx, fields.get("with"), |cx, node, path| {
        collect_template_references(cx, node, path, &mut facts.references);
        to_json(cx, node, path)
    });
    let needs = optional(cx, fields.get("needs"), |cx, node, path| {
        no_duplicates(cx, node, path, "step");
        cx.list(node, path, |cx, item, item_path| {
            let id = StepId::decode(cx, item, item_path)?;
            facts
                .needs
                .push((id.as_str().to_owned(), item.span.clone(), item_path.clone()));
            Some(id)
        })
    });
    let condition = optional(cx, fields.get("if"), |cx, node, path| {
        let text = cx.string(node, path)?;
        match Condition::parse_located(text) {
            Ok(condition) => {
                for (reference, at) in condition.references() {
                    let span = inner_span(cx, node, text, at);
                    facts
                        .references
                        .push((reference.clone(), span, path.clone()));
                }
                Some(condition)
            }
            Err(error) => {
                report_expression_error(cx, node, path, text, &error);
                None
            }
        }
    });
    let timeout = optional(cx, fields.get("timeout"), |cx, node, path| {
        duration_in(cx, node, path, TIMEOUT_RANGE_MS)
    });
    let retries = optional(cx, fields.get("retries"), |cx, node, path| {
        cx.uint(node, path, RETRIES_RANGE)
            .and_then(|n| u32::try_from(n).ok())
    });
    let step = (|| {
        Some(Step {
            id: id?,
            uses: uses.ok()?,
            approval: approval.ok()?,
            with: with.ok()?,
            needs: needs.ok()?.unwrap_or_default(),
            condition: condition.ok()?,
            timeout: timeout.ok()?,
            retries: retries.ok()?,
        })
    })();
    let step = step.filter(|step| step.uses.is_some() != step.approval.is_some());
    let step = step
        .filter(|step| step.approval.is_none() || (step.with.is_none() && step.retries.is_none()));
    (step, facts)
}

fn decode_approval(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Approval> {
    let fields = cx.table(node, path, "an approval gate", APPROVAL)?;
    let roles = fields.required(cx, "roles").and_then(|(node, path)| {
        no_duplicates(cx, node, &path, "role");
        let roles: Vec<Role> = Vec::decode(cx, node, &path)?;
        if roles.is_empty() {
            cx.error(
                Code::InvalidValue,
                node.span.clone(),
                &path,
                "an approval gate names no roles",
            )
            .hint = Some("name who may approve, e.g. `roles: [release-manager]`".into());
            return None;
        }
        Some(roles)
    });
    let quorum = fields
        .required(cx, "quorum")
        .and_then(|(node, path)| cx.uint(node, &path, QUORUM_RANGE))
        .and_then(|quorum| u32::try_from(quorum).ok());
    Some(Approval {
        roles: roles?,
        quorum: quorum?,
    })
}

/// A `with` value as JSON.
fn to_json(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<serde_json::Value> {
    use serde_json::Value;
    Some(match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(value) => Value::Bool(*value),
        Kind::Int(value) => {
            if let Ok(small) = i64::try_from(*value) {
                Value::from(small)
            } else if let Ok(large) = u64::try_from(*value) {
                Value::from(large)
            } else {
                cx.error(
                    Code::OutOfRange,
                    node.span.clone(),
                    path,
                    format!("{value} does not fit in 64 bits"),
                );
                return None;
            }
        }
        Kind::Float(value) => match serde_json::Number::from_f64(*value) {
            Some(number) => Value::Number(number),
            None => {
                cx.error(
                    Code::InvalidValue,
                    node.span.clone(),
                    path,
                    "infinity and NaN have no JSON form",
                );
                return None;
            }
        },
        Kind::Str(text) | Kind::Datetime(text) => Value::String(text.clone()),
        Kind::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut complete = true;
            for (index, item) in items.iter().enumerate() {
                match to_json(cx, item, &path.index(index)) {
                    Some(value) => out.push(value),
                    None => complete = false,
                }
            }
            if !complete {
                return None;
            }
            Value::Array(out)
        }
        Kind::Map(entries) => {
            let mut out = serde_json::Map::new();
            let mut complete = true;
            for entry in entries {
                match to_json(cx, &entry.value, &path.field(&entry.key)) {
                    Some(value) => {
                        out.insert(entry.key.clone(), value);
                    }
                    None => complete = false,
                }
            }
            if !complete {
                return None;
            }
            Value::Object(out)
        }
    })
}

/// Parses every string under `node` that holds `${{`, reporting bad expressions and
/// collecting the references.
fn collect_template_references(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &Path,
    out: &mut Vec<(Reference, Range<usize>, Path)>,
) {
    let mut stack = vec![(node, path.clone())];
    while let Some((node, path)) = stack.pop() {
        match &node.kind {
            Kind::Str(text) if text.contains("${{") => match Template::parse_located(text) {
                Ok(template) => {
                    for (reference, at) in template.references() {
                        let span = inner_span(cx, node, text, at);
                        out.push((reference.clone(), span, path.clone()));
                    }
                }
                Err(error) => report_expression_error(cx, node, &path, text, &error),
            },
            Kind::Seq(items) => {
                for (index, item) in items.iter().enumerate().rev() {
                    stack.push((item, path.index(index)));
                }
            }
            Kind::Map(entries) => {
                for entry in entries.iter().rev() {
                    stack.push((&entry.value, path.field(&entry.key)));
                }
            }
            _ => {}
        }
    }
}

fn report_expression_error(
    cx: &mut Cx<'_>,
    node: &Node,
    path: &Path,
    text: &str,
    error: &ExpressionError,
) {
    let span = inner_span(cx, node, text, error.at.clone());
    let code = if error.too_deep {
        Code::TooDeep
    } else {
        Code::BadExpression
    };
    cx.error(
        code,
        span,
        path,
        format!("bad expression: {}", error.message),
    )
    .hint = Some(
        "expressions look like `${{ params.NAME }}` or `${{ steps.ID.outputs.FIELD }}`".into(),
    );
}

/// The source range of `at` (a range of the string value) when the value is written
/// plainly or in quotes without escapes; otherwise the whole node.
fn inner_span(cx: &Cx<'_>, node: &Node, value: &str, at: Range<usize>) -> Range<usize> {
    let raw = cx.slice(node.span.clone()).unwrap_or_default();
    let offset = if raw.starts_with(value) {
        Some(0)
    } else if (raw.starts_with('"') || raw.starts_with('\'')) && raw[1..].starts_with(value) {
        Some(1)
    } else {
        None
    };
    match offset {
        Some(offset) => node.span.start + offset + at.start..node.span.start + offset + at.end,
        None => node.span.clone(),
    }
}

fn check_param(
    cx: &mut Cx<'_>,
    name: &str,
    span: Range<usize>,
    path: &Path,
    declared: &[String],
) -> bool {
    if declared.iter().any(|param| param == name) {
        return true;
    }
    let diagnostic = cx.error(
        Code::UnknownParam,
        span,
        path,
        format!("`params.{name}` is not a declared parameter"),
    );
    diagnostic.hint = Some(match suggest(name, declared.iter().map(String::as_str)) {
        Some(close) => format!("did you mean `params.{close}`?"),
        None if declared.is_empty() => "declare it under `params:`".into(),
        None => format!("declared parameters: {}", declared.join(", ")),
    });
    false
}

/// Checks across steps: unique ids, `needs` that exist, no cycles, and expressions that
/// read declared parameters and upstream steps only.
fn check_steps(cx: &mut Cx<'_>, facts: &[StepFacts], declared: &[String]) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for fact in facts {
        if let Some((id, span, path)) = &fact.id {
            if let Some(previous) = first.get(id.as_str()) {
                cx.error(
                    Code::DuplicateStepId,
                    span.clone(),
                    path,
                    format!("step id `{id}` is already used by steps[{previous}]"),
                )
                .hint = Some("give every step its own id".into());
            } else {
                first.insert(id, fact.index);
            }
        }
    }
    let ids: Vec<&str> = first.keys().copied().collect();
    let mut edges: HashMap<usize, Vec<(usize, &StepFacts, usize)>> = HashMap::new();
    for fact in facts {
        for (need_index, (need, span, path)) in fact.needs.iter().enumerate() {
            match first.get(need.as_str()) {
                Some(&target) => {
                    if fact
                        .id
                        .as_ref()
                        .is_some_and(|(id, ..)| first.get(id.as_str()) == Some(&fact.index))
                    {
                        edges
                            .entry(fact.index)
                            .or_default()
                            .push((target, fact, need_index));
                    }
                }
                None => {
                    let diagnostic = cx.error(
                        Code::UnknownStep,
                        span.clone(),
                        path,
                        format!("`needs` names `{need}`, which is not a step of this workflow"),
                    );
                    if let Some(close) = suggest(need, ids.iter().copied()) {
                        diagnostic.hint = Some(format!("did you mean `{close}`?"));
                    }
                }
            }
        }
    }
    report_cycles(cx, facts, &edges);
    for fact in facts {
        let mut upstream: Option<HashSet<usize>> = None;
        for (reference, span, path) in &fact.references {
            match reference {
                Reference::Param(name) => {
                    check_param(cx, name, span.clone(), path, declared);
                }
                Reference::StepOutput { step, .. } => {
                    let Some(&target) = first.get(step.as_str()) else {
                        let diagnostic = cx.error(
                            Code::UnknownStep,
                            span.clone(),
                            path,
                            format!("`steps.{step}` is not a step of this workflow"),
                        );
                        if let Some(close) = suggest(step, ids.iter().copied()) {
                            diagnostic.hint = Some(format!("did you mean `steps.{close}`?"));
                        }
                        continue;
                    };
                    let upstream = upstream.get_or_insert_with(|| ancestors(fact.index, &edges));
                    if !upstream.contains(&target) {
                        let own = fact
                            .id
                            .as_ref()
                            .map(|(id, ..)| id.as_str())
                            .unwrap_or("this step");
                        let message = if target == fact.index {
                            format!("step `{own}` reads its own outputs")
                        } else {
                            format!(
                                "step `{own}` reads the outputs of `{step}`, which is not upstream of it"
                            )
                        };
                        let hint = if target == fact.index
                            || ancestors(target, &edges).contains(&fact.index)
                        {
                            "a step can read only the outputs of steps that finish before it"
                                .to_owned()
                        } else {
                            format!("add `{step}` to this step's `needs`")
                        };
                        cx.error(Code::NotUpstream, span.clone(), path, message)
                            .hint = Some(hint);
                    }
                }
            }
        }
    }
}

/// Every step that `start` needs, directly or through others.
fn ancestors(
    start: usize,
    edges: &HashMap<usize, Vec<(usize, &StepFacts, usize)>>,
) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        for (target, ..) in edges.get(&node).into_iter().flatten() {
            if seen.insert(*target) {
                stack.push(*target);
            }
        }
    }
    seen
}

/// Finds cycles with an iterative depth-first search and reports each once, at the
/// `needs` entry that closes it.
fn report_cycles(
    cx: &mut Cx<'_>,
    facts: &[StepFacts],
    edges: &HashMap<usize, Vec<(usize, &StepFacts, usize)>>,
) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let name = |index: usize| {
        facts
            .iter()
            .find(|fact| fact.index == index)
            .and_then(|fact| fact.id.as_ref())
            .map_or_else(|| format!("steps[{index}]"), |(id, ..)| id.clone())
    };
    let mut marks: HashMap<usize, Mark> = HashMap::new();
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    let mut roots: Vec<usize> = edges.keys().copied().collect();
    roots.sort_unstable();
    for root in roots {
        if marks.get(&root).copied().unwrap_or(Mark::New) != Mark::New {
            continue;
        }
        // (node, next edge to follow)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        marks.insert(root, Mark::Open);
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let outgoing = edges.get(&node).map(Vec::as_slice).unwrap_or_default();
            if top.1 >= outgoing.len() {
                marks.insert(node, Mark::Done);
                stack.pop();
                continue;
            }
            let (target, fact, need_index) = outgoing[top.1];
            top.1 += 1;
            match marks.get(&target).copied().unwrap_or(Mark::New) {
                Mark::New => {
                    marks.insert(target, Mark::Open);
                    stack.push((target, 0));
                }
                Mark::Open => {
                    let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let members: Vec<usize> = stack[from..].iter().map(|(n, _)| *n).collect();
                    let mut key = members.clone();
                    key.sort_unstable();
                    if reported.insert(key) {
                        let mut names: Vec<String> = members.iter().map(|&n| name(n)).collect();
                        names.push(name(target));
                        let (_, span, path) = &fact.needs[need_index];
                        cx.error(
                            Code::Cycle,
                            span.clone(),
                            path,
                            format!("steps need each other in a cycle: {}", names.join(" -> ")),
                        )
                        .hint =
                            Some("each arrow reads \"needs\"; remove one of these needs".into());
                    }
                }
                Mark::Done => {}
            }
        }
    }
}
