//! Durations as people write them: `250ms`, `10s`, `5m`, `1h`, `1m30s`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{InvalidValue, string_value};
use crate::decode::{Cx, Decode, Path};
use crate::tree::{Kind, Node};

/// Units from largest to smallest, in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// A duration written as whole numbers with units `h`, `m`, `s` and `ms`, largest first,
/// each at most once: `250ms`, `10s`, `5m`, `1h`, `1m30s`. Millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DurationSpec(Duration);

impl DurationSpec {
    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        DurationSpec(Duration::from_millis(millis))
    }

    /// The duration.
    pub const fn duration(self) -> Duration {
        self.0
    }

    fn millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }
}

impl From<DurationSpec> for Duration {
    fn from(value: DurationSpec) -> Self {
        value.0
    }
}

impl FromStr for DurationSpec {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let invalid = || {
            InvalidValue::new(format!("`{text}` is not a valid duration")).with_hint(
                "write whole numbers with units h, m, s or ms, e.g. `250ms`, `10s`, `5m`, `1h30m`",
            )
        };
        if text.is_empty() {
            return Err(invalid());
        }
        let mut rest = text;
        let mut total: u64 = 0;
        let mut smallest_so_far = usize::MAX;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(invalid());
            }
            let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                return Err(match unit {
                    "" => InvalidValue::new(format!("`{text}` has no unit"))
                        .with_hint(format!("add a unit, e.g. `{number}s`")),
                    "sec" | "secs" | "second" | "seconds" => {
                        invalid().with_hint(format!("write `{number}s`"))
                    }
                    "min" | "mins" | "minute" | "minutes" => {
                        invalid().with_hint(format!("write `{number}m`"))
                    }
                    "hr" | "hrs" | "hour" | "hours" => {
                        invalid().with_hint(format!("write `{number}h`"))
                    }
                    _ => invalid(),
                });
            };
            if smallest_so_far != usize::MAX && index <= smallest_so_far {
                return Err(InvalidValue::new(format!(
                    "`{text}` is not a valid duration: units must go from largest to smallest, each once"
                )));
            }
            smallest_so_far = index;
            total = number
                .checked_mul(UNITS[index].1)
                .and_then(|millis| total.checked_add(millis))
                .ok_or_else(|| InvalidValue::new(format!("`{text}` is too long")))?;
        }
        Ok(DurationSpec::from_millis(total))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.millis();
        if left == 0 {
            return f.write_str("0s");
        }
        for (unit, millis) in UNITS {
            let count = left / millis;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                left -= count * millis;
            }
        }
        Ok(())
    }
}

string_value!(
    DurationSpec,
    "A duration: whole numbers with units h, m, s, ms, largest first, e.g. `250ms`, `10s`, `5m`, `1h30m`.",
    pattern = "^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
);

impl Decode for DurationSpec {
    fn decode(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Self> {
        match &node.kind {
            Kind::Int(value) => {
                cx.wrong_type(node, path, "a duration such as `10s`").hint =
                    Some(format!("add a unit, e.g. `{value}s` or `{value}ms`"));
                None
            }
            _ => cx.parsed(node, path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let millis = |text: &str| text.parse::<DurationSpec>().map(DurationSpec::millis);
        assert_eq!(millis("250ms"), Ok(250));
        assert_eq!(millis("10s"), Ok(10_000));
        assert_eq!(millis("5m"), Ok(300_000));
        assert_eq!(millis("1h"), Ok(3_600_000));
        assert_eq!(millis("1m30s"), Ok(90_000));
        assert_eq!(millis("0s"), Ok(0));
        for bad in [
            "", "10", "s", "1.5s", "10 s", "1s1m", "1s1s", "-1s", "10sec", "1d",
        ] {
            assert!(millis(bad).is_err(), "{bad}");
        }
        assert_eq!(
            "10sec".parse::<DurationSpec>().unwrap_err().hint(),
            Some("write `10s`")
        );
    }

    #[test]
    fn prints_canonically() {
        assert_eq!(DurationSpec::from_millis(90_500).to_string(), "1m30s500ms");
        assert_eq!(DurationSpec::from_millis(0).to_string(), "0s");
        assert_eq!("60s".parse::<DurationSpec>().unwrap().to_string(), "1m");
    }
}
