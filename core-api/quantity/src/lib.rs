//! Kubernetes resource quantities ("500m", "1.5Gi", "2e3", "128974848") as integers.
//!
//! The grammar is the API server's (`k8s.io/apimachinery/pkg/api/resource`):
//! `[+-]digits[.digits]` followed by a binary suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix
//! (n u m "" k M G T P E) or a decimal exponent (`e3`, `E-2`). Values are rounded up the way
//! the API server's `MilliValue()`/`Value()` round, so a request is never under-counted.

use std::fmt;

/// A parsed quantity: `mantissa * 10^exp10 * 2^exp2`, sign kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp2: u32,
}

/// Why a quantity string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a Kubernetes quantity: {why} (examples: 500m, 0.5, 256Mi, 1G, 2e3)")]
pub struct QuantityError {
    pub input: String,
    pub why: &'static str,
}

impl Quantity {
    /// Parses the Kubernetes quantity syntax.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let err = |why| QuantityError {
            input: input.to_string(),
            why,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        let (negative, rest) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        // The number ends at the first byte that is neither a digit nor the decimal point.
        let num_end = rest
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(err("it has no digits"));
        }
        if frac_part.contains('.') {
            return Err(err("it has two decimal points"));
        }
        let mut mantissa: u128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(b - b'0')))
                .ok_or_else(|| err("it has too many digits"))?;
        }
        let frac_digits = i32::try_from(frac_part.len()).map_err(|_| err("it is too long"))?;
        let (exp10, exp2) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 10),
            "Mi" => (0, 20),
            "Gi" => (0, 30),
            "Ti" => (0, 40),
            "Pi" => (0, 50),
            "Ei" => (0, 60),
            _ if suffix.starts_with(['e', 'E']) => {
                let exp = &suffix[1..];
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("its exponent is not a whole number"));
                }
                let e: i32 = exp.parse().map_err(|_| err("its exponent is too large"))?;
                if e.abs() > 1000 {
                    return Err(err("its exponent is too large"));
                }
                (e, 0)
            }
            _ => return Err(err("its suffix is unknown")),
        };
        Ok(Quantity {
            negative: negative && mantissa != 0,
            mantissa,
            exp10: exp10
                .checked_sub(frac_digits)
                .ok_or_else(|| err("it is too long"))?,
            exp2,
        })
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// `ceil(value * 10^scale)` as a u64, or None when it is negative or does not fit.
    fn scaled_ceil(&self, scale: i32) -> Option<u64> {
        if self.negative {
            return None;
        }
        if self.mantissa == 0 {
            return Some(0);
        }
        let base = self.mantissa.checked_mul(1u128.checked_shl(self.exp2)?)?;
        let e = self.exp10.checked_add(scale)?;
        let v = if e >= 0 {
            base.checked_mul(10u128.checked_pow(u32::try_from(e).ok()?)?)?
        } else {
            match 10u128.checked_pow(e.unsigned_abs()) {
                Some(div) => base.div_ceil(div),
                // The divisor exceeds any u128, so the value is a positive fraction below 1.
                None => 1,
            }
        };
        u64::try_from(v).ok()
    }

    /// The value in thousandths, rounded up (CPU: "1" is 1000 millicores, "1u" is 1).
    pub fn millis(&self) -> Option<u64> {
        self.scaled_ceil(3)
    }

    /// The value in whole units, rounded up (memory in bytes, pod counts).
    pub fn units(&self) -> Option<u64> {
        self.scaled_ceil(0)
    }
}

/// Parses a CPU quantity into millicores.
pub fn cpu_millis(input: &str) -> Result<u64, QuantityError> {
    let q = Quantity::parse(input)?;
    q.millis().ok_or_else(|| QuantityError {
        input: input.to_string(),
        why: if q.is_negative() {
            "it is negative"
        } else {
            "it is too large"
        },
    })
}

/// Parses a memory (or any whole-unit) quantity into bytes.
pub fn bytes(input: &str) -> Result<u64, QuantityError> {
    let q = Quantity::parse(input)?;
    q.units().ok_or_else(|| QuantityError {
        input: input.to_string(),
        why: if q.is_negative() {
            "it is negative"
        } else {
            "it is too large"
        },
    })
}

/// Millicores for people: "500m", "2" (whole CPUs), "1500m".
pub struct Cpu(pub u64);

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) && self.0 > 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// Bytes for people, in the largest binary unit that keeps one decimal: "256Mi", "1.5Gi".
pub struct Mem(pub u64);

impl fmt::Display for Mem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 5] =
            [("Ei", 60), ("Pi", 50), ("Ti", 40), ("Gi", 30), ("Mi", 20)];
        for (name, shift) in UNITS {
            let unit = 1u64 << shift;
            if self.0 >= unit {
                if self.0.is_multiple_of(unit) {
                    return write!(f, "{}{name}", self.0 / unit);
                }
                // One decimal, rounded down so "free" is never overstated.
                let tenths = u128::from(self.0) * 10 / u128::from(unit);
                return write!(f, "{}.{}{name}", tenths / 10, tenths % 10);
            }
        }
        if self.0 >= 1024 && self.0.is_multiple_of(1024) {
            return write!(f, "{}Ki", self.0 / 1024);
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        assert_eq!(cpu_millis("500m"), Ok(500));
        assert_eq!(cpu_millis("1"), Ok(1000));
        assert_eq!(cpu_millis("0.5"), Ok(500));
        assert_eq!(cpu_millis(".5"), Ok(500));
        assert_eq!(cpu_millis("1.5"), Ok(1500));
        assert_eq!(cpu_millis("+2"), Ok(2000));
        assert_eq!(cpu_millis("100u"), Ok(1), "sub-millicore rounds up");
        assert_eq!(cpu_millis("1n"), Ok(1));
        assert_eq!(cpu_millis("0"), Ok(0));
        assert_eq!(cpu_millis("-0"), Ok(0));
        assert_eq!(cpu_millis("2k"), Ok(2_000_000));
        assert_eq!(cpu_millis("1e3"), Ok(1_000_000));
        assert_eq!(cpu_millis("1E-3"), Ok(1));
        assert_eq!(cpu_millis("5e-1"), Ok(500));
        assert_eq!(cpu_millis(" 250m "), Ok(250));
    }

    #[test]
    fn memory_forms() {
        assert_eq!(bytes("256Mi"), Ok(256 << 20));
        assert_eq!(bytes("1Gi"), Ok(1 << 30));
        assert_eq!(bytes("1.5Gi"), Ok(3 << 29));
        assert_eq!(bytes("16Gi"), Ok(16 << 30));
        assert_eq!(bytes("1Ki"), Ok(1024));
        assert_eq!(bytes("1k"), Ok(1000));
        assert_eq!(bytes("1M"), Ok(1_000_000));
        assert_eq!(bytes("1G"), Ok(1_000_000_000));
        assert_eq!(bytes("128974848"), Ok(128_974_848));
        assert_eq!(bytes("129e6"), Ok(129_000_000));
        assert_eq!(bytes("123Mi"), Ok(128_974_848));
        assert_eq!(bytes("100m"), Ok(1), "a fraction of a byte rounds up");
        assert_eq!(bytes("1Ei"), Ok(1 << 60));
        assert_eq!(bytes("8Ei"), Ok(1 << 63));
    }

    #[test]
    fn refusals_never_panic() {
        for bad in [
            "",
            " ",
            "m",
            "Mi",
            ".",
            "-",
            "+",
            "1.2.3",
            "1x",
            "1mi",
            "1KI",
            "1e",
            "1e+",
            "1e1.5",
            "1ee3",
            "--1",
            "1 Gi",
            "٣",
            "1e99999999999",
            "1e1001",
            "\u{0}",
            "1..",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(cpu_millis("-1").is_err());
        assert!(bytes("-1Mi").is_err());
        assert!(bytes("16Ei").is_err(), "does not fit u64");
        assert!(bytes("1e30").is_err());
        assert!(bytes(&"9".repeat(60)).is_err());
        assert_eq!(bytes("1e-1000"), Ok(1));
        assert_eq!(bytes("0e1000"), Ok(0));
        assert_eq!(
            bytes("0.000000000000000000000000000000000000000000001"),
            Ok(1)
        );
    }

    #[test]
    fn display() {
        assert_eq!(Cpu(500).to_string(), "500m");
        assert_eq!(Cpu(2000).to_string(), "2");
        assert_eq!(Cpu(0).to_string(), "0m");
        assert_eq!(Mem(256 << 20).to_string(), "256Mi");
        assert_eq!(Mem(3 << 29).to_string(), "1.5Gi");
        assert_eq!(Mem(1000).to_string(), "1000");
        assert_eq!(Mem(2048).to_string(), "2Ki");
        assert_eq!(Mem(u64::MAX).to_string(), "15.9Ei");
    }
}
