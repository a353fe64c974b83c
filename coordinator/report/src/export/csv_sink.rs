//! CSV: a header row, then one record per row; null is an empty field, floats in Rust's
//! shortest round-trip form (exponent notation for very small and large magnitudes), so
//! reading a CSV back gives bit-identical floats.

use std::fmt::Write as _;

use taustar_common::aggregate::table::{Column, Value};

use super::sink::{AtomicFile, TableSink};

/// A CSV table being written.
pub struct CsvSink {
    writer: csv::Writer<AtomicFile>,
    /// Scratch buffer for formatting numbers without allocating per field.
    buf: String,
}

impl CsvSink {
    /// Write the header of `columns` into `file`.
    pub fn new(file: AtomicFile, columns: &[Column]) -> anyhow::Result<Self> {
        let mut writer = csv::WriterBuilder::new().buffer_capacity(1 << 16).from_writer(file);
        writer.write_record(columns.iter().map(|c| c.name.as_bytes()))?;
        Ok(CsvSink { writer, buf: String::with_capacity(32) })
    }
}

impl TableSink for CsvSink {
    fn write_row(&mut self, row: &[Value<'_>]) -> anyhow::Result<()> {
        for v in row {
            self.buf.clear();
            match v {
                Value::Null => {}
                Value::Int(i) => write!(self.buf, "{i}")?,
                // Debug is the shortest round-trip form and switches to exponent notation
                // far from 1 (Display would print 1e-300 as 300 zeros).
                Value::Float(x) => write!(self.buf, "{x:?}")?,
                Value::Bool(b) => self.buf.push_str(if *b { "true" } else { "false" }),
                Value::Str(s) => {
                    self.writer.write_field(s.as_bytes())?;
                    continue;
                }
            }
            self.writer.write_field(self.buf.as_bytes())?;
        }
        self.writer.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<()> {
        let file = self.writer.into_inner().map_err(|e| anyhow::anyhow!("flushing CSV: {}", e.error()))?;
        file.commit()
    }
}
