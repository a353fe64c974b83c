//! Table sinks: a header of typed columns, then rows, written straight to disk.
//!
//! Every sink writes into a temporary file beside its destination and renames it into
//! place only when the table is complete and synced, so a crash or an error mid-export
//! never leaves a torn `summary.parquet` that looks finished (argmin's counter-example in
//! STYLE.md). An abandoned temporary file is removed when its sink is dropped.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use taustar_common::aggregate::table::{Column, Value};

/// A file format of `taustar export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row; null is an empty field.
    Csv,
    /// Apache Parquet (snappy-compressed row groups), for pandas/polars/Julia/DuckDB.
    Parquet,
    /// A JSON array of row objects; null (and non-finite floats) as JSON null.
    Json,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Json => "json",
        }
    }
}

/// A table being written.
pub trait TableSink {
    /// Append one row, aligned with the columns the sink was created with.
    fn write_row(&mut self, row: &[Value<'_>]) -> anyhow::Result<()>;
    /// Finish the file and move it into place.
    fn finish(self: Box<Self>) -> anyhow::Result<()>;
}

/// Open a sink for `columns` writing `dir/<name>.<ext>`.
pub fn open_sink(
    dir: &Path,
    name: &str,
    format: Format,
    columns: &[Column],
) -> anyhow::Result<Box<dyn TableSink>> {
    let path = dir.join(format!("{name}.{}", format.extension()));
    let file = AtomicFile::create(&path)?;
    Ok(match format {
        Format::Csv => Box::new(super::csv_sink::CsvSink::new(file, columns)?),
        Format::Json => Box::new(super::json_sink::JsonSink::new(file, columns)?),
        Format::Parquet => Box::new(super::parquet_sink::ParquetSink::new(file, columns)?),
    })
}

/// A file written under a temporary name and renamed into place on [`AtomicFile::commit`].
pub struct AtomicFile {
    /// Buffered writer of the temporary file; taken by `commit`.
    writer: Option<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Create `.<name>.tmp-<pid>` beside `dest`.
    pub fn create(dest: &Path) -> anyhow::Result<Self> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("table");
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        Ok(AtomicFile {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flush, fsync, rename into place, fsync the directory.
    pub fn commit(mut self) -> anyhow::Result<()> {
        let w = self.writer.take().expect("commit is called once");
        let file = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        file.sync_all().with_context(|| format!("syncing {}", self.tmp.display()))?;
        drop(file);
        fs::rename(&self.tmp, &self.dest)
            .with_context(|| format!("renaming {} to {}", self.tmp.display(), self.dest.display()))?;
        if let Some(dir) = self.dest.parent() {
            // Persist the rename itself; best effort (not every filesystem lets a directory be synced).
            if let Ok(d) = File::open(if dir.as_os_str().is_empty() { Path::new(".") } else { dir }) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer.as_mut().expect("not committed").write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_file_appears_only_on_commit_and_abandoned_temp_is_removed() {
        let dir = crate::export::test_dir("atomic");
        let dest = dir.join("t.txt");
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!dest.exists(), "destination must not exist before commit");
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "hello");

        let mut g = AtomicFile::create(&dest).unwrap();
        g.write_all(b"torn").unwrap();
        drop(g);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "hello", "an abandoned rewrite leaves the old file");
        let leftovers: Vec<_> =
            fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(leftovers.len(), 1, "temporary file removed: {leftovers:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
