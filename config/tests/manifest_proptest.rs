//! Property tests: arbitrary and mutated manifests never panic `parse_manifests` or
//! `build`, and whatever fails names an object.

use ferrolb_config::build::{BuildOptions, build};
use ferrolb_config::manifest::parse_manifests;
use proptest::prelude::*;

const FULL: &str = include_str!("fixtures/full.yaml");

/// Values that exercise the validation rules when spliced into a manifest.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "1",
    "3",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "99999999999999999999",
    "1.5",
    "true",
    "null",
    "~",
    "[]",
    "{}",
    "\"\"",
    "x",
    "10.0.0.0/33",
    "10.0.0.5/24",
    "1.2.3.4-1.2.3.1",
    "10.0.0.1-fc00::1",
    "::/0",
    "0.0.0.0/0",
    "fc00::/48",
    "large:1:2:3",
    "65535:65535",
    "1:2:3",
    "-",
    ":",
    "0s",
    "90s",
    "1h",
    "1.5s",
    "-3s",
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "&a",
    "*a",
    "!!binary",
    "'",
    "\"",
    "\n",
    "\t",
    "- ",
    ": ",
    "---\n",
    "#",
    "|",
    ">",
    "@",
    "%",
    "\u{feff}",
    "é",
    "\0",
];

fn check(yaml: &str) {
    match parse_manifests(yaml) {
        Ok(res) => {
            if let Err(errs) = build(&res, &BuildOptions::default()) {
                assert!(!errs.is_empty());
                for e in &errs {
                    assert!(!e.kind.is_empty() && !e.reason.is_empty(), "{e:?}");
                    let _ = e.to_string();
                }
            }
            let lenient = BuildOptions {
                allow_missing_references: true,
                ..BuildOptions::default()
            };
            let _ = build(&res, &lenient);
        }
        Err(errs) => {
            assert!(!errs.is_empty());
            for e in &errs {
                assert!(!e.kind.is_empty() && !e.reason.is_empty(), "{e:?}");
            }
        }
    }
}

/// A mutation of the fixture at a char boundary.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, usize),
    ReplaceWord(usize, usize),
}

fn boundary(s: &str, at: usize) -> usize {
    let mut at = at % (s.len() + 1);
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(s: &str, m: &Mutation) -> String {
    match *m {
        Mutation::Delete(at, len) => {
            let a = boundary(s, at);
            let b = boundary(s, a + len % 40);
            format!("{}{}", &s[..a], &s[b.max(a)..])
        }
        Mutation::Insert(at, tok) => {
            let a = boundary(s, at);
            format!("{}{}{}", &s[..a], TOKENS[tok % TOKENS.len()], &s[a..])
        }
        Mutation::ReplaceWord(at, tok) => {
            // Replace the value after the n-th ": " with a token.
            let colons: Vec<usize> = s.match_indices(": ").map(|(i, _)| i + 2).collect();
            if colons.is_empty() {
                return s.to_owned();
            }
            let start = colons[at % colons.len()];
            let end = s[start..].find('\n').map_or(s.len(), |n| start + n);
            format!("{}{}{}", &s[..start], TOKENS[tok % TOKENS.len()], &s[end..])
        }
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Insert(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::ReplaceWord(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        check(&s);
    }

    #[test]
    fn yamlish_text_never_panics(parts in proptest::collection::vec(0usize..TOKENS.len(), 0..60)) {
        let s: String = parts.iter().map(|&i| TOKENS[i]).collect();
        check(&s);
    }

    #[test]
    fn mutated_fixture_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let mut s = FULL.to_owned();
        for m in &muts {
            s = apply(&s, m);
        }
        check(&s);
    }
}
