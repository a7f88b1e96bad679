//! Containers that are encrypted by design (OpenPGP, LUKS, Purview .pfile) and text formats with encrypted values (Ansible Vault, SOPS).

use super::{Bounded, Evidence, InspectError};

// Pending: replaced by the real inspector; until then the verdict is `unknown`.
pub(crate) fn inspect_pgp_armored(
    _head: &[u8],
    _src: &Bounded<'_>,
) -> Result<Evidence, InspectError> {
    Ok(Evidence::default())
}

pub(crate) fn inspect_pgp_binary(_src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    Ok(Evidence::default())
}

pub(crate) fn inspect_luks(_src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    Ok(Evidence::default())
}

pub(crate) fn inspect_pfile(_src: &Bounded<'_>) -> Result<Evidence, InspectError> {
    Ok(Evidence::default())
}

pub(crate) fn inspect_text(_src: &Bounded<'_>, _name: &str) -> Result<Evidence, InspectError> {
    Ok(super::plain("text"))
}
