//! Cheap figures for monitoring: violations by status, from the counts that migration 4's
//! triggers keep.

use super::model::ViolationStatus;
use super::{Store, StoreError};

impl Store {
    /// How many violations are in each status, every status listed (zero included), in life-cycle
    /// order.
    pub fn violations_by_status(&self) -> Result<Vec<(ViolationStatus, u64)>, StoreError> {
        let reader = self.reader();
        // The counts table (migration 4): a few dozen rows whatever the number of violations.
        let mut stmt =
            reader.prepare_cached("SELECT status, sum(n) FROM violation_counts GROUP BY status")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut counts: Vec<(ViolationStatus, u64)> =
            ViolationStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let (status, count) = row?;
            let status: ViolationStatus = status.parse().map_err(StoreError::Corrupt)?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = count.unsigned_abs();
            }
        }
        Ok(counts)
    }
}
