//! `system_info.txt`: the versions a model was saved with, and how they compare.

use std::fmt;

/// The contents of `system_info.txt`, in file order.
///
/// SB3 1.3–1.x writes `Key: value` lines, 2.x writes `- Key: value`; each line is split at
/// its first `:` and both sides trimmed (the `OS` value holds more colons). SB3 never checks
/// these at load time: [`compare`](Self::compare) lists what differs, in the spirit of SB3's
/// `print_system_info`.
///
/// ```
/// use sb3_format::SystemInfo;
/// let info = SystemInfo::parse("- OS: Linux #1 SMP 12:00:00\n- Python: 3.11.7\n- Stable-Baselines3: 2.9.2\n");
/// assert_eq!(info.get("OS"), Some("Linux #1 SMP 12:00:00"));
/// assert_eq!(info.sb3_version(), Some("2.9.2"));
/// assert_eq!(info.python_version(), Some("3.11.7"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemInfo {
    entries: Vec<(String, String)>,
}

/// One key whose value differs between two [`SystemInfo`]s (or is present in one only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoDifference {
    /// The key (`Python`, `PyTorch`, ...).
    pub key: String,
    /// The value in the model's system info.
    pub saved: Option<String>,
    /// The value in the other (current) system info.
    pub current: Option<String>,
}

impl SystemInfo {
    /// Parses the text of `system_info.txt`. Blank lines are skipped; a line without `:`
    /// becomes a key with an empty value; a repeated key keeps its first position and its
    /// last value (as a Python dict would).
    pub fn parse(text: &str) -> SystemInfo {
        let mut info = SystemInfo::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let line = line.strip_prefix("- ").unwrap_or(line);
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            info.insert(key.trim(), value.trim());
        }
        info
    }

    /// Sets `key` to `value`, keeping the key's position if it is already present.
    pub fn insert(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.entries.push((key.to_owned(), value.to_owned())),
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The `(key, value)` pairs in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `Stable-Baselines3`.
    pub fn sb3_version(&self) -> Option<&str> {
        self.get("Stable-Baselines3")
    }

    /// `Python`.
    pub fn python_version(&self) -> Option<&str> {
        self.get("Python")
    }

    /// `PyTorch`.
    pub fn torch_version(&self) -> Option<&str> {
        self.get("PyTorch")
    }

    /// `Numpy`.
    pub fn numpy_version(&self) -> Option<&str> {
        self.get("Numpy")
    }

    /// `Gymnasium` (SB3 2.x), else `Gym` (1.x).
    pub fn gym_version(&self) -> Option<&str> {
        self.get("Gymnasium").or_else(|| self.get("Gym"))
    }

    /// The keys whose values differ between this (saved) info and `current`, in this info's
    /// order followed by keys only `current` has.
    ///
    /// ```
    /// use sb3_format::SystemInfo;
    /// let saved = SystemInfo::parse("Python: 3.7.12\nGym: 0.21.0\n");
    /// let current = SystemInfo::parse("- Python: 3.11.7\n- Gymnasium: 1.4.0\n");
    /// let keys: Vec<_> = saved.compare(&current).into_iter().map(|d| d.key).collect();
    /// assert_eq!(keys, ["Python", "Gym", "Gymnasium"]);
    /// ```
    pub fn compare(&self, current: &SystemInfo) -> Vec<InfoDifference> {
        let mut out = Vec::new();
        for (key, saved) in self.iter() {
            let now = current.get(key);
            if now != Some(saved) {
                out.push(InfoDifference {
                    key: key.to_owned(),
                    saved: Some(saved.to_owned()),
                    current: now.map(str::to_owned),
                });
            }
        }
        for (key, now) in current.iter() {
            if self.get(key).is_none() {
                out.push(InfoDifference {
                    key: key.to_owned(),
                    saved: None,
                    current: Some(now.to_owned()),
                });
            }
        }
        out
    }
}

/// Writes the SB3 2.x form: one `- Key: value` line per pair.
impl fmt::Display for SystemInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in self.iter() {
            writeln!(f, "- {key}: {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_and_odd_lines() {
        let v1 = SystemInfo::parse("OS: Linux #127 14:30:56 UTC\r\nGym: 0.21.0\n\n");
        assert_eq!(v1.get("OS"), Some("Linux #127 14:30:56 UTC"));
        assert_eq!(v1.gym_version(), Some("0.21.0"));
        let odd = SystemInfo::parse("- Flag\n- A: 1\n- A: 2\n");
        assert_eq!(odd.get("Flag"), Some(""));
        assert_eq!(odd.iter().collect::<Vec<_>>(), [("Flag", ""), ("A", "2")]);
        assert_eq!(SystemInfo::parse(&odd.to_string()), odd, "Display round-trips");
    }
}
