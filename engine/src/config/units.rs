//! Sizes and durations as nginx writes them: `"16K"`, `"500M"`, `"300ms"`, `"7d"`.
//!
//! Size suffixes are binary (K = KiB = 1024), as nginx's are; `"KB"` is refused
//! rather than guessed, because it means 1000 to some readers and 1024 to others.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// Parses a byte size: plain bytes (`"1024"`, `"0"`) or a number with a binary
/// suffix `K`/`KiB`, `M`/`MiB`, `G`/`GiB` (any case), or `B`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    if number.is_empty() {
        return Err(format!(
            "invalid size {s:?} (expected bytes or a number with K, M or G, e.g. \"16K\")"
        ));
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" | "mb" | "gb" => {
            return Err(format!(
                "ambiguous unit in {s:?}: write {}{} or {}{}iB (binary, 1024-based)",
                number,
                &unit[..1].to_ascii_uppercase(),
                number,
                &unit[..1].to_ascii_uppercase()
            ));
        }
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} (expected K, M, G, KiB, MiB or GiB)"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// Parses a duration: one or more `<number><unit>` groups, units `ms`, `s`,
/// `m`, `h`, `d` (`"300ms"`, `"60s"`, `"1h30m"`); a bare `"0"` is zero.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err(format!(
            "invalid duration {s:?} (expected e.g. \"300ms\", \"60s\", \"5m\", \"2h\" or \"7d\")"
        ));
    }
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration {s:?} (expected e.g. \"300ms\", \"60s\", \"5m\", \"2h\" or \"7d\")"
            ));
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "duration {s:?} needs a unit: ms, s, m, h or d (e.g. \"{number}s\")"
                ));
            }
            _ => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {unit:?} (expected ms, s, m, h or d)"
                ));
            }
        };
        total_ms = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_ms))
            .and_then(|ms| ms.checked_add(total_ms))
            .ok_or_else(|| format!("duration {s:?} is too large"))?;
        rest = tail;
    }
    Ok(Duration::from_millis(total_ms))
}

/// A size in the file: an integer (bytes) or a string for `parse_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub u64);

/// A duration in the file: a string for `parse_duration` (or the integer 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period(pub Duration);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = Size;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a size such as "16K", "500M", "1G" or a number of bytes"#)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map(Size).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PeriodVisitor;

        impl Visitor<'_> for PeriodVisitor {
            type Value = Period;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a duration such as "300ms", "60s", "5m", "2h" or "7d""#)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Period, E> {
                if v == 0 {
                    return Ok(Period(Duration::ZERO));
                }
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}s\" (units: ms, s, m, h, d)"
                )))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Period, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom(format!("duration {v} is too large")))
                    .and_then(|v| self.visit_i64(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Period, E> {
                parse_duration(v).map(Period).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(PeriodVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16K"), Ok(16384));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("16k"), Ok(16384));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size(" 8K "), Ok(8192));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "K",
            "1.5M",
            "-1",
            "16Q",
            "16 K",
            "abc",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be refused");
        }
        let err = parse_size("16KB").unwrap_err();
        assert!(err.contains("16K or 16KiB"), "{err}");
        assert!(
            parse_size("17179869184G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "",
            "s",
            "60",
            "1.5s",
            "5 m",
            "3w",
            "-1s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_duration("60").unwrap_err().contains("\"60s\""));
        assert!(
            parse_duration("3w")
                .unwrap_err()
                .contains("unknown unit \"w\"")
        );
    }
}
