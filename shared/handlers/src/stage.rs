//! The five stages by name.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Validate,
    Enrich,
    Aggregate,
    Inference,
    Store,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Validate,
        Stage::Enrich,
        Stage::Aggregate,
        Stage::Inference,
        Stage::Store,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Validate => "validate",
            Stage::Enrich => "enrich",
            Stage::Aggregate => "aggregate",
            Stage::Inference => "inference",
            Stage::Store => "store",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == name)
            .ok_or_else(|| format!("{name:?} is not a stage; expected validate, enrich, aggregate, inference or store"))
    }
}
