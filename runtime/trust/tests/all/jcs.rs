use relo_trust::{canonical_json, to_canonical_json};
use serde_json::{Value, json};

fn canonical(json_text: &str) -> String {
    let value: Value = serde_json::from_str(json_text).expect("test JSON parses");
    let bytes = canonical_json(&value).expect("canonicalizable");
    String::from_utf8(bytes).expect("canonical JSON is UTF-8")
}

#[test]
fn rfc8785_section_3_2_2_example() {
    let input = r#"{
        "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
        "literals": [null, true, false]
    }"#;
    assert_eq!(
        canonical(input),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn rfc8785_section_3_2_3_sorting_by_utf16_code_units() {
    let input = r#"{
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\ud83d\ude00": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let expected = concat!(
        r#"{"\r":"Carriage Return","1":"One","#,
        "\"\u{80}\":\"Control\",",
        "\"\u{f6}\":\"Latin Small Letter O With Diaeresis\",",
        "\"\u{20ac}\":\"Euro Sign\",",
        "\"\u{1f600}\":\"Emoji: Grinning Face\",",
        "\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}",
    );
    assert_eq!(canonical(input), expected);
    // The emoji (a surrogate pair, 0xD83D...) sorts before U+FB33, though its code point
    // is larger: the order is by UTF-16 code units, not by code points or UTF-8 bytes.
    assert!(canonical(r#"{"\ufb33":1,"\ud83d\ude00":2}"#).starts_with("{\"\u{1f600}\""));
}

#[test]
fn nested_values_have_no_whitespace_and_sorted_members() {
    assert_eq!(
        canonical(r#" { "b" : [ 1 , { "d" : 1 , "c" : [ ] } ] , "a" : { } } "#),
        r#"{"a":{},"b":[1,{"c":[],"d":1}]}"#
    );
    assert_eq!(canonical("-0.0"), "0");
    assert_eq!(canonical("1.0"), "1");
    assert_eq!(canonical("-12"), "-12");
    assert_eq!(canonical(r#""</script>""#), r#""</script>""#);
}

#[test]
fn ecmascript_number_formatting_matches_node() {
    let vectors = include_str!("data/ecmascript-numbers.txt");
    let mut checked = 0;
    for line in vectors.lines().filter(|l| !l.starts_with('#')) {
        let (bits, expected) = line.split_once(' ').unwrap();
        let value = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        let number = Value::from(value);
        let actual = String::from_utf8(canonical_json(&number).unwrap()).unwrap();
        assert_eq!(actual, expected, "bits {bits}");
        // Canonical text read back is the same double (needs serde_json's float_roundtrip).
        let reread: f64 = serde_json::from_str(expected).unwrap();
        assert_eq!(reread.to_bits(), value.to_bits(), "{expected}");
        checked += 1;
    }
    assert!(checked > 1500, "{checked}");
}

#[test]
fn serializable_values_canonicalize_through_serde() {
    #[derive(serde::Serialize)]
    struct Entry {
        seq: u64,
        kind: &'static str,
        body: Value,
    }
    let entry = Entry {
        seq: 7,
        kind: "run.started",
        body: json!({"z": 0.5, "a": null}),
    };
    assert_eq!(
        to_canonical_json(&entry).unwrap(),
        br#"{"body":{"a":null,"z":0.5},"kind":"run.started","seq":7}"#
    );
    let error = to_canonical_json(&json!({"ns": 1_700_000_000_000_000_000_u64})).unwrap_err();
    assert_eq!(error.code(), "not-canonicalizable");
    assert!(error.to_string().contains("string"), "{error}");
}
