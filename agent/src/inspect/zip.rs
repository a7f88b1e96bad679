//! ZIP archives: the central directory, per-entry encryption and bounded extraction of small entries.

use super::{Bounded, Evidence, InspectError};

// Pending: replaced by the real inspector; until then the verdict is `unknown`.
pub(crate) fn inspect_zip(_src: &Bounded<'_>, _name: &str) -> Result<Evidence, InspectError> {
    Ok(Evidence::default())
}
