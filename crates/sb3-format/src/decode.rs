//! What decoding pickled values (numpy arrays, spaces, statistics, kwargs) shares: the budget
//! of copied elements, and why a value is refused.

use std::fmt;

/// Why a pickled value is not what SB3 (or numpy, or gym) writes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// Decoding would copy more elements than the budget (`max_values`) allows.
    OverBudget,
    /// A kind of value this crate does not decode (an object array, a `float128`).
    Unsupported(String),
    /// Not what the writer writes: a part missing, of the wrong type or size.
    Invalid(String),
    /// A problem inside a part (`Box `low``, `Dict["camera"]`).
    In {
        /// The part.
        part: String,
        /// What is wrong with it.
        inner: Box<Malformed>,
    },
}

impl Malformed {
    /// `self`, said to be inside `part`.
    pub(crate) fn inside(self, part: impl Into<String>) -> Malformed {
        Malformed::In {
            part: part.into(),
            inner: Box::new(self),
        }
    }
}

/// `Err(Malformed::Invalid(reason))`.
pub(crate) fn invalid<T>(reason: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed::Invalid(reason.into()))
}

impl From<&str> for Malformed {
    fn from(reason: &str) -> Self {
        Malformed::Invalid(reason.to_owned())
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::OverBudget => {
                f.write_str("the pickle refers to more array elements than the limits allow (max_values)")
            }
            Malformed::Unsupported(what) | Malformed::Invalid(what) => f.write_str(what),
            Malformed::In { part, inner } => write!(f, "{part}: {inner}"),
        }
    }
}

/// A bound on the elements decoding may copy, so that a pickle referring to one large array
/// many times (through the memo) cannot make decoding copy it again and again.
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
}

impl Budget {
    /// A budget of `elements` elements (or spaces, or 64-byte runs of text).
    pub(crate) fn new(elements: u64) -> Budget {
        Budget { left: elements }
    }

    /// Takes `n` units, or says that the budget is spent.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), Malformed> {
        let n = n as u64;
        if n > self.left {
            self.left = 0;
            return Err(Malformed::OverBudget);
        }
        self.left -= n;
        Ok(())
    }

    /// Charges a copy of `len` bytes of text (one unit per 64 bytes, at least one).
    pub(crate) fn charge_text(&mut self, len: usize) -> Result<(), Malformed> {
        self.charge(1 + len / 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_charged() {
        let mut budget = Budget::new(3);
        assert!(budget.charge(2).is_ok());
        assert_eq!(budget.charge(2), Err(Malformed::OverBudget));
        assert!(budget.charge(1).is_err(), "spent");
        let nested = Malformed::from("not a tuple").inside("Box `low`").inside("Dict[\"a\"]");
        assert_eq!(nested.to_string(), "Dict[\"a\"]: Box `low`: not a tuple");
    }
}
