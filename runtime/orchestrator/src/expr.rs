//! Evaluating `${{ … }}`: step inputs (`with:`) and `if:` conditions, from a run's
//! parameters and its finished steps' outputs. relo-manifest parses and checks the
//! expressions; nothing here executes code: references are looked up, literals compared.
//!
//! Strict on purpose: a reference to a parameter or an output field that does not exist
//! is an error naming it (not an empty string), and a condition must be a boolean.

use std::collections::BTreeMap;

use relo_manifest::{Condition, Expression, Literal, Reference, Segment, Template, TemplatePart};
use serde_json::Value;

/// What expressions of one step can see.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The run's parameters, defaults filled in.
    pub params: &'a BTreeMap<String, Value>,
    /// The outputs of the run's succeeded steps, by step id.
    pub outputs: &'a BTreeMap<String, Value>,
}

/// Why an expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// `params.NAME` names no parameter of the run.
    #[error("`params.{0}` is not a parameter of this run")]
    UnknownParam(String),
    /// `steps.ID.outputs…` names a step that has no output (it did not succeed, or
    /// has not run).
    #[error("`steps.{0}.outputs` is not available: that step has not succeeded")]
    NoOutput(String),
    /// The path below `outputs` does not exist in the step's output.
    #[error("`{reference}` does not exist in the output of step `{step}`")]
    MissingPath {
        /// The step.
        step: String,
        /// The whole reference, as written.
        reference: String,
    },
    /// An `if:` did not evaluate to a boolean.
    #[error("the condition `{condition}` is {found}, not true or false")]
    NotABoolean {
        /// The condition as written.
        condition: String,
        /// What it evaluated to.
        found: String,
    },
    /// A string of `with:` is not a valid template (only possible for input built by
    /// hand; workflows are checked when they are read).
    #[error("{0}")]
    Invalid(String),
}

/// The value of `expression`.
pub fn evaluate(expression: &Expression, context: Context<'_>) -> Result<Value, EvalError> {
    Ok(match expression {
        Expression::Literal(literal) => literal_value(literal),
        Expression::Reference { reference, .. } => lookup(reference, context)?,
        Expression::Not(operand) => Value::Bool(!truthy(&evaluate(operand, context)?)),
        Expression::Equal(left, right) => {
            Value::Bool(same(&evaluate(left, context)?, &evaluate(right, context)?))
        }
        Expression::NotEqual(left, right) => {
            Value::Bool(!same(&evaluate(left, context)?, &evaluate(right, context)?))
        }
        Expression::And(left, right) => {
            Value::Bool(truthy(&evaluate(left, context)?) && truthy(&evaluate(right, context)?))
        }
        Expression::Or(left, right) => {
            Value::Bool(truthy(&evaluate(left, context)?) || truthy(&evaluate(right, context)?))
        }
    })
}

/// Whether an `if:` condition holds; it must evaluate to `true` or `false`.
pub fn holds(condition: &Condition, context: Context<'_>) -> Result<bool, EvalError> {
    match evaluate(condition.expression(), context)? {
        Value::Bool(value) => Ok(value),
        other => Err(EvalError::NotABoolean {
            condition: condition.as_str().to_owned(),
            found: other.to_string(),
        }),
    }
}

/// A template's value: a template that is one expression and nothing else keeps the
/// value's JSON type; otherwise the parts are joined into a string (strings as they are,
/// `null` as nothing, anything else as compact JSON).
pub fn render(template: &Template, context: Context<'_>) -> Result<Value, EvalError> {
    if let [TemplatePart::Expression(only)] = template.parts() {
        return evaluate(only, context);
    }
    let mut text = String::new();
    for part in template.parts() {
        match part {
            TemplatePart::Text(literal) => text.push_str(literal),
            TemplatePart::Expression(expression) => match evaluate(expression, context)? {
                Value::String(value) => text.push_str(&value),
                Value::Null => {}
                other => text.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(text))
}

/// A step's input: `with` with every string rendered as a template, recursively.
pub fn input(with: &Value, context: Context<'_>) -> Result<Value, EvalError> {
    Ok(match with {
        Value::String(text) => {
            let template = Template::parse(text).map_err(|e| EvalError::Invalid(e.to_string()))?;
            render(&template, context)?
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| input(item, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| Ok((key.clone(), input(value, context)?)))
                .collect::<Result<_, EvalError>>()?,
        ),
        other => other.clone(),
    })
}

fn lookup(reference: &Reference, context: Context<'_>) -> Result<Value, EvalError> {
    match reference {
        Reference::Param(name) => context
            .params
            .get(name)
            .cloned()
            .ok_or_else(|| EvalError::UnknownParam(name.clone())),
        Reference::StepOutput { step, path } => {
            let mut value = context
                .outputs
                .get(step)
                .ok_or_else(|| EvalError::NoOutput(step.clone()))?;
            for segment in path {
                let next = match segment {
                    Segment::Field(name) => value.get(name),
                    Segment::Index(index) => value.get(index),
                };
                value = next.ok_or_else(|| EvalError::MissingPath {
                    step: step.clone(),
                    reference: written(step, path),
                })?;
            }
            Ok(value.clone())
        }
    }
}

fn written(step: &str, path: &[Segment]) -> String {
    let mut text = format!("steps.{step}.outputs");
    for segment in path {
        match segment {
            Segment::Field(name) => {
                text.push('.');
                text.push_str(name);
            }
            Segment::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

fn literal_value(literal: &Literal) -> Value {
    match literal {
        Literal::Null => Value::Null,
        Literal::Bool(value) => Value::Bool(*value),
        Literal::Number(value) => {
            serde_json::Number::from_f64(*value).map_or(Value::Null, Value::Number)
        }
        Literal::String(value) => Value::String(value.clone()),
    }
}

/// Equality, with numbers compared by value (`1 == 1.0`).
fn same(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => left == right,
    }
}

/// `false`, `null`, `""`, `0` and empty lists and objects are false; the rest true.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(value) => *value,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context<'a>(
        params: &'a BTreeMap<String, Value>,
        outputs: &'a BTreeMap<String, Value>,
    ) -> Context<'a> {
        Context { params, outputs }
    }

    fn maps() -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
        let params = [
            ("version".to_owned(), json!("1.2.3")),
            ("dry".to_owned(), json!(false)),
        ]
        .into();
        let outputs = [(
            "verify".to_owned(),
            json!({"tag": "v1.2.3", "files": ["VERSION", "Chart.yaml"], "count": 2}),
        )]
        .into();
        (params, outputs)
    }

    #[test]
    fn inputs_keep_types_and_interpolate_strings() {
        let (params, outputs) = maps();
        let with = json!({
            "version": "${{ params.version }}",
            "tag": "release ${{ steps.verify.outputs.tag }} (${{ steps.verify.outputs.count }})",
            "first": "${{ steps.verify.outputs.files[0] }}",
            "files": "${{ steps.verify.outputs.files }}",
            "list": ["${{ params.dry }}", 3, null],
        });
        assert_eq!(
            input(&with, context(&params, &outputs)).unwrap(),
            json!({
                "version": "1.2.3",
                "tag": "release v1.2.3 (2)",
                "first": "VERSION",
                "files": ["VERSION", "Chart.yaml"],
                "list": [false, 3, null],
            })
        );
    }

    #[test]
    fn conditions_compare_and_combine() {
        let (params, outputs) = maps();
        let cx = context(&params, &outputs);
        let holds_text = |text: &str| holds(&Condition::parse(text).unwrap(), cx);
        assert!(holds_text("${{ params.version == '1.2.3' && !params.dry }}").unwrap());
        assert!(holds_text("${{ steps.verify.outputs.count == 2.0 }}").unwrap());
        assert!(!holds_text("${{ params.dry || steps.verify.outputs.tag != 'v1.2.3' }}").unwrap());
        let error = holds_text("${{ params.version }}").unwrap_err();
        assert!(matches!(error, EvalError::NotABoolean { .. }), "{error}");
    }

    #[test]
    fn missing_references_are_errors_that_name_them() {
        let (params, outputs) = maps();
        let cx = context(&params, &outputs);
        let render_text = |text: &str| render(&Template::parse(text).unwrap(), cx);
        assert_eq!(
            render_text("${{ params.nope }}").unwrap_err(),
            EvalError::UnknownParam("nope".into())
        );
        assert_eq!(
            render_text("${{ steps.deploy.outputs.x }}").unwrap_err(),
            EvalError::NoOutput("deploy".into())
        );
        let error = render_text("x ${{ steps.verify.outputs.files[5] }}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`steps.verify.outputs.files[5]` does not exist in the output of step `verify`"
        );
    }
}
