//! RFC 8785 JSON Canonicalization Scheme (JCS).

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Number, Value};

use crate::TrustError;

/// The largest integer magnitude an IEEE 754 double holds exactly (2^53 - 1), the limit
/// of I-JSON (RFC 7493) that RFC 8785 builds on.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The RFC 8785 canonical form of a JSON value: object members sorted by the UTF-16
/// code units of their names, no whitespace, numbers as ECMAScript prints doubles,
/// strings with only the escapes JSON requires.
///
/// Everything relo hashes or signs goes through this function, so the same value gives
/// the same bytes in every process and in other languages' JCS implementations.
///
/// Refuses ([`TrustError::NotCanonicalizable`]) integers beyond ±(2^53 - 1): JCS reads
/// every number as a double, so two different large integers could canonicalize to the
/// same bytes. Put such values (nanosecond timestamps, 64-bit ids) in strings.
///
/// ```
/// let value = serde_json::json!({"b": [1.0, 1e21, 0.000001], "a": "\u{20ac}\n"});
/// assert_eq!(
///     relo_trust::canonical_json(&value).unwrap(),
///     r#"{"a":"€\n","b":[1,1e+21,0.000001]}"#.as_bytes(),
/// );
/// ```
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, TrustError> {
    let mut out = String::new();
    write_value(value, &mut out)?;
    Ok(out.into_bytes())
}

/// [`canonical_json`] of any serializable value (converted with `serde_json::to_value`).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, TrustError> {
    let value = serde_json::to_value(value).map_err(|e| TrustError::NotCanonicalizable {
        reason: e.to_string(),
    })?;
    canonical_json(&value)
}

fn write_value(value: &Value, out: &mut String) -> Result<(), TrustError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(number, out)?,
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_value(item, out)?;
            }
            out.push(']');
        }
        Value::Object(members) => {
            let mut members: Vec<(&String, &Value)> = members.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (index, (name, member)) in members.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_value(member, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_number(number: &Number, out: &mut String) -> Result<(), TrustError> {
    let too_large = || TrustError::NotCanonicalizable {
        reason: format!(
            "the integer {number} is beyond ±(2^53 - 1), which a JSON number cannot carry \
             exactly; encode it as a string"
        ),
    };
    if let Some(unsigned) = number.as_u64() {
        if unsigned > MAX_SAFE_INTEGER {
            return Err(too_large());
        }
        let _ = write!(out, "{unsigned}");
    } else if let Some(signed) = number.as_i64() {
        if signed.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(too_large());
        }
        let _ = write!(out, "{signed}");
    } else if let Some(double) = number.as_f64() {
        write_double(double, out)?;
    } else {
        return Err(TrustError::NotCanonicalizable {
            reason: format!("the number {number} is not a double"),
        });
    }
    Ok(())
}

/// ECMAScript `Number::toString` (ECMA-262, 6.1.6.1.20) for a finite double.
fn write_double(value: f64, out: &mut String) -> Result<(), TrustError> {
    if !value.is_finite() {
        return Err(TrustError::NotCanonicalizable {
            reason: format!("{value} is not a finite number"),
        });
    }
    if value == 0.0 {
        // Both zeros print as "0".
        out.push('0');
        return Ok(());
    }
    if value < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` prints the shortest digit string that reads back as the same double,
    // choosing the closest such string: the `s`, `k` and `n` of the ECMAScript algorithm.
    let scientific = format!("{:e}", value.abs());
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return Err(TrustError::NotCanonicalizable {
            reason: format!("unexpected float formatting {scientific:?}"),
        });
    };
    let exponent: i32 = exponent
        .parse()
        .map_err(|_| TrustError::NotCanonicalizable {
            reason: format!("unexpected float formatting {scientific:?}"),
        })?;
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let digits = break_tie_to_even(digits, exponent, value.abs());
    let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let n = exponent + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        push_zeros(out, n - k);
    } else if 0 < n && n <= 21 {
        let (integer, fraction) = digits.split_at(n.unsigned_abs() as usize);
        out.push_str(integer);
        out.push('.');
        out.push_str(fraction);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        push_zeros(out, -n);
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let exponent = n - 1;
        out.push('e');
        out.push(if exponent < 0 { '-' } else { '+' });
        let _ = write!(out, "{}", exponent.unsigned_abs());
    }
    Ok(())
}

/// ECMAScript picks, of two shortest digit strings equally close to the value, the one
/// ending in an even digit; Rust's shortest formatting rounds such ties up
/// (`1424953923781206.25` prints as `…206.3`, ECMAScript as `…206.2`). A tie means the
/// value's exact decimal expansion has one digit more than `digits` and it is a 5; the
/// exact expansion of a double has at most 767 significant digits.
fn break_tie_to_even(digits: String, exponent: i32, value: f64) -> String {
    let k = digits.len();
    if digits.bytes().last().is_none_or(|d| d % 2 == 0) {
        return digits;
    }
    let exact = format!("{value:.800e}");
    let Some((mantissa, exact_exponent)) = exact.split_once('e') else {
        return digits;
    };
    if exact_exponent.parse() != Ok(exponent) {
        return digits;
    }
    let exact: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    let is_tie = exact.get(k) == Some(&b'5') && exact[k + 1..].iter().all(|b| *b == b'0');
    if !is_tie {
        return digits;
    }
    // The two neighbours are the truncation and the truncation plus one unit in the last place.
    let lower = &exact[..k];
    let even = if lower != digits.as_bytes() {
        lower.to_vec()
    } else {
        let mut upper = lower.to_vec();
        let mut at = k;
        loop {
            if at == 0 {
                return digits; // 99…9 + 1 changes the exponent: not a same-length neighbour
            }
            at -= 1;
            if upper[at] == b'9' {
                upper[at] = b'0';
            } else {
                upper[at] += 1;
                break;
            }
        }
        upper
    };
    let Ok(even) = String::from_utf8(even) else {
        return digits;
    };
    // Keep the even neighbour only if it reads back as the same double.
    let reads_back = format!("{}.{}e{exponent}", &even[..1], &even[1..])
        .parse::<f64>()
        .is_ok_and(|parsed| parsed == value);
    if reads_back { even } else { digits }
}

fn push_zeros(out: &mut String, count: i32) {
    for _ in 0..count {
        out.push('0');
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(bits: u64) -> String {
        let mut out = String::new();
        write_double(f64::from_bits(bits), &mut out).unwrap();
        out
    }

    /// RFC 8785, Appendix B: IEEE 754 values and their canonical text.
    #[test]
    fn rfc8785_appendix_b_numbers() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in cases {
            assert_eq!(double(bits), expected, "bits {bits:016x}");
        }
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(write_double(value, &mut String::new()).is_err());
        }
    }

    #[test]
    fn integers_beyond_the_exact_double_range_are_refused() {
        let limit = MAX_SAFE_INTEGER;
        assert_eq!(
            canonical_json(&Value::from(limit)).unwrap(),
            limit.to_string().as_bytes()
        );
        assert_eq!(
            canonical_json(&Value::from(-(limit as i64))).unwrap(),
            format!("-{limit}").as_bytes()
        );
        for value in [
            Value::from(limit + 1),
            Value::from(u64::MAX),
            Value::from(i64::MIN),
        ] {
            let error = canonical_json(&value).unwrap_err();
            assert_eq!(error.code(), "not-canonicalizable");
        }
    }

    #[test]
    fn control_characters_use_the_short_or_lowercase_escapes() {
        let mut out = String::new();
        write_string(
            "\u{0}\u{8}\t\n\u{b}\u{c}\r\u{1f}\"\\/\u{7f}\u{2028}é",
            &mut out,
        );
        assert_eq!(
            out,
            "\"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\\\"\\\\/\u{7f}\u{2028}é\""
        );
    }
}
