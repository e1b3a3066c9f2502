//! Byte sizes: `512KiB`, `32MiB`, `1GiB`, or a plain number of bytes.

use std::fmt;
use std::str::FromStr;

use super::InvalidValue;
use crate::decode::{Cx, Decode, Path};
use crate::tree::{Kind, Node};

const UNITS: [(&str, u64); 5] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// A number of bytes, written with a binary unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`) or as
/// a plain integer. Prints in the largest unit that divides it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn from_bytes(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let trimmed = text.trim();
        let digits_end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(digits_end);
        let unit = unit.trim_start();
        let invalid = || {
            InvalidValue::new(format!("`{text}` is not a valid size")).with_hint(
                "write a whole number with a binary unit, e.g. `512KiB`, `32MiB`, `1GiB`",
            )
        };
        if number.is_empty() {
            return Err(invalid());
        }
        let value: u64 = number.parse().map_err(|_| invalid())?;
        let multiplier = if unit.is_empty() {
            1
        } else if let Some((_, multiplier)) = UNITS.iter().find(|(name, _)| *name == unit) {
            *multiplier
        } else {
            let binary = match unit.to_ascii_lowercase().as_str() {
                "k" | "kb" | "kib" => Some("KiB"),
                "m" | "mb" | "mib" => Some("MiB"),
                "g" | "gb" | "gib" => Some("GiB"),
                "t" | "tb" | "tib" => Some("TiB"),
                _ => None,
            };
            return Err(match binary {
                Some(binary) => InvalidValue::new(format!(
                    "`{text}` is not a valid size: `{unit}` is not a unit relo reads"
                ))
                .with_hint(format!(
                    "sizes use binary units: did you mean `{number}{binary}`?"
                )),
                None => invalid(),
            });
        };
        value
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| InvalidValue::new(format!("`{text}` is too large")))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, multiplier) = UNITS
            .iter()
            .find(|(_, multiplier)| self.0 != 0 && self.0.is_multiple_of(*multiplier))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / multiplier)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Bytes(bytes) => Ok(ByteSize(bytes)),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A size: a whole number of bytes, or a number with a binary unit (`B`, `KiB`, `MiB`, `GiB`, `TiB`), e.g. `32MiB`.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+ *(B|KiB|MiB|GiB|TiB)?$" }
            ]
        })
    }
}

impl Decode for ByteSize {
    fn decode(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Self> {
        match &node.kind {
            Kind::Int(value) => match u64::try_from(*value) {
                Ok(bytes) => Some(ByteSize(bytes)),
                Err(_) => {
                    cx.error(
                        crate::diagnostic::Code::OutOfRange,
                        node.span.clone(),
                        path,
                        format!("{value} is not a valid size"),
                    );
                    None
                }
            },
            Kind::Str(_) => cx.parsed(node, path),
            _ => {
                cx.wrong_type(node, path, "a size such as `32MiB`");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_units() {
        let bytes = |text: &str| text.parse::<ByteSize>().map(ByteSize::bytes);
        assert_eq!(bytes("32MiB"), Ok(32 << 20));
        assert_eq!(bytes("1GiB"), Ok(1 << 30));
        assert_eq!(bytes("512KiB"), Ok(512 << 10));
        assert_eq!(bytes("100"), Ok(100));
        assert_eq!(bytes("100B"), Ok(100));
        assert_eq!(bytes("32 MiB"), Ok(32 << 20));
        assert!(bytes("1.5GiB").is_err());
        assert!(bytes("MiB").is_err());
        assert!(bytes("-1MiB").is_err());
        assert!(bytes("99999999999999TiB").is_err());
        let decimal = "32MB".parse::<ByteSize>().unwrap_err();
        assert_eq!(
            decimal.hint(),
            Some("sizes use binary units: did you mean `32MiB`?")
        );
    }

    #[test]
    fn prints_in_the_largest_exact_unit() {
        assert_eq!(ByteSize::from_bytes(32 << 20).to_string(), "32MiB");
        assert_eq!(ByteSize::from_bytes(1536).to_string(), "1536B");
        assert_eq!(ByteSize::from_bytes(0).to_string(), "0B");
        assert_eq!(ByteSize::from_bytes(1 << 30).to_string(), "1GiB");
    }
}
