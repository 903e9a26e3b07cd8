//! Kubernetes `metav1.Duration` strings (Go `time.ParseDuration` syntax) to [`Duration`].

use std::time::Duration;

/// Parses a Go duration such as `90s`, `1m30s`, `1.5s`, `500ms` or `0`.
///
/// Accepted units are `ns`, `us` (also `µs`/`μs`), `ms`, `s`, `m` and `h`; a number may
/// have a fractional part. Negative durations are rejected (no ferrolb field accepts
/// one), as are values beyond `u64::MAX` nanoseconds.
pub fn parse_duration(input: &str) -> Result<Duration, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty duration; expected e.g. 90s, 1m30s or 500ms".to_owned());
    }
    let (negative, rest) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(format!(
            "`{input}` is not a duration; expected e.g. 90s, 1m30s or 500ms"
        ));
    }
    let bad = || format!("`{input}` is not a duration; expected e.g. 90s, 1m30s or 500ms");
    let mut total: u128 = 0;
    let mut rest = rest;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(bad());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("`{input}` lacks a unit (ns, us, ms, s, m or h)")),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{input}`; use ns, us, ms, s, m or h"
                ));
            }
        };
        let too_long = || format!("`{input}` is too long a duration");
        // At most 39 digits fit a u128; anything longer is out of range anyway.
        let int_value: u128 = if int_part.is_empty() {
            0
        } else if int_part.len() > 30 {
            return Err(too_long());
        } else {
            int_part.parse().map_err(|_| bad())?
        };
        let mut value = int_value.checked_mul(unit_ns).ok_or_else(too_long)?;
        // Fractional part, truncated to whole nanoseconds like Go does.
        let mut scale = unit_ns;
        for digit in frac_part.bytes().take(30) {
            scale /= 10;
            if scale == 0 {
                break;
            }
            value += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(value).ok_or_else(too_long)?;
        if total > u128::from(u64::MAX) {
            return Err(too_long());
        }
    }
    if negative && total != 0 {
        return Err(format!("`{input}` is negative"));
    }
    // total <= u64::MAX was checked above.
    Ok(Duration::from_nanos(
        u64::try_from(total).unwrap_or(u64::MAX),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("90s", Duration::from_secs(90)),
            ("1m30s", Duration::from_secs(90)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("500ms", Duration::from_millis(500)),
            ("10us", Duration::from_micros(10)),
            ("10\u{b5}s", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("+3s", Duration::from_secs(3)),
            ("1h2m3s4ms", Duration::from_millis(3_723_004)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_duration(input).as_ref(), Ok(want), "{input}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("90", "lacks a unit"),
            ("s", "not a duration"),
            ("1d", "unknown unit `d`"),
            ("-5s", "negative"),
            ("1.s.", "not a duration"),
            ("99999999999999999999h", "too long"),
            ("1234567890123456789012345678901234567890s", "too long"),
            ("x", "not a duration"),
        ];
        for (input, want) in bad {
            let err = parse_duration(input).expect_err(input);
            assert!(err.contains(want), "{input}: {err}");
        }
    }
}
