//! [`GlobalName`]: a Python global named by a pickle (a leaf: spaces, payloads, policy kwargs
//! and VecNormalize files all name classes).

use std::fmt;

/// A Python global: a module and a qualified name (`torch.nn.modules.activation` `ReLU`).
///
/// ```
/// let relu = sb3_format::GlobalName::new("torch.nn.modules.activation", "ReLU");
/// assert_eq!(relu.to_string(), "torch.nn.modules.activation.ReLU");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalName {
    /// The module path.
    pub module: String,
    /// The qualified name inside the module.
    pub name: String,
}

impl GlobalName {
    /// A name from its parts.
    pub fn new(module: impl Into<String>, name: impl Into<String>) -> GlobalName {
        GlobalName {
            module: module.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for GlobalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}
