//! model (being written).
use crate::{CellResult, CellSpec, SpecError};
/// Compute a validated cell.
pub fn compute_cell(spec: &CellSpec) -> Result<CellResult, SpecError> {
    Err(SpecError::invalid("cell", spec.key(), "run_cell is being written"))
}
