//! Parquet through arrow: rows are appended to column builders and flushed as a record
//! batch every [`BATCH_ROWS`] rows; the writer closes a row group every
//! [`ROW_GROUP_ROWS`] rows, so memory stays bounded however long the table is.
//! Snappy compression (pure Rust, read by every Parquet reader); strings are
//! dictionary-encoded by default, which keeps the repeated cell keys of `curves` small.

use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use taustar_common::aggregate::table::{Column, ColumnKind, Value};

use super::sink::{AtomicFile, TableSink};

/// Rows per record batch handed to the writer.
pub const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
}

impl Builder {
    fn new(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Str => Builder::Str(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 32)),
            ColumnKind::Int => Builder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            ColumnKind::Float => Builder::Float(Float64Builder::with_capacity(BATCH_ROWS)),
            ColumnKind::Bool => Builder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
        }
    }

    fn append(&mut self, v: &Value<'_>, column: &str) -> anyhow::Result<()> {
        match (self, v) {
            (Builder::Str(b), Value::Null) => b.append_null(),
            (Builder::Int(b), Value::Null) => b.append_null(),
            (Builder::Float(b), Value::Null) => b.append_null(),
            (Builder::Bool(b), Value::Null) => b.append_null(),
            (Builder::Str(b), Value::Str(s)) => b.append_value(s),
            (Builder::Int(b), Value::Int(x)) => b.append_value(*x),
            (Builder::Float(b), Value::Float(x)) => b.append_value(*x),
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (_, v) => bail!("column {column}: value {v:?} does not match the column type"),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
        }
    }
}

/// The arrow schema of a table.
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| {
            let t = match c.kind {
                ColumnKind::Str => DataType::Utf8,
                ColumnKind::Int => DataType::Int64,
                ColumnKind::Float => DataType::Float64,
                ColumnKind::Bool => DataType::Boolean,
            };
            Field::new(c.name.as_ref(), t, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A Parquet table being written.
pub struct ParquetSink {
    writer: ArrowWriter<AtomicFile>,
    schema: SchemaRef,
    names: Vec<String>,
    builders: Vec<Builder>,
    pending: usize,
}

impl ParquetSink {
    /// Start a Parquet file for `columns`.
    pub fn new(file: AtomicFile, columns: &[Column]) -> anyhow::Result<Self> {
        let schema = arrow_schema(columns);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_created_by(format!("taustar {}", env!("CARGO_PKG_VERSION")))
            .build();
        let dest = file.dest().display().to_string();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .with_context(|| format!("starting Parquet file {dest}"))?;
        Ok(ParquetSink {
            writer,
            schema,
            names: columns.iter().map(|c| c.name.to_string()).collect(),
            builders: columns.iter().map(|c| Builder::new(c.kind)).collect(),
            pending: 0,
        })
    }

    fn flush_batch(&mut self) -> anyhow::Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).context("building a Parquet record batch")?;
        self.writer.write(&batch).context("writing a Parquet record batch")?;
        self.pending = 0;
        Ok(())
    }
}

impl TableSink for ParquetSink {
    fn write_row(&mut self, row: &[Value<'_>]) -> anyhow::Result<()> {
        if row.len() != self.builders.len() {
            bail!("row of {} fields for a table of {} columns", row.len(), self.builders.len());
        }
        for ((b, v), name) in self.builders.iter_mut().zip(row).zip(&self.names) {
            b.append(v, name)?;
        }
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.flush_batch()?;
        let file = self.writer.into_inner().context("closing the Parquet file")?;
        file.commit()
    }
}
