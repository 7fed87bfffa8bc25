//! Streaming reads of contract tables from Parquet: one file or a directory of files, read a
//! batch at a time so memory stays bounded whatever the history's size.

use std::fs::File;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

use crate::error::{DataError, Result};
use crate::issues::{Issue, Issues, Rule};
use crate::normalize::{ColumnPlan, normalize_batch, plan_columns};
use crate::schema::ColumnSpec;

pub const BATCH_SIZE: usize = 64 * 1024;

/// Resolves a table location: `path` itself if it is a file, else the `*.parquet` files in the
/// directory (sorted, so reads are deterministic).
pub fn table_files(path: &Path, what: &str) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            what: what.to_string(),
        });
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| DataError::io(path, e))? {
        let p = entry.map_err(|e| DataError::io(path, e))?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "parquet") {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
            what: format!("{what} (no *.parquet files in the directory)"),
        });
    }
    Ok(files)
}

/// One open Parquet file of a contract table, yielding canonical batches.
pub struct TableReader {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    plan: ColumnPlan,
    specs: &'static [ColumnSpec],
    target: SchemaRef,
    next_row: u64,
    rows: u64,
}

impl TableReader {
    /// Opens `path` and checks its schema against `specs` (missing or mistyped columns fail here,
    /// before any data is read).
    pub fn open(path: &Path, specs: &'static [ColumnSpec], target: SchemaRef) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| DataError::NotParquet {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        let rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let plan = plan_columns(path, builder.schema(), specs)?;
        let reader = builder
            .with_batch_size(BATCH_SIZE)
            .build()
            .map_err(|e| DataError::parquet(path, e))?;
        Ok(TableReader {
            path: path.to_path_buf(),
            reader,
            plan,
            specs,
            target,
            next_row: 0,
            rows,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows in the file, from its footer.
    pub fn num_rows(&self) -> u64 {
        self.rows
    }

    /// True if the file has the contract column `name` (absent optional columns read as nulls).
    pub fn has_column(&self, name: &str) -> bool {
        self.specs
            .iter()
            .zip(&self.plan.sources)
            .any(|(s, src)| s.name == name && src.is_some())
    }

    /// Input columns that the contract does not know (they are ignored).
    pub fn extra_columns(&self) -> &[String] {
        &self.plan.extra
    }

    /// Reports ignored columns as notes.
    pub fn note_extra_columns(&self, issues: &mut Issues) {
        if !self.plan.extra.is_empty() {
            issues.push(Issue::note(
                Rule::ExtraColumn,
                &self.path,
                format!(
                    "ignoring columns not in the contract: {}",
                    self.plan.extra.join(", ")
                ),
            ));
        }
    }

    /// The next canonical batch and the file-level index of its first row.
    pub fn next_batch(&mut self, issues: &mut Issues) -> Result<Option<(RecordBatch, u64)>> {
        let Some(batch) = self.reader.next() else {
            return Ok(None);
        };
        let batch = batch.map_err(|e| DataError::arrow(&self.path, e))?;
        let first = self.next_row;
        self.next_row += batch.num_rows() as u64;
        let out = normalize_batch(
            &self.path,
            &batch,
            &self.plan,
            self.specs,
            &self.target,
            first,
            issues,
        )?;
        Ok(Some((out, first)))
    }
}
