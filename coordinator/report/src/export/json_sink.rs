//! JSON: one array of row objects (`pandas.read_json(path)`, `JSON3.read` and `jq` read it
//! directly), written row by row. Null and non-finite floats (JSON has no NaN) are `null`.

use std::io::Write;

use anyhow::Context;
use taustar_common::aggregate::table::{Column, Value};

use super::sink::{AtomicFile, TableSink};

/// A JSON table being written.
pub struct JsonSink {
    file: AtomicFile,
    /// `"name":` of every column, escaped once.
    keys: Vec<String>,
    rows: u64,
}

impl JsonSink {
    /// Start the array.
    pub fn new(mut file: AtomicFile, columns: &[Column]) -> anyhow::Result<Self> {
        let keys = columns
            .iter()
            .map(|c| Ok(format!("{}:", serde_json::to_string(c.name.as_ref())?)))
            .collect::<Result<Vec<_>, serde_json::Error>>()?;
        file.write_all(b"[")?;
        Ok(JsonSink { file, keys, rows: 0 })
    }
}

impl TableSink for JsonSink {
    fn write_row(&mut self, row: &[Value<'_>]) -> anyhow::Result<()> {
        let f = &mut self.file;
        f.write_all(if self.rows == 0 { b"\n{" } else { b",\n{" })?;
        for (i, (k, v)) in self.keys.iter().zip(row).enumerate() {
            if i > 0 {
                f.write_all(b",")?;
            }
            f.write_all(k.as_bytes())?;
            match v {
                Value::Null => f.write_all(b"null")?,
                Value::Int(x) => write!(f, "{x}")?,
                Value::Float(x) if x.is_finite() => write!(f, "{x:?}")?,
                Value::Float(_) => f.write_all(b"null")?,
                Value::Bool(b) => f.write_all(if *b { b"true" } else { b"false" })?,
                Value::Str(s) => serde_json::to_writer(&mut *f, s.as_ref()).context("writing JSON string")?,
            }
        }
        f.write_all(b"}")?;
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> anyhow::Result<()> {
        self.file.write_all(b"\n]\n")?;
        self.file.commit()
    }
}
