//! `${{ … }}` expressions in workflow strings and step conditions.
//!
//! The language is small on purpose: references to parameters (`params.NAME`) and to
//! upstream steps' outputs (`steps.ID.outputs.a.b[0]`), string, number, boolean and null
//! literals, `==`, `!=`, `!`, `&&`, `||` and parentheses. This module parses and
//! checks; the orchestrator evaluates.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::diagnostic::Code;
use crate::values::{InvalidValue, string_value};

/// Parentheses and `!` nest at most this deep inside one expression.
const MAX_EXPRESSION_DEPTH: usize = 32;

/// A string with `${{ … }}` expressions in it, e.g. `"v${{ params.version }}"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    text: String,
    parts: Vec<TemplatePart>,
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq)]
pub enum TemplatePart {
    /// Text copied as it is.
    Text(String),
    /// An expression whose value is put in its place. When a template is nothing but one
    /// expression, the value keeps its JSON type.
    Expression(Expression),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expression {
    /// A literal value.
    Literal(Literal),
    /// A reference, and its byte range in the text that holds it.
    Reference {
        /// What it refers to.
        reference: Reference,
        /// Where it is in the template or condition text.
        at: Range<usize>,
    },
    /// `!operand`
    Not(Box<Expression>),
    /// `left == right`
    Equal(Box<Expression>, Box<Expression>),
    /// `left != right`
    NotEqual(Box<Expression>, Box<Expression>),
    /// `left && right`
    And(Box<Expression>, Box<Expression>),
    /// `left || right`
    Or(Box<Expression>, Box<Expression>),
}

/// A literal in an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number such as `3` or `-1.5`.
    Number(f64),
    /// A string in single quotes (`''` is a quote inside it).
    String(String),
}

/// What a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `params.NAME`
    Param(String),
    /// `steps.ID.outputs` followed by a path into the step's output JSON.
    StepOutput {
        /// The step id.
        step: String,
        /// Fields and indices below `outputs`.
        path: Vec<Segment>,
    },
}

/// One step of a path into JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.name`
    Field(String),
    /// `[3]`
    Index(usize),
}

/// Why an expression does not parse, and where (a byte range in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExpressionError {
    pub message: String,
    pub at: Range<usize>,
    pub too_deep: bool,
}

impl Template {
    /// Parses a string; text without `${{` is a template of one text part.
    pub fn parse(text: &str) -> Result<Template, InvalidValue> {
        Template::parse_located(text).map_err(|error| to_invalid(text, &error))
    }

    pub(crate) fn parse_located(text: &str) -> Result<Template, ExpressionError> {
        let mut parts = Vec::new();
        let mut rest_start = 0;
        while let Some(found) = text[rest_start..].find("${{") {
            let open = rest_start + found;
            if open > rest_start {
                parts.push(TemplatePart::Text(text[rest_start..open].to_owned()));
            }
            let mut parser = ExprParser::new(text, open + 3);
            let expression = parser.expression(0)?;
            parser.skip_space();
            if !parser.eat("}}") {
                return Err(parser.error("expected `}}` to close `${{`"));
            }
            parts.push(TemplatePart::Expression(expression));
            rest_start = parser.at;
        }
        if rest_start < text.len() {
            parts.push(TemplatePart::Text(text[rest_start..].to_owned()));
        }
        Ok(Template {
            text: text.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its parts, in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// Whether it holds any expression.
    pub fn has_expressions(&self) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, TemplatePart::Expression(_)))
    }

    /// Every reference in it, with its byte range in the text.
    pub fn references(&self) -> Vec<(&Reference, Range<usize>)> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let TemplatePart::Expression(expression) = part {
                expression.collect_references(&mut out);
            }
        }
        out
    }
}

impl FromStr for Template {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        Template::parse(text)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_value!(Template, "A string that may hold `${{ … }}` expressions.");

/// A step condition (`if:`): one expression, written bare or as `${{ … }}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    text: String,
    expression: Expression,
}

impl Condition {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Condition, InvalidValue> {
        Condition::parse_located(text).map_err(|error| to_invalid(text, &error))
    }

    pub(crate) fn parse_located(text: &str) -> Result<Condition, ExpressionError> {
        let trimmed_start = text.len() - text.trim_start().len();
        let wrapped = text.trim().starts_with("${{");
        let mut parser = ExprParser::new(text, trimmed_start + if wrapped { 3 } else { 0 });
        let expression = parser.expression(0)?;
        parser.skip_space();
        if wrapped && !parser.eat("}}") {
            return Err(parser.error("expected `}}` to close `${{`"));
        }
        parser.skip_space();
        if parser.at < text.len() {
            return Err(parser.error("unexpected text after the condition"));
        }
        Ok(Condition {
            text: text.to_owned(),
            expression,
        })
    }

    /// The condition as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed expression.
    pub fn expression(&self) -> &Expression {
        &self.expression
    }

    /// Every reference in it, with its byte range in the text.
    pub fn references(&self) -> Vec<(&Reference, Range<usize>)> {
        let mut out = Vec::new();
        self.expression.collect_references(&mut out);
        out
    }
}

impl FromStr for Condition {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        Condition::parse(text)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_value!(
    Condition,
    "A condition: an expression, bare or as `${{ … }}`, e.g. `params.dry_run == false`."
);

impl Expression {
    fn collect_references<'e>(&'e self, out: &mut Vec<(&'e Reference, Range<usize>)>) {
        match self {
            Expression::Literal(_) => {}
            Expression::Reference { reference, at } => out.push((reference, at.clone())),
            Expression::Not(inner) => inner.collect_references(out),
            Expression::Equal(left, right)
            | Expression::NotEqual(left, right)
            | Expression::And(left, right)
            | Expression::Or(left, right) => {
                left.collect_references(out);
                right.collect_references(out);
            }
        }
    }
}

fn to_invalid(text: &str, error: &ExpressionError) -> InvalidValue {
    let code = if error.too_deep {
        Code::TooDeep
    } else {
        Code::BadExpression
    };
    InvalidValue::new(format!("bad expression in `{text}`: {}", error.message)).with_code(code)
}

struct ExprParser<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> ExprParser<'t> {
    fn new(text: &'t str, at: usize) -> Self {
        ExprParser { text, at }
    }

    fn rest(&self) -> &'t str {
        &self.text[self.at..]
    }

    fn error(&self, message: impl Into<String>) -> ExpressionError {
        let len = self.rest().chars().next().map_or(0, char::len_utf8);
        ExpressionError {
            message: message.into(),
            at: self.at..self.at + len,
            too_deep: false,
        }
    }

    fn skip_space(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn expression(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        if depth > MAX_EXPRESSION_DEPTH {
            let mut error = self.error(format!(
                "nested more than {MAX_EXPRESSION_DEPTH} levels deep"
            ));
            error.too_deep = true;
            return Err(error);
        }
        let mut left = self.and(depth)?;
        loop {
            self.skip_space();
            if !self.eat("||") {
                return Ok(left);
            }
            let right = self.and(depth)?;
            left = Expression::Or(Box::new(left), Box::new(right));
        }
    }

    fn and(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        let mut left = self.comparison(depth)?;
        loop {
            self.skip_space();
            if !self.eat("&&") {
                return Ok(left);
            }
            let right = self.comparison(depth)?;
            left = Expression::And(Box::new(left), Box::new(right));
        }
    }

    fn comparison(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        let left = self.unary(depth)?;
        self.skip_space();
        if self.eat("==") {
            let right = self.unary(depth)?;
            Ok(Expression::Equal(Box::new(left), Box::new(right)))
        } else if self.eat("!=") {
            let right = self.unary(depth)?;
            Ok(Expression::NotEqual(Box::new(left), Box::new(right)))
        } else {
            Ok(left)
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        self.skip_space();
        if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.at += 1;
            if depth + 1 > MAX_EXPRESSION_DEPTH {
                let mut error = self.error(format!(
                    "nested more than {MAX_EXPRESSION_DEPTH} levels deep"
                ));
                error.too_deep = true;
                return Err(error);
            }
            let inner = self.unary(depth + 1)?;
            return Ok(Expression::Not(Box::new(inner)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        self.skip_space();
        let rest = self.rest();
        let Some(first) = rest.chars().next() else {
            return Err(self.error("the expression ends too early"));
        };
        if first == '(' {
            self.at += 1;
            let inner = self.expression(depth + 1)?;
            self.skip_space();
            if !self.eat(")") {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        if first == '\'' {
            return self.string();
        }
        if first.is_ascii_digit()
            || (first == '-' && rest[1..].starts_with(|c: char| c.is_ascii_digit()))
        {
            return self.number();
        }
        if first.is_ascii_alphabetic() || first == '_' {
            return self.reference();
        }
        if rest.starts_with("}}") {
            return Err(self.error("expected a value before `}}`"));
        }
        Err(self.error(format!("unexpected `{first}`")))
    }

    fn string(&mut self) -> Result<Expression, ExpressionError> {
        let start = self.at;
        self.at += 1;
        let mut value = String::new();
        loop {
            let Some(ch) = self.rest().chars().next() else {
                return Err(ExpressionError {
                    message: "a string is not closed with `'`".into(),
                    at: start..start + 1,
                    too_deep: false,
                });
            };
            self.at += ch.len_utf8();
            if ch == '\'' {
                if self.eat("'") {
                    value.push('\'');
                } else {
                    return Ok(Expression::Literal(Literal::String(value)));
                }
            } else {
                value.push(ch);
            }
        }
    }

    fn number(&mut self) -> Result<Expression, ExpressionError> {
        let start = self.at;
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && *c == '-')))
            .map_or(rest.len(), |(i, _)| i);
        let text = &rest[..len];
        self.at += len;
        text.parse::<f64>()
            .map(|n| Expression::Literal(Literal::Number(n)))
            .map_err(|_| ExpressionError {
                message: format!("`{text}` is not a number"),
                at: start..start + len,
                too_deep: false,
            })
    }

    fn identifier(&mut self) -> Option<(&'t str, Range<usize>)> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return None,
        }
        let len = chars
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
            .map_or(rest.len(), |(i, _)| i);
        let start = self.at;
        self.at += len;
        Some((&rest[..len], start..start + len))
    }

    fn reference(&mut self) -> Result<Expression, ExpressionError> {
        let start = self.at;
        let Some((root, root_at)) = self.identifier() else {
            return Err(self.error("expected a name"));
        };
        match root {
            "true" => return Ok(Expression::Literal(Literal::Bool(true))),
            "false" => return Ok(Expression::Literal(Literal::Bool(false))),
            "null" => return Ok(Expression::Literal(Literal::Null)),
            _ => {}
        }
        let mut segments = Vec::new();
        loop {
            if self.eat(".") {
                let Some((name, _)) = self.identifier() else {
                    return Err(self.error("expected a name after `.`"));
                };
                segments.push(Segment::Field(name.to_owned()));
            } else if self.eat("[") {
                let rest = self.rest();
                let len = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let index = rest[..len]
                    .parse::<usize>()
                    .map_err(|_| self.error("expected an index"))?;
                self.at += len;
                if !self.eat("]") {
                    return Err(self.error("expected `]`"));
                }
                segments.push(Segment::Index(index));
            } else {
                break;
            }
        }
        let at = start..self.at;
        let invalid = |message: String| ExpressionError {
            message,
            at: at.clone(),
            too_deep: false,
        };
        let reference = match root {
            "params" => match segments.as_slice() {
                [Segment::Field(name)] => Reference::Param(name.clone()),
                [] => return Err(invalid("`params` needs a name: `params.NAME`".into())),
                _ => {
                    return Err(invalid(
                        "a parameter has no fields: write `params.NAME`".into(),
                    ));
                }
            },
            "steps" => match segments.as_slice() {
                [Segment::Field(step), Segment::Field(outputs), rest @ ..]
                    if outputs == "outputs" =>
                {
                    Reference::StepOutput {
                        step: step.clone(),
                        path: rest.to_vec(),
                    }
                }
                _ => {
                    return Err(invalid(
                        "a step is read as `steps.ID.outputs` (and a path below it)".into(),
                    ));
                }
            },
            other => {
                return Err(ExpressionError {
                    message: format!(
                        "unknown name `{other}`: expressions read `params.NAME` and `steps.ID.outputs…`"
                    ),
                    at: root_at,
                    too_deep: false,
                });
            }
        };
        Ok(Expression::Reference { reference, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Reference> {
        Template::parse(text)
            .unwrap()
            .references()
            .into_iter()
            .map(|(r, _)| r.clone())
            .collect()
    }

    #[test]
    fn templates_find_references() {
        assert_eq!(refs("no expressions"), vec![]);
        assert_eq!(
            refs("v${{ params.version }}"),
            vec![Reference::Param("version".into())]
        );
        assert_eq!(
            refs("${{ steps.verify-pr.outputs.files[0].name }}"),
            vec![Reference::StepOutput {
                step: "verify-pr".into(),
                path: vec![
                    Segment::Field("files".into()),
                    Segment::Index(0),
                    Segment::Field("name".into())
                ],
            }]
        );
        let template = Template::parse("a ${{ params.x }} b ${{ 'lit}}eral' }} c").unwrap();
        assert_eq!(template.parts().len(), 5);
        let (_, at) = &template.references()[0];
        assert_eq!(&template.as_str()[at.clone()], "params.x");
    }

    #[test]
    fn conditions() {
        let condition =
            Condition::parse("${{ params.dry_run == false && !(steps.a.outputs.ok != 'no') }}")
                .unwrap();
        assert_eq!(condition.references().len(), 2);
        assert!(Condition::parse("params.env == 'prod' || params.force").is_ok());
        assert!(Condition::parse("true").is_ok());
    }

    #[test]
    fn reports_bad_expressions() {
        for bad in [
            "${{ params.x",
            "${{ }}",
            "${{ env.HOME }}",
            "${{ params }}",
            "${{ params.x.y }}",
            "${{ steps.a }}",
            "${{ steps.a.result }}",
            "${{ 'open }}",
            "${{ params.x == }}",
            "${{ params.x[ }}",
            "${{ (params.x }}",
            "${{ params.x params.y }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let deep = format!("${{{{ {}true{} }}}}", "(".repeat(100), ")".repeat(100));
        assert_eq!(Template::parse(&deep).unwrap_err().code(), Code::TooDeep);
        let nots = format!("{}true", "!".repeat(100));
        assert_eq!(Condition::parse(&nots).unwrap_err().code(), Code::TooDeep);
    }
}
