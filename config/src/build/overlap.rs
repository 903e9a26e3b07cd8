//! Overlap detection: address intervals (sort and sweep) and label-selector lists.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::ipset::Family;

/// One address interval with the position it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// Address family.
    pub family: Family,
    /// First address, as a `u128` key.
    pub start: u128,
    /// Last address (inclusive), as a `u128` key.
    pub end: u128,
    /// Index of the owning object.
    pub owner: usize,
    /// Index of the entry inside the owner.
    pub entry: usize,
}

/// An overlap between two spans: `first` started earlier (or at the same address), and
/// `[start, end]` is the common part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overlap {
    /// The span that was seen first in address order.
    pub first: Span,
    /// The span that overlaps it.
    pub second: Span,
    /// First common address.
    pub start: u128,
    /// Last common address.
    pub end: u128,
}

/// Finds overlapping spans in O(n log n): sort by (family, start) and sweep, keeping the
/// span reaching furthest so far. Each span that overlaps an earlier one is reported once,
/// against the earlier span reaching furthest.
pub(crate) fn find_overlaps(mut spans: Vec<Span>) -> Vec<Overlap> {
    spans.sort_by_key(|s| (s.family, s.start, s.end, s.owner, s.entry));
    let mut out = Vec::new();
    let mut reach: Option<Span> = None;
    for span in spans {
        match reach {
            Some(r) if r.family == span.family && span.start <= r.end => {
                out.push(Overlap {
                    first: r,
                    second: span,
                    start: span.start,
                    end: span.end.min(r.end),
                });
                if span.end > r.end {
                    reach = Some(span);
                }
            }
            _ => reach = Some(span),
        }
    }
    out
}

/// Whether two selector lists (empty = select everything, otherwise any-of) can select a
/// common object, judged from the selectors alone: they may unless, for every pair of
/// selectors, some label key gets contradictory requirements. Unknown operators count as
/// satisfiable (they are reported as invalid elsewhere).
pub(crate) fn selector_lists_may_overlap(a: &[LabelSelector], b: &[LabelSelector]) -> bool {
    let everything = [LabelSelector::default()];
    let a = if a.is_empty() { &everything[..] } else { a };
    let b = if b.is_empty() { &everything[..] } else { b };
    a.iter()
        .any(|x| b.iter().any(|y| conjunction_satisfiable(&[x, y])))
}

#[derive(Default)]
struct KeyConstraint {
    one_of: Option<BTreeSet<String>>,
    none_of: BTreeSet<String>,
    exists: bool,
    absent: bool,
}

fn conjunction_satisfiable(selectors: &[&LabelSelector]) -> bool {
    let mut keys: BTreeMap<&str, KeyConstraint> = BTreeMap::new();
    fn restrict(c: &mut KeyConstraint, values: BTreeSet<String>) {
        c.one_of = Some(match c.one_of.take() {
            Some(prev) => prev.intersection(&values).cloned().collect(),
            None => values,
        });
    }
    for sel in selectors {
        for (k, v) in sel.match_labels.iter().flatten() {
            restrict(
                keys.entry(k.as_str()).or_default(),
                BTreeSet::from([v.clone()]),
            );
        }
        for req in sel.match_expressions.iter().flatten() {
            let c = keys.entry(req.key.as_str()).or_default();
            let values: BTreeSet<String> = req.values.iter().flatten().cloned().collect();
            match req.operator.as_str() {
                "In" => restrict(c, values),
                "NotIn" => c.none_of.extend(values),
                "Exists" => c.exists = true,
                "DoesNotExist" => c.absent = true,
                _ => {}
            }
        }
    }
    keys.values().all(|c| {
        let present_required = c.exists || c.one_of.is_some();
        if c.absent && present_required {
            return false;
        }
        match &c.one_of {
            Some(values) => values.iter().any(|v| !c.none_of.contains(v)),
            None => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(
                pairs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            match_expressions: None,
        }
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.to_owned(),
                operator: op.to_owned(),
                values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
            }]),
        }
    }

    #[test]
    fn selector_overlap_table() {
        let cases: Vec<(Vec<LabelSelector>, Vec<LabelSelector>, bool)> = vec![
            (vec![], vec![], true),
            (vec![], vec![labels(&[("a", "1")])], true),
            (
                vec![labels(&[("a", "1")])],
                vec![labels(&[("a", "2")])],
                false,
            ),
            (
                vec![labels(&[("a", "1")])],
                vec![labels(&[("b", "2")])],
                true,
            ),
            (
                vec![labels(&[("a", "1")]), labels(&[("a", "3")])],
                vec![labels(&[("a", "2")]), labels(&[("a", "3")])],
                true,
            ),
            (
                vec![expr("a", "In", &["1", "2"])],
                vec![expr("a", "NotIn", &["1", "2"])],
                false,
            ),
            (
                vec![expr("a", "In", &["1", "2"])],
                vec![expr("a", "NotIn", &["1"])],
                true,
            ),
            (
                vec![expr("a", "Exists", &[])],
                vec![expr("a", "DoesNotExist", &[])],
                false,
            ),
            (
                vec![labels(&[("a", "1")])],
                vec![expr("a", "DoesNotExist", &[])],
                false,
            ),
            (
                vec![expr("a", "NotIn", &["1"])],
                vec![expr("a", "DoesNotExist", &[])],
                true,
            ),
        ];
        for (i, (a, b, want)) in cases.iter().enumerate() {
            assert_eq!(selector_lists_may_overlap(a, b), *want, "case {i}");
            assert_eq!(selector_lists_may_overlap(b, a), *want, "case {i} swapped");
        }
    }

    #[test]
    fn sweep_finds_overlaps_once() {
        let span = |start, end, owner| Span {
            family: Family::V4,
            start,
            end,
            owner,
            entry: 0,
        };
        let got = find_overlaps(vec![
            span(10, 20, 0),
            span(30, 40, 1),
            span(15, 35, 2),
            span(41, 50, 3),
            span(50, 50, 4),
        ]);
        let pairs: Vec<(usize, usize, u128, u128)> = got
            .iter()
            .map(|o| (o.first.owner, o.second.owner, o.start, o.end))
            .collect();
        assert_eq!(pairs, vec![(0, 2, 15, 20), (2, 1, 30, 35), (3, 4, 50, 50)]);
        // Different families never overlap.
        let mut v6 = span(10, 20, 9);
        v6.family = Family::V6;
        assert!(find_overlaps(vec![span(10, 20, 0), v6]).is_empty());
    }
}
