//! Study file → what the store needs ([`StudyDefinition`] + streamed cells).

use std::path::Path;

use taustar_common::study::{Study, StudyError};

use crate::store::StudyDefinition;

/// A parsed study file and its store definition.
pub struct LoadedStudy {
    /// The parsed study (grid points in memory, cells streamed).
    pub study: Study,
    /// Name, seed, verbatim text, fingerprint, settings.
    pub definition: StudyDefinition,
}

/// Read and parse a study file. Errors name the file, key, value and line.
pub fn load(path: &Path) -> Result<LoadedStudy, StudyError> {
    let study = Study::from_path(path)?;
    let toml = std::fs::read_to_string(path)
        .map_err(|error| StudyError::Read { path: path.to_path_buf(), error })?;
    Ok(from_parts(study, toml))
}

/// A study built in code (benchmarks, tests) with the text to store for it.
pub fn from_parts(study: Study, toml: String) -> LoadedStudy {
    let definition = StudyDefinition {
        name: study.name.clone(),
        seed: study.seed,
        toml,
        fingerprint: study.settings_fingerprint(),
        settings: study.settings.clone(),
    };
    LoadedStudy { study, definition }
}

/// The default database path of a study: `<study name>.db` in the current directory.
pub fn default_db_path(study_name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{study_name}.db"))
}

/// Open (or create) the store at `db` and insert the study's missing cells.
///
/// Settings the study file leaves unset take the values the store was made with (see
/// [`taustar_common::study::Study::adopt_stored`]), so a file written before a default changed
/// resumes its store unchanged; `loaded` is updated to what will run.
pub fn open_store(
    loaded: &mut LoadedStudy,
    db: &Path,
    config: crate::store::StoreConfig,
) -> Result<(crate::store::StudyStore, crate::store::SyncReport), crate::store::StoreError> {
    let mut store = crate::store::StudyStore::open(db, config)?;
    if let Some(stored) = store.study_settings() {
        let adopted = loaded.study.adopt_stored(stored);
        if !adopted.is_empty() {
            tracing::info!(
                db = %db.display(),
                settings = %adopted.join(", "),
                "the study file leaves these unset: using the values this store was made with"
            );
            loaded.definition.fingerprint = loaded.study.settings_fingerprint();
            loaded.definition.settings = loaded.study.settings.clone();
        }
    }
    let report = store.sync_study(&loaded.definition, loaded.study.cells())?;
    tracing::info!(
        study = %loaded.definition.name,
        db = %db.display(),
        cells_added = report.cells_added,
        points_added = report.points_added,
        cells_total = report.cells_total,
        "study store ready"
    );
    Ok((store, report))
}
