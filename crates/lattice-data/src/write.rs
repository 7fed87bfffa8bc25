//! Writing contract tables to Parquet, streamed a batch at a time and renamed into place at the
//! end, so a crash never leaves a half-written file under the final name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use crate::error::{DataError, Result};
use crate::output::{OutputFile, TABLE_FILE};
use crate::schema::{customers_schema, events_schema};

/// Rows buffered before a batch is handed to the Parquet writer.
const FLUSH_ROWS: usize = 64 * 1024;

/// A Parquet file being written to a temporary sibling, fsynced and renamed to `path` by
/// [`ParquetFile::finish`]. It replaces whatever is at `path`: a caller writing to a path the
/// user chose checks it first ([`crate::output::check_file`]).
pub struct ParquetFile {
    writer: ArrowWriter<OutputFile>,
    path: PathBuf,
    rows: u64,
}

impl ParquetFile {
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let file = OutputFile::create(path, TABLE_FILE, true)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).expect("valid level"),
            ))
            .set_max_row_group_row_count(Some(1 << 20))
            .set_created_by(crate::output::created_by())
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props))
            .map_err(|e| DataError::parquet(path, e))?;
        Ok(ParquetFile {
            writer,
            path: path.to_path_buf(),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|e| DataError::parquet(&self.path, e))
    }

    /// Closes the file and renames it into place; returns the number of rows written.
    pub fn finish(self) -> Result<u64> {
        let file = self
            .writer
            .into_inner()
            .map_err(|e| DataError::parquet(&self.path, e))?;
        file.commit()?;
        Ok(self.rows)
    }
}

/// One event, borrowed, for [`EventsWriter::push`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EventRow<'a> {
    pub customer_id: &'a str,
    /// Microseconds since the Unix epoch, UTC.
    pub ts_us: i64,
    pub event_type: &'a str,
    pub channel: Option<&'a str>,
    pub category: Option<&'a str>,
    pub amount: Option<f64>,
    pub quantity: Option<f64>,
    pub order_id: Option<&'a str>,
    pub sentiment: Option<f64>,
    pub action_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
}

/// Streams events into a Parquet file with the canonical events schema.
pub struct EventsWriter {
    file: ParquetFile,
    customer_id: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    event_type: StringBuilder,
    channel: StringBuilder,
    category: StringBuilder,
    amount: Float64Builder,
    quantity: Float64Builder,
    order_id: StringBuilder,
    sentiment: Float64Builder,
    action_id: StringBuilder,
    event_id: StringBuilder,
    pending: usize,
}

impl EventsWriter {
    pub fn create(path: &Path) -> Result<Self> {
        Ok(EventsWriter {
            file: ParquetFile::create(path, events_schema())?,
            customer_id: StringBuilder::new(),
            ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            event_type: StringBuilder::new(),
            channel: StringBuilder::new(),
            category: StringBuilder::new(),
            amount: Float64Builder::new(),
            quantity: Float64Builder::new(),
            order_id: StringBuilder::new(),
            sentiment: Float64Builder::new(),
            action_id: StringBuilder::new(),
            event_id: StringBuilder::new(),
            pending: 0,
        })
    }

    pub fn push(&mut self, e: &EventRow<'_>) -> Result<()> {
        self.customer_id.append_value(e.customer_id);
        self.ts.append_value(e.ts_us);
        self.event_type.append_value(e.event_type);
        self.channel.append_option(e.channel);
        self.category.append_option(e.category);
        self.amount.append_option(e.amount);
        self.quantity.append_option(e.quantity);
        self.order_id.append_option(e.order_id);
        self.sentiment.append_option(e.sentiment);
        self.action_id.append_option(e.action_id);
        self.event_id.append_option(e.event_id);
        self.pending += 1;
        if self.pending >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Builds the pending rows into a batch (used by writers that produce batches on worker
    /// threads and write them in order on another).
    pub fn take_batch(&mut self) -> RecordBatch {
        self.pending = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.customer_id.finish()),
            Arc::new(self.ts.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.category.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.quantity.finish()),
            Arc::new(self.order_id.finish()),
            Arc::new(self.sentiment.finish()),
            Arc::new(self.action_id.finish()),
            Arc::new(self.event_id.finish()),
        ];
        RecordBatch::try_new(events_schema(), cols).expect("builders match the events schema")
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending > 0 {
            let batch = self.take_batch();
            self.file.write(&batch)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.file.finish()
    }
}

/// One customer, borrowed, for [`CustomersWriter::push`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerRow<'a> {
    pub customer_id: &'a str,
    pub signup_ts_us: Option<i64>,
    /// Days since the Unix epoch.
    pub birth_date: Option<i32>,
    pub tier: Option<&'a str>,
    pub points_balance: Option<f64>,
    pub timezone: Option<&'a str>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    pub consent_push: Option<bool>,
}

/// Streams customers into a Parquet file with the canonical customers schema.
pub struct CustomersWriter {
    file: ParquetFile,
    customer_id: StringBuilder,
    signup_ts: TimestampMicrosecondBuilder,
    birth_date: Date32Builder,
    tier: StringBuilder,
    points_balance: Float64Builder,
    timezone: StringBuilder,
    consent_email: BooleanBuilder,
    consent_sms: BooleanBuilder,
    consent_push: BooleanBuilder,
    pending: usize,
}

impl CustomersWriter {
    pub fn create(path: &Path) -> Result<Self> {
        Ok(CustomersWriter {
            file: ParquetFile::create(path, customers_schema())?,
            customer_id: StringBuilder::new(),
            signup_ts: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            birth_date: Date32Builder::new(),
            tier: StringBuilder::new(),
            points_balance: Float64Builder::new(),
            timezone: StringBuilder::new(),
            consent_email: BooleanBuilder::new(),
            consent_sms: BooleanBuilder::new(),
            consent_push: BooleanBuilder::new(),
            pending: 0,
        })
    }

    pub fn push(&mut self, c: &CustomerRow<'_>) -> Result<()> {
        self.customer_id.append_value(c.customer_id);
        self.signup_ts.append_option(c.signup_ts_us);
        self.birth_date.append_option(c.birth_date);
        self.tier.append_option(c.tier);
        self.points_balance.append_option(c.points_balance);
        self.timezone.append_option(c.timezone);
        self.consent_email.append_option(c.consent_email);
        self.consent_sms.append_option(c.consent_sms);
        self.consent_push.append_option(c.consent_push);
        self.pending += 1;
        if self.pending >= FLUSH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        self.pending = 0;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.customer_id.finish()),
            Arc::new(self.signup_ts.finish()),
            Arc::new(self.birth_date.finish()),
            Arc::new(self.tier.finish()),
            Arc::new(self.points_balance.finish()),
            Arc::new(self.timezone.finish()),
            Arc::new(self.consent_email.finish()),
            Arc::new(self.consent_sms.finish()),
            Arc::new(self.consent_push.finish()),
        ];
        let batch = RecordBatch::try_new(customers_schema(), cols)
            .expect("builders match the customers schema");
        self.file.write(&batch)
    }

    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        self.file.finish()
    }
}
