//! File facts: everything the agent observed about one file, the input of evaluation.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// A user or group: the numeric id always, the name when the system could resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Principal {
    /// uid or gid.
    pub id: u32,
    /// Account or group name, if known.
    pub name: Option<String>,
}

/// Where a detected label came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelSource {
    /// The extended attribute `user.infoledger.label`.
    Xattr,
    /// A marking banner (e.g. `CONFIDENTIAL`) near the start of a text file.
    Marking,
    /// An OOXML label-information part (`docMetadata/LabelInfo.xml`).
    LabelInfo,
    /// `MSIP_Label_*` custom document properties (OOXML custom.xml or OLE user properties).
    CustomProperties,
    /// Another vendor's or a legacy classification property.
    VendorProperty,
    /// A PDF's Info dictionary.
    PdfInfo,
    /// A PDF's XMP metadata.
    PdfXmp,
    /// An e-mail's `msip_labels` header.
    EmailHeader,
    /// Not detected in the file: inherited from the asset whose location holds it.
    Asset,
}

impl LabelSource {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelSource::Xattr => "xattr",
            LabelSource::Marking => "marking",
            LabelSource::LabelInfo => "label-info",
            LabelSource::CustomProperties => "custom-properties",
            LabelSource::VendorProperty => "vendor-property",
            LabelSource::PdfInfo => "pdf-info",
            LabelSource::PdfXmp => "pdf-xmp",
            LabelSource::EmailHeader => "email-header",
            LabelSource::Asset => "asset",
        }
    }
}

impl fmt::Display for LabelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label as found in a file, before the policy maps it to one of its own levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectedLabel {
    /// Where it was found.
    pub source: LabelSource,
    /// A label id such as a Microsoft Purview (MIP) label GUID, as written in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A label name or vendor string (`Confidential`, an xattr value, a marking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The tenant or site id that applied the label, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// How the label was applied (`Standard`/`Privileged` for MIP labels), when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// When the label was applied, as written in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_date: Option<String>,
    /// Whether the file marks the label as enabled; `Some(false)` labels are not in force and
    /// evaluation ignores them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Where exactly in the file it was found, for people (`marking "CONFIDENTIAL" on line 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DetectedLabel {
    /// A label from `source` with no identity yet; fill in the fields that apply.
    pub fn new(source: LabelSource) -> Self {
        DetectedLabel {
            source,
            id: None,
            name: None,
            tenant: None,
            method: None,
            set_date: None,
            enabled: None,
            detail: None,
        }
    }

    /// Whether the label is in force (not explicitly disabled).
    pub fn is_active(&self) -> bool {
        self.enabled != Some(false)
    }
}

/// Whether a file is encrypted, as far as inspection could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionStatus {
    /// The content is encrypted.
    Encrypted,
    /// Some parts are encrypted and others are not (e.g. a ZIP with some plain entries).
    Partial,
    /// The content is readable without a key.
    Plaintext,
    /// Inspection could not decide.
    #[default]
    Unknown,
}

impl EncryptionStatus {
    /// The name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionStatus::Encrypted => "encrypted",
            EncryptionStatus::Partial => "partial",
            EncryptionStatus::Plaintext => "plaintext",
            EncryptionStatus::Unknown => "unknown",
        }
    }
}

/// An encryption status with the scheme or format that decided it (`text`, `ooxml-agile`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EncryptionVerdict {
    /// The status.
    pub status: EncryptionStatus,
    /// What decided it, if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// More on how it was decided (`2 of 3 entries encrypted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl EncryptionVerdict {
    /// A verdict with the scheme that decided it.
    pub fn new(status: EncryptionStatus, scheme: impl Into<String>) -> Self {
        EncryptionVerdict {
            status,
            scheme: Some(scheme.into()),
            detail: None,
        }
    }

    /// The same verdict with a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for EncryptionVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.status.as_str())?;
        match (&self.scheme, &self.detail) {
            (Some(s), Some(d)) => write!(f, " ({s}: {d})"),
            (Some(s), None) => write!(f, " ({s})"),
            (None, Some(d)) => write!(f, " ({d})"),
            (None, None) => Ok(()),
        }
    }
}

/// What the agent knows about one regular file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileFacts {
    /// Absolute path.
    pub path: PathBuf,
    /// Owning user.
    pub owner: Principal,
    /// Owning group.
    pub group: Principal,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Every label detected in the file, with its source.
    pub labels: Vec<DetectedLabel>,
    /// An asset id the file names itself (extended attribute `user.infoledger.asset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_hint: Option<String>,
    /// Encryption verdict.
    pub encryption: EncryptionVerdict,
}
