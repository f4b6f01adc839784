//! Human durations for the CLI: `90s`, `15m`, `1h`, `7d`, or combinations like `1h30m`.

/// Parses a duration into seconds. A bare number means seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration; use e.g. 90s, 15m, 1h or 7d".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return positive(n);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(format!("unknown unit `{c}` in `{s}`; use s, m, h or d")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("missing number before `{c}` in `{s}`"))?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{s}` is too large"))?;
    }
    if !num.is_empty() {
        return Err(format!("trailing number without unit in `{s}`"));
    }
    positive(total)
}

/// Zero is refused however it is written (`0`, `0s`, `0h0m`).
fn positive(seconds: u64) -> Result<u64, String> {
    if seconds == 0 {
        return Err("duration must be greater than zero".into());
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        for bad in ["", "h", "1x", "1h30", "0s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_is_refused_with_or_without_a_unit() {
        let unit = parse_duration("0s");
        assert_eq!(unit, Err("duration must be greater than zero".into()));
        for zero in ["0", "00", " 0 ", "0h0m"] {
            assert_eq!(parse_duration(zero), unit, "{zero}");
        }
        assert_eq!(parse_duration("1"), Ok(1));
    }
}
