//! Service levels: how long a violation of each severity may stay open before it is escalated,
//! and against which remediation speed is measured.

use chrono::TimeDelta;
use infoledger_policies::Severity;

/// The time allowed to resolve a violation, per severity; `None` means no deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slas {
    critical: Option<TimeDelta>,
    high: Option<TimeDelta>,
    medium: Option<TimeDelta>,
    low: Option<TimeDelta>,
    info: Option<TimeDelta>,
}

impl Default for Slas {
    /// critical 24 h, high 72 h, medium 7 days, low 30 days, info none.
    fn default() -> Slas {
        Slas {
            critical: Some(TimeDelta::hours(24)),
            high: Some(TimeDelta::hours(72)),
            medium: Some(TimeDelta::days(7)),
            low: Some(TimeDelta::days(30)),
            info: None,
        }
    }
}

impl Slas {
    /// The time allowed for `severity`.
    pub fn get(&self, severity: Severity) -> Option<TimeDelta> {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    /// Sets the time allowed for `severity` (`None`: no deadline).
    pub fn set(&mut self, severity: Severity, allowed: Option<TimeDelta>) {
        let slot = match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        };
        *slot = allowed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut slas = Slas::default();
        assert_eq!(slas.get(Severity::Critical), Some(TimeDelta::hours(24)));
        assert_eq!(slas.get(Severity::Info), None);
        slas.set(Severity::High, Some(TimeDelta::hours(8)));
        assert_eq!(slas.get(Severity::High), Some(TimeDelta::hours(8)));
    }
}
