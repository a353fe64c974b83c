//! Where export and plot read a study from: anything that can walk its grid points with
//! their results, one point at a time (the SQLite store in production, an in-memory or
//! generated study in tests and benchmarks).

use std::path::Path;

use anyhow::Context;
use coordinator::StudyStore;
use taustar_common::cell::CurveOutput;
use taustar_common::{CellResult, GridPoint};

/// A study's results, visited one grid point at a time in key order.
pub trait PointSource {
    /// The study's name (titles of plots).
    fn study_name(&self) -> String;

    /// Call `f` once per grid point with all of its results; the first error stops the walk.
    fn for_each_point(
        &self,
        f: &mut dyn FnMut(&GridPoint, &[CellResult]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;

    /// Fill in the curves the source left out (a `tau.curves = "recompute"` store, see
    /// [`super::curves`]) of `results`, the results of `point`. Sources that keep every
    /// curve they have leave `results` as they are.
    fn complete_curves(&self, _point: &GridPoint, _results: &mut [CellResult]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The durable study store, opened read-only (works while a coordinator writes to it).
pub struct StoreSource {
    store: StudyStore,
}

impl StoreSource {
    /// Open the study database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let store = StudyStore::open_read_only(path)
            .with_context(|| format!("opening study database {}", path.display()))?;
        Ok(StoreSource { store })
    }
}

impl PointSource for StoreSource {
    fn study_name(&self) -> String {
        if let Some(name) = self.store.study_name() {
            return name.to_string();
        }
        // Fall back to the stored study file's `name` key.
        self.store
            .study_toml()
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
            .and_then(|t| t.get("name").and_then(|v| v.as_str()).map(str::to_string))
            .unwrap_or_else(|| "study".to_string())
    }

    fn for_each_point(
        &self,
        f: &mut dyn FnMut(&GridPoint, &[CellResult]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.store.for_each_point_results::<anyhow::Error, _>(|p, rs| f(p, rs))
    }

    fn complete_curves(&self, point: &GridPoint, results: &mut [CellResult]) -> anyhow::Result<()> {
        if self.store.study_settings().map(|s| s.curves) == Some(CurveOutput::Recompute) {
            let spec = self.store.cell_spec(point, 0).context("no study in the store")?;
            super::curves::recompute_missing(&spec, results)?;
        }
        Ok(())
    }
}

/// A study held in memory (tests, small tools).
#[cfg(test)]
pub struct MemorySource {
    /// The study name.
    pub name: String,
    /// Grid points with their results, in the order they are visited.
    pub points: Vec<(GridPoint, Vec<CellResult>)>,
}

#[cfg(test)]
impl PointSource for MemorySource {
    fn study_name(&self) -> String {
        self.name.clone()
    }

    fn for_each_point(
        &self,
        f: &mut dyn FnMut(&GridPoint, &[CellResult]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        for (p, rs) in &self.points {
            f(p, rs)?;
        }
        Ok(())
    }
}
